import { Injectable } from '@nestjs/common';
import { isDatabaseUnavailable } from '../common/database-errors';
import { QueueRepository } from './queue.repository';

/** How often rows held during an outage are offered back while the database is away. */
const RETRY_MS = 1_000;

/** A held queue row to give back: its event and the lock token of the claim that holds it. */
export interface HeldRow {
  eventId: string;
  token: string;
}

/**
 * Gives back rows this replica holds but could not run because the database was unreachable: due
 * now, the claim uncounted, for any replica to take. Until the database answers they are offered
 * again every second. Giving them back as soon as it answers, rather than when the lease runs out,
 * lets the work resume at once on whichever replica is free.
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

  /** Gives `row` back now if the database answers, else as soon as it does. */
  giveBack(row: HeldRow): Promise<void> {
    this.pending.set(row.eventId, row.token);
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
    let released = false;
    for (const [eventId, token] of this.pending) {
      try {
        released = (await this.queue.release(eventId, token, true)) || released;
        this.pending.delete(eventId);
      } catch (error) {
        if (!isDatabaseUnavailable(error)) {
          this.pending.delete(eventId);
        }
        break;
      }
    }
    if (released) {
      for (const listener of this.listeners) {
        listener();
      }
    }
  }
}
