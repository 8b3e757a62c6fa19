import { Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { QueueEvents } from '../queue/queue-events';
import type { DeadLetterRow } from '../queue/queue.repository';
import { AlertService } from './alert.service';

/** Dead letters that arrive within this window go out in one message. */
const WINDOW_MS = 2_000;
const LISTED = 20;

/**
 * Posts an alert when events are dead-lettered: event id, type, attempts and error, several in one
 * message when many die together. Sending never blocks or fails processing.
 */
@Injectable()
export class DeadLetterAlerts implements OnModuleInit, OnApplicationShutdown {
  private buffer: DeadLetterRow[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly events: QueueEvents,
    private readonly alerts: AlertService,
  ) {}

  onModuleInit(): void {
    if (!this.alerts.enabled) {
      return;
    }
    this.events.subscribe({ deadLettered: (rows) => this.add(rows) });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.flush();
  }

  private add(rows: DeadLetterRow[]): void {
    this.buffer.push(...rows);
    this.timer ??= setTimeout(() => void this.flush(), WINDOW_MS);
  }

  private async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const rows = this.buffer;
    this.buffer = [];
    if (rows.length > 0) {
      await this.alerts.send(deadLetterMessage(rows));
    }
  }
}

export function deadLetterMessage(rows: DeadLetterRow[]): string {
  const head =
    rows.length === 1
      ? ':rotating_light: A Stripe event was moved to the dead-letter queue'
      : `:rotating_light: ${rows.length} Stripe events were moved to the dead-letter queue`;
  const lines = rows
    .slice(0, LISTED)
    .map(
      (r) =>
        `• ${r.stripe_event_id} (${r.event_type}) after ${r.retry_count} attempt${r.retry_count === 1 ? '' : 's'}: ` +
        `${(r.error ?? 'no error recorded').slice(0, 300)} [dead letter ${r.id}]`,
    );
  if (rows.length > LISTED) {
    lines.push(`… and ${rows.length - LISTED} more (GET /admin/dead-letters)`);
  }
  return [head, ...lines].join('\n');
}
