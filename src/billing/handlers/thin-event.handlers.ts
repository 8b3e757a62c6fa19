import { Injectable, Logger } from '@nestjs/common';
import { AlertService } from '../../alerts/alert.service';
import { isObject, StripeEvent, stripeEventFromPayload, thinEventContext } from '../../common/stripe-event';
import { AppConfig } from '../../config/app-config';
import { EVENTS_API_RETENTION_SECONDS } from '../../config/environment-variables';
import type { Executor } from '../../database/database';
import { sql } from '../../database/sql';
import type { HandlerContext } from '../../queue/handler-registry';
import { PermanentEventError } from '../../queue/permanent-event.error';
import { QueueRepository } from '../../queue/queue.repository';
import { RetryWorker } from '../../queue/retry-worker.service';
import { Reconciler } from '../../reconcile/reconciler.service';
import { StripeApi } from '../../stripe/stripe-api.service';
import { describeStripeError, isNotFound, MalformedStripeResponseError } from '../../stripe/stripe-errors';

/** A sweep range must start this far inside the Events API's 30 days, so that it is still valid when it starts. */
const RETENTION_MARGIN_SECONDS = 60;

/**
 * Thin events (POST /webhooks/stripe/thin). A thin copy of a handled classic event (`v1.<type>`)
 * fetches the snapshot event it names and stores it like a delivered one, in the attempt's
 * transaction, so the thin event is processed exactly when its snapshot is stored; the snapshot
 * then runs its own handler through the queue. `v2.core.health.event_generation_failure.resolved`
 * raises an alert and starts a reconciliation run over the window before the failure was resolved.
 */
@Injectable()
export class ThinEventHandlers {
  private readonly logger = new Logger(ThinEventHandlers.name);

  constructor(
    private readonly config: AppConfig,
    private readonly stripe: StripeApi,
    private readonly queue: QueueRepository,
    private readonly worker: RetryWorker,
    private readonly reconciler: Reconciler,
    private readonly alerts: AlertService,
  ) {}

  /** `v2.core.event_destination.ping`: Stripe checks the destination; processed with no effect. */
  ping(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Fetches the snapshot (`GET /v1/events/:id`, with `Stripe-Context` for a connected account's
   * event) and stores it with `source` thin unless it is already stored (delivered, swept, or
   * fetched by another thin event). A snapshot Stripe does not know is a permanent failure; an
   * outage or a missing key fails the attempt, which is retried.
   */
  async copySnapshot(event: StripeEvent, manager: Executor, context: HandlerContext): Promise<void> {
    const snapshotId = event.payload.snapshot_event;
    if (typeof snapshotId !== 'string') {
      throw new PermanentEventError(`the thin event ${event.id} names no snapshot_event to fetch`);
    }
    if (!this.stripe.enabled) {
      throw new Error('STRIPE_API_KEY is not set');
    }
    const account = thinEventContext(event);
    let fetched: Record<string, unknown>;
    try {
      fetched = await this.stripe.retrieveEvent(snapshotId, { context: account });
    } catch (error) {
      // Stripe's own messages quote part of the key: the attempt's error says it our way.
      if (isNotFound(error)) {
        throw new PermanentEventError(
          `snapshot event ${snapshotId} is unknown to Stripe: ${describeStripeError(error)}`,
        );
      }
      throw new Error(`fetching snapshot event ${snapshotId} failed: ${describeStripeError(error)}`, { cause: error });
    }
    let snapshot: StripeEvent;
    try {
      snapshot = stripeEventFromPayload(fetched);
    } catch (error) {
      throw new MalformedStripeResponseError(
        `GET /v1/events/${snapshotId} answered something that is not an event: ${String(error)}`,
      );
    }
    if (snapshot.id !== snapshotId || `v1.${snapshot.type}` !== event.type) {
      throw new PermanentEventError(
        `GET /v1/events/${snapshotId} answered ${snapshot.id} of type ${snapshot.type}, not the event ${event.type} copies`,
      );
    }
    const snapshotAccount = typeof fetched.account === 'string' ? fetched.account : account;
    const stored = await this.queue.insertFetched(manager, snapshot, 'thin', snapshotAccount);
    this.logger.log(
      { eventId: event.id, eventType: event.type, snapshotId, snapshotType: snapshot.type, stored },
      stored ? 'snapshot event fetched and stored' : 'snapshot event was already stored',
    );
    if (stored) {
      context.afterCommit(() => this.worker.nudge());
    }
  }

  /**
   * `v2.core.health.event_generation_failure.resolved`: Stripe failed to create an event, which is
   * therefore never delivered nor listed. Operators are alerted (they must check the object it
   * concerns), and a reconciliation run lists the RECONCILE_INITIAL_LOOKBACK_SECONDS before the
   * failure was resolved, for anything else missed meanwhile. While another sweep runs the attempt
   * fails, and its retry starts the run.
   */
  async generationFailureResolved(event: StripeEvent, manager: Executor, context: HandlerContext): Promise<void> {
    const failure = describeGenerationFailure(event);
    if (context.dryRun) {
      return;
    }
    if (!this.stripe.enabled) {
      context.afterCommit(() =>
        this.alerts.send(`${failure.text} No reconciliation run was started: STRIPE_API_KEY is not set.`),
      );
      return;
    }
    const { rows } = await sql<{ now: string }>(manager, 'SELECT floor(extract(epoch FROM now()))::bigint AS now');
    const now = Number(rows[0].now);
    const oldest = now - EVENTS_API_RETENTION_SECONDS + RETENTION_MARGIN_SECONDS;
    const until = Math.min(failure.resolvedAt, now);
    if (until < oldest) {
      context.afterCommit(() =>
        this.alerts.send(`${failure.text} It is older than the 30 days Stripe keeps events: no run was started.`),
      );
      return;
    }
    const since = Math.max(until - this.config.reconcile.initialLookbackSeconds, oldest);
    const result = await this.reconciler.startAdminRun(
      { since: new Date(since * 1000), until: new Date(until * 1000), dryRun: false, actor: `stripe:${event.id}` },
      () => Promise.resolve(),
    );
    if (!result.started) {
      throw new Error('a reconciliation sweep is already running; retried so that this window is swept too');
    }
    const window = `${new Date(since * 1000).toISOString()} to ${new Date(until * 1000).toISOString()}`;
    this.logger.log(
      { eventId: event.id, eventType: event.type, runId: result.runId, window },
      'reconciliation run started',
    );
    context.afterCommit(() =>
      this.alerts.send(`${failure.text} Reconciliation run ${result.runId} lists the events of ${window}.`),
    );
  }
}

/**
 * What the alert says and when the failure was resolved: from the event's `data` when it carries it
 * (`resolved_at`, `summary`, `impact` with `event_type`, `related_object` or `related_object_id`,
 * `account`/`context`), else its `created`.
 */
function describeGenerationFailure(event: StripeEvent): { text: string; resolvedAt: number } {
  const data = isObject(event.payload.data) ? event.payload.data : {};
  const impact = isObject(data.impact) ? data.impact : {};
  const resolvedMs = typeof data.resolved_at === 'string' ? Date.parse(data.resolved_at) : Number.NaN;
  const resolvedAt = Number.isFinite(resolvedMs) ? Math.floor(resolvedMs / 1000) : (event.created ?? 0);
  const relatedObject = isObject(impact.related_object) ? impact.related_object.id : impact.related_object_id;
  const account = impact.account ?? impact.context ?? thinEventContext(event);
  const details = [
    typeof impact.event_type === 'string' ? `a ${impact.event_type} event` : 'an event',
    typeof relatedObject === 'string' ? `for ${relatedObject}` : '',
    typeof account === 'string' ? `of account ${account}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  const summary = typeof data.summary === 'string' ? ` (${data.summary})` : '';
  return {
    resolvedAt,
    text:
      `:rotating_light: Stripe failed to generate ${details}${summary}; resolved at ` +
      `${new Date(resolvedAt * 1000).toISOString()} (${event.id}). Such an event is never delivered nor listed ` +
      'by the Events API: check the object it concerns in Stripe.',
  };
}
