import { Injectable } from '@nestjs/common';
import type { DeadLetterRow } from './queue.repository';

/**
 * How one attempt ended: the handler's writes committed (`processed`, or `ignored` when no handler
 * exists), it failed and was scheduled again (`retried`) or dead-lettered (`dead`); or it never ran:
 * given back during an outage (`released`), or the lease had gone to another replica (`lost`).
 */
export type AttemptOutcome = 'processed' | 'ignored' | 'retried' | 'dead' | 'released' | 'lost';

export interface AttemptFinished {
  eventType: string;
  outcome: AttemptOutcome;
  durationMs: number;
}

export interface QueueListener {
  attemptFinished?(event: AttemptFinished): void;
  deadLettered?(rows: DeadLetterRow[]): void;
  /** An event stored as `ignored` at the door (no handler, or the other livemode): it never runs. */
  storedIgnored?(eventType: string): void;
}

/**
 * What the queue reports to the rest of the service (metrics, alerts). Listeners run synchronously;
 * a failing listener never affects processing.
 */
@Injectable()
export class QueueEvents {
  private readonly listeners: QueueListener[] = [];

  subscribe(listener: QueueListener): void {
    this.listeners.push(listener);
  }

  attemptFinished(event: AttemptFinished): void {
    this.notify((listener) => listener.attemptFinished?.(event));
  }

  deadLettered(rows: DeadLetterRow[]): void {
    this.notify((listener) => listener.deadLettered?.(rows));
  }

  storedIgnored(eventType: string): void {
    this.notify((listener) => listener.storedIgnored?.(eventType));
  }

  private notify(call: (listener: QueueListener) => void): void {
    for (const listener of this.listeners) {
      try {
        call(listener);
      } catch {
        // A listener's failure must never affect processing.
      }
    }
  }
}
