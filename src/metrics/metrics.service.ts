import { Injectable, OnModuleInit } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { withTimeout } from '../common/with-timeout';
import { AttemptOutcome, QueueEvents } from '../queue/queue-events';
import { QueueStatsService } from '../queue/queue-stats.service';

/** The documented outcomes; `error` is anything else (a 408 for a slow body, a client gone before the answer). */
export type ReceivedOutcome =
  'accepted' | 'duplicate' | 'invalid_signature' | 'invalid_payload' | 'payload_too_large' | 'unavailable' | 'error';

/** How long a scrape waits for figures being counted before it answers with the cached ones. */
const RENDER_STATS_WAIT_MS = 1_000;

/** Attempt outcomes as `processed_total` names them; the others (released, lost) are not results. */
const PROCESSED_OUTCOMES: Partial<Record<AttemptOutcome, string>> = {
  processed: 'processed',
  ignored: 'ignored',
  retried: 'retried',
  dead: 'dead',
};

/**
 * Prometheus metrics (the README's names: dashboards depend on them). One registry per app instance,
 * so that several instances in one process (tests) do not collide.
 */
@Injectable()
export class MetricsService implements OnModuleInit {
  readonly registry = new Registry();

  private readonly received = new Counter({
    name: 'stripe_webhook_events_received_total',
    help: 'Webhook deliveries by event type (empty when unknown) and outcome.',
    labelNames: ['event_type', 'outcome'],
    registers: [this.registry],
  });

  private readonly processed = new Counter({
    name: 'stripe_webhook_events_processed_total',
    help: 'Handled events by event type and outcome (processed, ignored, retried, dead).',
    labelNames: ['event_type', 'outcome'],
    registers: [this.registry],
  });

  private readonly ackDuration = new Histogram({
    name: 'stripe_webhook_ack_duration_seconds',
    help: 'Time from a webhook request arriving to its answer.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  private readonly handlerDuration = new Histogram({
    name: 'stripe_webhook_handler_duration_seconds',
    help: 'Time one attempt took (its transaction included), by event type.',
    labelNames: ['event_type'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  private readonly reconcileRuns = new Counter({
    name: 'stripe_webhook_reconcile_runs_total',
    help: 'Reconciliation runs on this replica by outcome (succeeded, failed).',
    labelNames: ['outcome'],
    registers: [this.registry],
  });

  private readonly recovered = new Counter({
    name: 'stripe_webhook_events_recovered_total',
    help: 'Events a reconciliation run found at Stripe but not stored, stored by this replica, by event type.',
    labelNames: ['event_type'],
    registers: [this.registry],
  });

  private readonly reconcileLastSuccessGauge = new Gauge({
    name: 'stripe_webhook_reconcile_last_success_timestamp_seconds',
    help: 'When the last successful reconciliation sweep (of any replica) ended, in Unix seconds.',
    registers: [this.registry],
  });

  constructor(
    private readonly queueEvents: QueueEvents,
    private readonly stats: QueueStatsService,
  ) {
    const gauge = (name: string, help: string, read: () => number | undefined): void => {
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          const value = read();
          if (value !== undefined) {
            this.set(value);
          }
        },
      });
    };
    gauge('stripe_webhook_queue_pending', 'Queue rows not yet done.', () => this.stats.cached?.pending);
    gauge(
      'stripe_webhook_queue_oldest_pending_age_seconds',
      'Age of the oldest queue row.',
      () => this.stats.cached?.oldestPendingAgeSeconds,
    );
    gauge('stripe_webhook_dead_letters', 'Open dead letters.', () => this.stats.cached?.deadLetters);
    collectDefaultMetrics({ register: this.registry });
  }

  onModuleInit(): void {
    this.queueEvents.subscribe({
      attemptFinished: ({ eventType, outcome, durationMs }) => {
        const label = PROCESSED_OUTCOMES[outcome];
        if (label) {
          this.processed.inc({ event_type: eventType, outcome: label });
        }
        this.handlerDuration.observe({ event_type: eventType }, durationMs / 1000);
      },
      // Events stored as ignored at the door never reach a worker, but they were handled.
      storedIgnored: (eventType) => this.processed.inc({ event_type: eventType, outcome: 'ignored' }),
    });
  }

  webhookReceived(eventType: string | undefined, outcome: ReceivedOutcome, seconds: number): void {
    this.received.inc({ event_type: eventType ?? '', outcome });
    this.ackDuration.observe(seconds);
  }

  reconcileRunFinished(outcome: 'succeeded' | 'failed'): void {
    this.reconcileRuns.inc({ outcome });
  }

  eventRecovered(eventType: string): void {
    this.recovered.inc({ event_type: eventType });
  }

  reconcileLastSuccess(at: Date): void {
    this.reconcileLastSuccessGauge.set(at.getTime() / 1000);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    // Fresh enough gauges when the database answers; else, soon, the last figures counted.
    await withTimeout(this.stats.current(), RENDER_STATS_WAIT_MS).catch(() => undefined);
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
