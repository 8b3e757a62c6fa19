import { Injectable } from '@nestjs/common';
import type { AttemptOutcome } from './event-processor';
import type { DeadLetterRow } from './queue.repository';

export interface AttemptFinished {
  eventType: string;
  outcome: AttemptOutcome;
  durationMs: number;
}

export interface QueueListener {
  attemptFinished?(event: AttemptFinished): void;
  deadLettered?(rows: DeadLetterRow[]): void;
}

/**
 * What the queue reports to the rest of the service (metrics, alerts). Listeners run synchronously
 * and must not throw; a failing listener never affects processing.
 */
@Injectable()
export class QueueEvents {
  private readonly listeners: QueueListener[] = [];

  subscribe(listener: QueueListener): void {
    this.listeners.push(listener);
  }

  attemptFinished(event: AttemptFinished): void {
    for (const listener of this.listeners) {
      try {
        listener.attemptFinished?.(event);
      } catch {
        // A listener's failure must never affect processing.
      }
    }
  }

  deadLettered(rows: DeadLetterRow[]): void {
    for (const listener of this.listeners) {
      try {
        listener.deadLettered?.(rows);
      } catch {
        // As above.
      }
    }
  }
}
