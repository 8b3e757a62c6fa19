import { Injectable } from '@nestjs/common';
import { isDatabaseUnavailable } from '../common/database-errors';
import { HeldRow, QueueRepository } from './queue.repository';

/** How often rows held during an outage are offered back while the database is away. */
const RETRY_MS = 1_000;

/**
 * Gives back rows this replica holds but will not run (an outage, a shutdown): due now, the claim
 * taken back, offered again every second until the database answers, so that work resumes at once
 * instead of when the lease runs out.
 */
@Injectable()
export class RowReleaser {
  private readonly pending = new Map<string, string>();
  private readonly listeners: Array<() => void> = [];
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly queue: QueueRepository) {}

  /** Called whenever rows were given back (the retry worker claims them then). */
  onReleased(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Gives `rows` back now if the database answers, else as soon as it does. */
  giveBack(rows: HeldRow[]): Promise<void> {
    for (const row of rows) {
      this.pending.set(row.eventId, row.token);
    }
    return this.flush();
  }

  /** Offers every pending row back once (joins a flush in flight). */
  flush(): Promise<void> {
    this.flushing ??= this.flushOnce().finally(() => {
      this.flushing = undefined;
      this.scheduleRetry();
    });
    return this.flushing;
  }

  /** No more retries on a timer (shutdown: the last flush is explicit). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.stopped = true;
  }

  private scheduleRetry(): void {
    if (this.pending.size === 0 || this.timer || this.stopped) {
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, RETRY_MS);
    this.timer.unref();
  }

  private async flushOnce(): Promise<void> {
    if (this.pending.size === 0) {
      return;
    }
    const rows = [...this.pending].map(([eventId, token]) => ({ eventId, token }));
    try {
      const released = await this.queue.release(rows, true);
      this.forget(rows);
      if (released > 0) {
        for (const listener of this.listeners) {
          listener();
        }
      }
    } catch (error) {
      if (!isDatabaseUnavailable(error)) {
        this.forget(rows); // not an outage: their leases run out instead
      }
    }
  }

  private forget(rows: HeldRow[]): void {
    for (const row of rows) {
      if (this.pending.get(row.eventId) === row.token) {
        this.pending.delete(row.eventId);
      }
    }
  }
}
