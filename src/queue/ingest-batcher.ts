import { Injectable } from '@nestjs/common';
import { sqlState } from '../common/database-errors';
import { NewEvent, QueueRepository } from './queue.repository';

/** Inserts in flight at once; deliveries arriving meanwhile wait and go together in the next one. */
const MAX_IN_FLIGHT = 2;
/** The most events one insert statement carries. */
const MAX_BATCH = 64;

interface Waiting {
  event: NewEvent;
  resolve: (id: string | null) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: deliveries that arrive while inserts are in flight are stored together by the next
 * statement (a lone one is written at once); each caller learns its own result once committed. A
 * statement refused for what one event holds is retried event by event, so only that one is refused.
 */
@Injectable()
export class IngestBatcher {
  private waiting: Waiting[] = [];
  private inFlight = 0;

  constructor(private readonly queue: QueueRepository) {}

  /** Resolves to the new event's id, or null when its id was already stored. */
  insert(event: NewEvent): Promise<string | null> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ event, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.waiting.length > 0) {
      const batch = this.takeBatch();
      this.inFlight++;
      void this.write(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  /** Up to MAX_BATCH waiting deliveries with distinct event ids; a second copy waits for the next statement. */
  private takeBatch(): Waiting[] {
    const batch: Waiting[] = [];
    const ids = new Set<string>();
    const rest: Waiting[] = [];
    for (const waiting of this.waiting) {
      if (batch.length < MAX_BATCH && !ids.has(waiting.event.event.id)) {
        ids.add(waiting.event.event.id);
        batch.push(waiting);
      } else {
        rest.push(waiting);
      }
    }
    this.waiting = rest;
    return batch;
  }

  private async write(batch: Waiting[]): Promise<void> {
    let ids: Array<string | null>;
    try {
      ids = await this.queue.insertEvents(batch.map((w) => w.event));
    } catch (error) {
      if (batch.length > 1 && isAboutOneEvent(error)) {
        await Promise.all(batch.map((w) => this.write([w])));
      } else {
        batch.forEach((w) => w.reject(error));
      }
      return;
    }
    batch.forEach((w, i) => w.resolve(ids[i]));
  }
}

/** Data exceptions (22) and program limits such as a stack too deep (54) come from what an event holds. */
function isAboutOneEvent(error: unknown): boolean {
  const state = sqlState(error);
  return state !== undefined && (state.startsWith('22') || state.startsWith('54'));
}
