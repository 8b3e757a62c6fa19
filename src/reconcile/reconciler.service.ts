import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob, CronTime } from 'cron';
import { AppError, ErrorCode } from '../common/app-error';
import { sqlState } from '../common/database-errors';
import { StripeEvent, stripeEventFromPayload } from '../common/stripe-event';
import { withTimeout } from '../common/with-timeout';
import { AppConfig } from '../config/app-config';
import { EVENTS_API_RETENTION_SECONDS } from '../config/environment-variables';
import { Connection, Database, Executor } from '../database/database';
import { sql } from '../database/sql';
import { MetricsService } from '../metrics/metrics.service';
import { HandlerRegistry } from '../queue/handler-registry';
import { RetryWorker } from '../queue/retry-worker.service';
import { EventsPage, StripeApi } from '../stripe/stripe-api.service';
import { describeStripeError, isKeyRefused, isKeyUnknown, MalformedStripeResponseError } from '../stripe/stripe-errors';
import { ReconcileAlerts } from './reconcile-alerts.service';
import { FailureKind, NewRun, PLATFORM, ReconcileRepository } from './reconcile.repository';
import { ReconcileStatus } from './reconcile-status.service';

export const RECONCILE_JOB_NAME = 'stripe-reconcile';
/** One sweep at a time across replicas: a session advisory lock, tried, never waited for. */
const RECONCILE_LOCK_KEY = 4_242_003;
/** Each sweep starts this long before the checkpoint, for events Stripe records a little late. */
export const OVERLAP_SECONDS = 60;
/** Stripe accepts at most 20 types in one `types[]` filter. */
const TYPES_PER_LIST = 20;
const SHUTDOWN_WAIT_MS = 10_000;

export interface AdminRunRequest {
  since?: Date;
  until?: Date;
  dryRun: boolean;
  actor: string;
}

export type AdminRunResult = { started: true; runId: string } | { started: false };

/** What a run lists for one account (the platform, or a connected account), in seconds of `created`. */
interface AccountRange {
  /** PLATFORM, or a connected account's id. */
  account: string;
  since: number;
  until: number;
  /** Whether the account's checkpoint moves to `until` once its range is listed. */
  coversCheckpoint: boolean;
}

interface RunPlan extends NewRun {
  id: string;
  /** The platform first, then each connected account swept. */
  ranges: AccountRange[];
}

/**
 * The reconciliation sweep: lists `GET /v1/events` for the handled types over a range of `created`
 * and stores every event not stored yet (`source` reconcile), to be handled by the queue like a
 * delivered one. Scheduled sweeps run on RECONCILE_CRON from the checkpoint (less a 60 s overlap)
 * to now less RECONCILE_GRACE_SECONDS, the very first one from RECONCILE_INITIAL_LOOKBACK_SECONDS
 * back; the checkpoint moves only once the whole range was listed, so a failed sweep leaves it and
 * the next one lists the range again. One replica sweeps at a time (advisory lock), and a cron tick
 * is swept once however many replicas fire on it. Memory holds at most two pages (200 events).
 * Times come from the database clock.
 *
 * Connect: a sweep also lists, with `Stripe-Account`, each connected account with an event received in
 * the last 30 days (unless it deauthorized the platform since), one after the other, each from its
 * own checkpoint. Each account's outcome and checkpoint are recorded as soon as its range is listed,
 * so one account's failure leaves the others' progress; the run sums what every account listed and
 * recovered, fails if any account failed, and its error names the accounts that did.
 */
@Injectable()
export class Reconciler implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(Reconciler.name);
  private running: Promise<void> | undefined;
  private stopping = false;

  constructor(
    private readonly config: AppConfig,
    private readonly db: Database,
    private readonly scheduler: SchedulerRegistry,
    private readonly api: StripeApi,
    private readonly repository: ReconcileRepository,
    private readonly handlers: HandlerRegistry,
    private readonly worker: RetryWorker,
    private readonly metrics: MetricsService,
    private readonly alerts: ReconcileAlerts,
    private readonly status: ReconcileStatus,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.api.enabled) {
      return;
    }
    // Registered at run time: @Cron() would read the expression before the configuration exists.
    const cronTime = new CronTime(this.config.reconcile.cron);
    const job = CronJob.from({
      cronTime: this.config.reconcile.cron,
      // The tick's scheduled time names the run, so replicas firing on it agree (it fires within a second).
      onTick: () => void this.runScheduled(cronTime.getNextDateFrom(new Date(Date.now() - 1_000)).toJSDate()),
      start: true,
    });
    this.scheduler.addCronJob(RECONCILE_JOB_NAME, job);
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    if (this.scheduler.doesExist('cron', RECONCILE_JOB_NAME)) {
      await this.scheduler.getCronJob(RECONCILE_JOB_NAME).stop();
      this.scheduler.deleteCronJob(RECONCILE_JOB_NAME);
    }
    // A sweep stops at its next page; its run is recorded failed and the checkpoint stays.
    await withTimeout(this.whenIdle(), SHUTDOWN_WAIT_MS).catch(() =>
      this.logger.warn('a reconciliation sweep was still running at shutdown; the next sweep covers its range'),
    );
  }

  /** Resolves once no sweep runs on this replica. */
  async whenIdle(): Promise<void> {
    while (this.running) {
      await this.running;
    }
  }

  /**
   * The sweep of one cron tick. Returns the run's id, or null when there was nothing to do here: no
   * key, another replica sweeping, or this tick already swept.
   */
  async runScheduled(tick: Date): Promise<string | null> {
    if (!this.api.enabled || this.stopping) {
      return null;
    }
    const lock = await this.tryLock().catch((error: unknown) => {
      this.logger.warn({ error: describeStripeError(error) }, 'reconciliation skipped: the database is unavailable');
      return null;
    });
    if (!lock) {
      return null;
    }
    let plan: RunPlan | null;
    try {
      plan = await this.plan({ trigger: 'schedule', actor: null, scheduledFor: tick, dryRun: false });
    } catch (error) {
      await this.unlock(lock);
      this.logger.warn({ error: describeStripeError(error) }, 'reconciliation could not start');
      return null;
    }
    if (!plan) {
      await this.unlock(lock);
      return null;
    }
    await this.start(lock, plan);
    return plan.id;
  }

  /**
   * An operator's run over [since, until] (by default the scheduled sweep's range). Starts it in the
   * background and returns its id, or `started: false` while another sweep runs on any replica.
   * `record` is written in the transaction that records the run (the audit log).
   */
  async startAdminRun(
    request: AdminRunRequest,
    record: (manager: Executor, runId: string) => Promise<void>,
  ): Promise<AdminRunResult> {
    if (!this.api.enabled) {
      throw new AppError(ErrorCode.Unavailable, 'STRIPE_API_KEY is not set: this service does not pull from Stripe.');
    }
    const now = await this.repository.now();
    const since = request.since && Math.floor(request.since.getTime() / 1000);
    const until = request.until && Math.min(Math.floor(request.until.getTime() / 1000), now);
    if (since !== undefined && since < now - EVENTS_API_RETENTION_SECONDS) {
      throw new AppError(
        ErrorCode.InvalidRequest,
        "since is more than 30 days ago: Stripe's Events API keeps 30 days of events.",
      );
    }
    if (since !== undefined && until !== undefined && since > until) {
      throw new AppError(ErrorCode.InvalidRequest, 'since must not be later than until (or now).');
    }
    const lock = await this.tryLock();
    if (!lock) {
      return { started: false };
    }
    let plan: RunPlan | null;
    try {
      plan = await this.plan(
        { trigger: 'admin', actor: request.actor, scheduledFor: null, dryRun: request.dryRun },
        { since, until, record },
      );
    } catch (error) {
      await this.unlock(lock);
      throw error;
    }
    if (!plan) {
      await this.unlock(lock);
      return { started: false };
    }
    void this.start(lock, plan);
    return { started: true, runId: plan.id };
  }

  /** Works out each account's range from its checkpoint and records the run; null if its tick was swept. */
  private async plan(
    run: Pick<NewRun, 'trigger' | 'actor' | 'scheduledFor' | 'dryRun'>,
    asked: { since?: number; until?: number; record?: (manager: Executor, runId: string) => Promise<void> } = {},
  ): Promise<RunPlan | null> {
    // Whatever is still `running` was left by a replica that died: this one holds the lock now.
    const abandoned = await this.repository.failAbandonedRuns();
    if (abandoned > 0) {
      this.logger.warn({ runs: abandoned }, 'reconciliation runs interrupted earlier marked failed');
    }
    const now = await this.repository.now();
    const accounts = [PLATFORM, ...(await this.repository.accountsToSweep(EVENTS_API_RETENTION_SECONDS))];
    const states = await this.repository.states(accounts);
    const ranges = accounts.map((account) =>
      this.rangeOf(account, states.get(account)?.checkpointAt ?? null, now, asked, run.dryRun),
    );
    const newRun: NewRun = {
      ...run,
      since: new Date(Math.min(...ranges.map((r) => r.since)) * 1000),
      until: new Date(Math.max(...ranges.map((r) => r.until)) * 1000),
    };
    const id = await this.db.transaction(async (manager) => {
      const created = await this.repository.createRun(manager, newRun);
      if (created && asked.record) {
        await asked.record(manager, created);
      }
      return created;
    });
    return id ? { ...newRun, id, ranges } : null;
  }

  /** One account's range: what was asked, else from its checkpoint (less the overlap) to now less the grace. */
  private rangeOf(
    account: string,
    checkpointAt: Date | null,
    now: number,
    asked: { since?: number; until?: number },
    dryRun: boolean,
  ): AccountRange {
    // Without a checkpoint, what the first sweep would cover stands for it.
    const checkpoint = checkpointAt
      ? Math.floor(checkpointAt.getTime() / 1000)
      : now - this.config.reconcile.initialLookbackSeconds;
    // The overlap covers events created just before a checkpoint; a first sweep starts exactly its lookback back.
    const overlap = checkpointAt ? OVERLAP_SECONDS : 0;
    const since = asked.since ?? Math.max(checkpoint - overlap, now - EVENTS_API_RETENTION_SECONDS);
    const until = asked.until ?? now - this.config.reconcile.graceSeconds;
    // Events older than the Events API keeps cannot be listed: past that, the checkpoint is its limit.
    const oldestListable = now - EVENTS_API_RETENTION_SECONDS;
    if (checkpoint < oldestListable && !dryRun) {
      this.logger.warn(
        { account: account || undefined, checkpoint: new Date(checkpoint * 1000).toISOString() },
        'the checkpoint is older than the 30 days Stripe keeps events: events between it and 30 days ago cannot be recovered',
      );
    }
    const reach = Math.max(checkpoint, oldestListable);
    // A range that starts at or before the checkpoint and ends after it extends what is known listed.
    return { account, since, until, coversCheckpoint: !dryRun && since <= reach && until >= reach };
  }

  private start(lock: Connection, plan: RunPlan): Promise<void> {
    const running = this.sweep(plan).finally(() => this.unlock(lock));
    this.running = running;
    running
      .finally(() => {
        if (this.running === running) {
          this.running = undefined;
        }
      })
      .catch(() => undefined);
    return running;
  }

  private async sweep(plan: RunPlan): Promise<void> {
    const log = { runId: plan.id, trigger: plan.trigger, dryRun: plan.dryRun };
    this.logger.log(
      {
        ...log,
        since: plan.since.toISOString(),
        until: plan.until.toISOString(),
        accounts: plan.ranges.length - 1,
      },
      'reconciliation started',
    );
    const recovered = new Map<string, number>();
    let listed = 0;
    const failures: Array<{ account: string; error: string }> = [];
    for (const range of plan.ranges) {
      let failure: unknown;
      try {
        if (range.until >= range.since) {
          listed += await this.listRange(plan, range, recovered);
        }
      } catch (error) {
        failure = error;
        failures.push({ account: range.account, error: describeFailure(error) });
      }
      if (!plan.dryRun) {
        await this.recordAccount(plan, range, failure);
      }
      // The accounts not listed keep their checkpoints. A key refused for the platform's own list is
      // refused for every account too: listing them would only fail as many times, and alert as often.
      if (this.stopping || (range.account === PLATFORM && isKeyUnknown(failure))) {
        break;
      }
    }
    const succeeded = failures.length === 0;
    const error = succeeded ? null : describeFailures(failures);
    const recoveredTotal = [...recovered.values()].reduce((a, b) => a + b, 0);
    this.metrics.reconcileRunFinished(succeeded ? 'succeeded' : 'failed');
    try {
      await this.db.transaction((tx) =>
        this.repository.finishRun(tx, plan.id, succeeded ? 'succeeded' : 'failed', error),
      );
      if (!plan.dryRun) {
        await this.status.refresh().catch(() => undefined);
      }
    } catch (recordError) {
      this.logger.warn({ ...log, error: describeStripeError(recordError) }, 'reconciliation outcome not recorded');
    }
    if (!plan.dryRun && recoveredTotal > 0) {
      this.alerts.recovered(plan.id, recovered);
    }
    if (succeeded) {
      this.logger.log({ ...log, listed, recovered: recoveredTotal }, 'reconciliation succeeded');
    } else {
      this.logger.warn({ ...log, listed, error }, 'reconciliation failed; the checkpoints of the failed accounts stay');
    }
  }

  /**
   * Records how one account's listing ended (moving its checkpoint when its range covered it), before
   * the next account is listed, and alerts when its state changed. Called only for runs that store.
   */
  private async recordAccount(plan: RunPlan, range: AccountRange, failure: unknown): Promise<void> {
    const succeeded = failure === undefined;
    const kind: FailureKind = isKeyRefused(failure) ? 'key_refused' : 'failing';
    const error = succeeded ? '' : describeFailure(failure);
    try {
      const previous = await this.repository.state(range.account);
      await this.db.transaction((tx) =>
        this.repository.recordOutcome(
          tx,
          succeeded
            ? { succeeded: true, checkpointAt: range.coversCheckpoint ? new Date(range.until * 1000) : null }
            : { succeeded: false, kind, error },
          range.account,
        ),
      );
      this.alerts.outcome(previous, succeeded ? null : { kind, error }, range.account);
    } catch (recordError) {
      this.logger.warn(
        { runId: plan.id, account: range.account || undefined, error: describeStripeError(recordError) },
        'reconciliation outcome of an account not recorded; its checkpoint stays',
      );
    }
  }

  /**
   * Lists every page of one account's range, type group by type group; returns how many events were
   * listed. The next page is asked for while this one is stored, so a page's store does not add to
   * the pace the request budget sets; at most two pages are held at once.
   */
  private async listRange(plan: RunPlan, range: AccountRange, recovered: Map<string, number>): Promise<number> {
    const types = this.handlers.eventTypes();
    const account = range.account === PLATFORM ? null : range.account;
    let listed = 0;
    for (let i = 0; i < types.length; i += TYPES_PER_LIST) {
      const fetchPage = (startingAfter?: string): Promise<EventsPage> => {
        if (this.stopping) {
          return Promise.reject(new Error('the replica is shutting down'));
        }
        return this.api.listEvents(
          {
            types: types.slice(i, i + TYPES_PER_LIST),
            createdGte: range.since,
            createdLte: range.until,
            startingAfter,
          },
          { account },
        );
      };
      let next = fetchPage();
      for (;;) {
        const page = await next;
        const events = page.events.map((item) => asStripeEvent(item, account));
        const more = page.hasMore && events.length > 0;
        if (more) {
          next = fetchPage(events[events.length - 1].id);
          next.catch(() => undefined); // awaited below; a failure then fails the account's range
        }
        listed += events.length;
        if (plan.dryRun) {
          await this.repository.countMissing(
            plan.id,
            events.map((e) => e.id),
          );
        } else {
          await this.store(plan.id, events, recovered, account);
        }
        if (!more) {
          break;
        }
      }
    }
    return listed;
  }

  private async store(
    runId: string,
    events: StripeEvent[],
    recovered: Map<string, number>,
    account: string | null,
  ): Promise<void> {
    const livemode = this.config.stripeLivemode;
    const ignored = (event: StripeEvent): boolean => livemode !== undefined && event.livemode !== livemode;
    let stored;
    try {
      stored = await this.repository.storePage(runId, events, ignored, account);
    } catch (error) {
      if (!sqlState(error)?.startsWith('22')) {
        throw error;
      }
      // An event PostgreSQL cannot hold (jsonb refuses \u0000): store the others one by one, so
      // that one event does not hold the checkpoint back for ever.
      stored = [];
      for (const event of events) {
        try {
          stored.push(...(await this.repository.storePage(runId, [event], ignored, account)));
        } catch (single) {
          if (!sqlState(single)?.startsWith('22')) {
            throw single;
          }
          this.logger.error(
            { eventId: event.id, eventType: event.type, error: describeStripeError(single) },
            'listed event cannot be stored (PostgreSQL refuses its JSON); skipped',
          );
          await this.repository.addListed(runId, 1);
        }
      }
    }
    for (const event of stored) {
      recovered.set(event.event_type, (recovered.get(event.event_type) ?? 0) + 1);
      this.metrics.eventRecovered(event.event_type);
      this.logger.log(
        { eventId: event.stripe_event_id, eventType: event.event_type, ...(account ? { account } : {}) },
        'event recovered from Stripe',
      );
    }
    if (stored.some((e) => e.status === 'pending')) {
      this.worker.nudge();
    }
  }

  /** The sweep lock on a connection of its own, held until the run ends; null if another replica holds it. */
  private async tryLock(): Promise<Connection | null> {
    const connection = await this.db.connect();
    try {
      const { rows } = await sql<{ locked: boolean }>(connection, 'SELECT pg_try_advisory_lock($1) AS locked', [
        RECONCILE_LOCK_KEY,
      ]);
      if (rows[0].locked) {
        return connection;
      }
    } catch (error) {
      connection.release();
      throw error;
    }
    connection.release();
    return null;
  }

  private async unlock(lock: Connection): Promise<void> {
    try {
      await lock.query('SELECT pg_advisory_unlock($1)', [RECONCILE_LOCK_KEY]);
    } catch {
      // The connection is gone, and the lock with it.
    } finally {
      lock.release();
    }
  }
}

/**
 * A listed event, checked. A connected account's events carry their `account` (Stripe documents it on
 * the Event object); one listed without it gets it, so that the calls its handler makes are made for
 * that account too; one naming another account is not what was asked for.
 */
function asStripeEvent(listed: unknown, account: string | null): StripeEvent {
  let event: StripeEvent;
  try {
    event = stripeEventFromPayload(listed);
  } catch (error) {
    throw new MalformedStripeResponseError(`GET /v1/events listed something that is not an event: ${String(error)}`);
  }
  if (account === null || event.account === account) {
    return event;
  }
  if (event.account !== null) {
    throw new MalformedStripeResponseError(
      `GET /v1/events for ${account} listed ${event.id}, an event of ${event.account}`,
    );
  }
  return { ...event, account, payload: { ...event.payload, account } };
}

function describeFailure(error: unknown): string {
  return describeStripeError(error).slice(0, 2_000);
}

/** The run's error: the failure, or each failed account's, named (the platform's first). */
function describeFailures(failures: Array<{ account: string; error: string }>): string {
  if (failures.length === 1 && failures[0].account === PLATFORM) {
    return failures[0].error;
  }
  return failures
    .map((f) => `${f.account === PLATFORM ? 'platform' : f.account}: ${f.error}`)
    .join('; ')
    .slice(0, 2_000);
}
