import { Injectable, Logger } from '@nestjs/common';
import { isDatabaseUnavailable, sqlState } from '../common/database-errors';
import { storedEventFromPayload, StripeEvent } from '../common/stripe-event';
import { runWithin, withTimeout } from '../common/with-timeout';
import { AppConfig } from '../config/app-config';
import { Connection, Database } from '../database/database';
import { EventHandler, HandlerRegistry } from './handler-registry';
import { PermanentEventError } from './permanent-event.error';
import { AttemptOutcome, QueueEvents } from './queue-events';
import { ClaimedRow, QueueRepository } from './queue.repository';
import { isLastAttempt, leaseMs, retryDelaySeconds, RetryPolicy } from './retry-policy';
import { RowReleaser } from './row-releaser';

const MAX_ERROR_LENGTH = 2_000;
const PROBE_TIMEOUT_MS = 2_000;
/** SQLSTATEs of a transaction that lost to a concurrent one: deadlock_detected, serialization_failure. */
const TRANSACTION_CONFLICTS = new Set(['40P01', '40001']);
/** How many times an attempt that lost to a concurrent transaction runs again at once, uncounted. */
const CONFLICT_RETRIES = 3;

/**
 * An event type whose handler takes longer than this on average (say, it calls an API) runs alone:
 * in a batch it would hold the batch's locks and delay its neighbours' commit.
 */
const SLOW_HANDLER_MS = 25;

/** A held row ready to run: its event parsed and its handler looked up (none: it is ignored). */
interface Prepared {
  row: ClaimedRow;
  event: StripeEvent;
  handler: EventHandler | undefined;
}

type AfterCommit = Array<{ row: ClaimedRow; effect: () => unknown }>;

/**
 * Runs held events. An attempt is one transaction (fenced delete of the queue rows, handlers,
 * completions), so effects apply once; several events share one, run again alone if it fails. Only
 * a handler that ran counts an attempt: an outage before that gives the row back uncounted.
 */
@Injectable()
export class EventProcessor {
  private readonly logger = new Logger(EventProcessor.name);
  private readonly policy: RetryPolicy;
  /** Moving average of each event type's handler time, in ms. */
  private readonly handlerMs = new Map<string, number>();

  constructor(
    private readonly config: AppConfig,
    private readonly db: Database,
    private readonly handlers: HandlerRegistry,
    private readonly queue: QueueRepository,
    private readonly events: QueueEvents,
    private readonly releaser: RowReleaser,
  ) {
    this.policy = {
      baseDelaySeconds: config.retryBaseDelaySeconds,
      maxDelaySeconds: config.retryMaxDelaySeconds,
      maxAttempts: config.retryMaxAttempts,
    };
  }

  /** The lease a claim takes: one attempt's limit plus a margin for the statements around it. */
  get leaseMs(): number {
    return leaseMs(this.config.handlerTimeoutMs);
  }

  /**
   * Runs held rows: together in one transaction when they can be, else each alone. Rows still to
   * run alone once `stopping()` says so are given back instead.
   */
  async process(rows: ClaimedRow[], stopping: () => boolean = () => false): Promise<void> {
    const together: Prepared[] = [];
    const alone: ClaimedRow[] = [];
    for (const row of rows) {
      const prepared = rows.length > 1 && !this.isCrashLooping(row) ? this.tryPrepare(row) : undefined;
      if (prepared) {
        together.push(prepared);
      } else {
        alone.push(row);
      }
    }
    if (together.length === 1) {
      alone.push(together[0].row);
    } else if (together.length > 1) {
      alone.push(...(await this.runTogether(together)));
    }
    for (const [i, row] of alone.entries()) {
      if (stopping()) {
        await this.giveBack(alone.slice(i));
        return;
      }
      await this.attempt(row);
    }
  }

  /** One attempt of one event, in a transaction of its own. */
  async attempt(row: ClaimedRow): Promise<AttemptOutcome> {
    const started = performance.now();
    const progress = { handlerRan: false };
    let outcome: AttemptOutcome;
    let error: unknown;
    try {
      if (this.isCrashLooping(row)) {
        throw new PermanentEventError(
          `claimed ${row.claims} times without a result, more than RETRY_MAX_ATTEMPTS (${this.policy.maxAttempts}): ` +
            'the replicas running it crashed or lost their lease each time',
        );
      }
      outcome = await this.runAloneThroughConflicts(this.prepare(row), progress);
    } catch (caught) {
      error = caught;
      outcome = await this.settleFailure(row, caught, progress.handlerRan);
    }
    this.report(row, outcome, performance.now() - started, error);
    return outcome;
  }

  /** Whether events of this type run in a transaction of their own (their handler is slow). */
  runsAlone(eventType: string): boolean {
    return (this.handlerMs.get(eventType) ?? 0) > SLOW_HANDLER_MS;
  }

  /**
   * A row claimed again and again without a result: the replicas running it died (say, its handler
   * crashes the process) or lost their lease each time. Running it again would loop.
   */
  private isCrashLooping(row: ClaimedRow): boolean {
    return row.claims > this.policy.maxAttempts;
  }

  private prepare(row: ClaimedRow): Prepared {
    let event: StripeEvent;
    try {
      event = storedEventFromPayload(row.payload);
    } catch (error) {
      throw new PermanentEventError(`stored payload is not a Stripe event: ${describeFailure(error)}`);
    }
    // An event of the other mode is ignored here too (it may be reprocessed after being stored as ignored).
    const otherMode = this.config.stripeLivemode !== undefined && event.livemode !== this.config.stripeLivemode;
    return { row, event, handler: otherMode ? undefined : this.handlers.get(row.eventType) };
  }

  private tryPrepare(row: ClaimedRow): Prepared | undefined {
    try {
      return this.prepare(row);
    } catch {
      return undefined; // run alone, where the failure is recorded
    }
  }

  /**
   * A deadlock or serialization failure with a concurrent transaction (events of one customer
   * handled by two batches at once take their rows in different orders) says nothing about the
   * event: its transaction was rolled back whole, so it runs again at once, uncounted, a few times.
   */
  private async runAloneThroughConflicts(
    prepared: Prepared,
    progress: { handlerRan: boolean },
  ): Promise<AttemptOutcome> {
    for (let retry = 0; ; retry++) {
      try {
        return await this.runAlone(prepared, progress);
      } catch (error) {
        if (retry >= CONFLICT_RETRIES || !TRANSACTION_CONFLICTS.has(sqlState(error) ?? '')) {
          throw error;
        }
        await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 45));
      }
    }
  }

  private async runAlone(prepared: Prepared, progress: { handlerRan: boolean }): Promise<AttemptOutcome> {
    const { row } = prepared;
    const connection = await this.db.connect();
    const afterCommit: AfterCommit = [];
    try {
      await connection.query('BEGIN');
      const taken = await this.queue.takeForAttempt(connection, [row], this.config.handlerTimeoutMs, this.leaseMs);
      if (!taken.has(row.eventId)) {
        await connection.query('ROLLBACK');
        connection.release();
        return 'lost';
      }
      progress.handlerRan = true;
      await this.runBounded(connection, () => this.runHandler(prepared, connection, afterCommit));
      const status = prepared.handler ? 'processed' : 'ignored';
      await this.queue.complete(connection, [{ row, status }]);
      await connection.query('COMMIT');
      connection.release();
      this.runAfterCommit(afterCommit);
      return status;
    } catch (error) {
      // Never roll back and reuse the connection: a handler may still have statements in flight (a
      // branch of a Promise.all) that would then run outside the transaction.
      connection.destroy();
      throw error;
    }
  }

  /** Several events in one transaction; returns the rows to run again alone if it failed. */
  private async runTogether(batch: Prepared[]): Promise<ClaimedRow[]> {
    const started = performance.now();
    const afterCommit: AfterCommit = [];
    let handlersStarted = false;
    let current: Prepared | undefined;
    let connection: Connection | undefined;
    let held: Prepared[] = [];
    try {
      connection = await this.db.connect();
      const tx = connection;
      await tx.query('BEGIN');
      const rows = batch.map((p) => p.row);
      const taken = await this.queue.takeForAttempt(tx, rows, this.config.handlerTimeoutMs, this.leaseMs);
      held = batch.filter((p) => taken.has(p.row.eventId));
      if (held.length > 0) {
        handlersStarted = true;
        await this.runBounded(tx, async () => {
          for (const prepared of held) {
            current = prepared;
            await this.runHandler(prepared, tx, afterCommit);
          }
        });
        await this.queue.complete(
          tx,
          held.map((p) => ({ row: p.row, status: p.handler ? 'processed' : 'ignored' })),
        );
      }
      await tx.query('COMMIT');
      tx.release();
    } catch (error) {
      connection?.destroy();
      if (error instanceof HandlerTimeoutError && current) {
        this.handlerMs.set(current.row.eventType, this.config.handlerTimeoutMs); // it hung: alone from now on
      }
      return this.recover(batch, error, handlersStarted);
    }
    this.runAfterCommit(afterCommit);
    const share = (performance.now() - started) / batch.length;
    for (const prepared of batch) {
      const outcome = !held.includes(prepared) ? 'lost' : prepared.handler ? 'processed' : 'ignored';
      this.report(prepared.row, outcome, share);
    }
    return [];
  }

  /**
   * After a failed batch: an outage before any handler ran (or one the database still has) gives
   * the rows back uncounted; otherwise their leases are renewed and each event is to run again alone.
   */
  private async recover(batch: Prepared[], error: unknown, handlersStarted: boolean): Promise<ClaimedRow[]> {
    const rows = batch.map((p) => p.row);
    const outage = isOutage(error);
    this.logger.warn(
      { events: rows.length, error: describeFailure(error) },
      outage ? 'batch cut off by the database' : 'batch failed; its events run one by one',
    );
    if (outage && (!handlersStarted || !(await this.databaseAnswers()))) {
      await this.giveBack(rows);
      return [];
    }
    try {
      await this.queue.renewLeases(rows, this.leaseMs);
    } catch (renewError) {
      if (!isDatabaseUnavailable(renewError)) {
        throw renewError;
      }
      await this.giveBack(rows);
      return [];
    }
    return rows;
  }

  private async giveBack(rows: ClaimedRow[]): Promise<void> {
    await this.releaser.giveBack(rows);
    for (const row of rows) {
      this.report(row, 'released', 0);
    }
  }

  private async runHandler(prepared: Prepared, tx: Connection, afterCommit: AfterCommit): Promise<void> {
    if (!prepared.handler) {
      return;
    }
    const context = { afterCommit: (effect: () => unknown) => void afterCommit.push({ row: prepared.row, effect }) };
    const started = performance.now();
    try {
      await prepared.handler(prepared.event, tx, context);
    } finally {
      const ms = performance.now() - started;
      const average = this.handlerMs.get(prepared.row.eventType);
      this.handlerMs.set(prepared.row.eventType, average === undefined ? ms : 0.8 * average + 0.2 * ms);
    }
  }

  private runAfterCommit(effects: AfterCommit): void {
    for (const { row, effect } of effects) {
      Promise.resolve()
        .then(effect)
        .catch((error: unknown) =>
          this.logger.warn(
            { eventId: row.stripeEventId, eventType: row.eventType, error: describeFailure(error) },
            'after-commit effect failed',
          ),
        );
    }
  }

  /**
   * Bounds the handlers in JavaScript as well as on the server: past HANDLER_TIMEOUT_MS the attempt
   * fails at once and its connection is abandoned, so the transaction can never commit.
   */
  private runBounded(connection: Connection, work: () => Promise<void>): Promise<void> {
    const timeoutMs = this.config.handlerTimeoutMs;
    return runWithin(
      work,
      timeoutMs,
      () => new HandlerTimeoutError(timeoutMs),
      () => void this.abandon(connection),
    );
  }

  /** Drops a connection whose statement may still run, and terminates its server process. */
  private async abandon(connection: Connection): Promise<void> {
    if (connection.isReleased) {
      return;
    }
    connection.destroy();
    await this.db
      .queryWithin(PROBE_TIMEOUT_MS, 'SELECT pg_terminate_backend($1)', [connection.processId])
      .catch(() => undefined);
  }

  /** Whether the database answers now: tells an outage from an error that only looks like one. */
  private async databaseAnswers(): Promise<boolean> {
    try {
      await withTimeout(this.db.queryWithin(PROBE_TIMEOUT_MS, 'SELECT 1'), PROBE_TIMEOUT_MS);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Records a failed attempt: retried later or dead-lettered. A failure that looks like an outage
   * counts only if the handler ran and the database answers now (a handler's own network error, a
   * protocol error); otherwise the attempt never had a fair chance and the row is given back.
   */
  private async settleFailure(row: ClaimedRow, error: unknown, handlerRan: boolean): Promise<AttemptOutcome> {
    try {
      if (isOutage(error) && (!handlerRan || !(await this.databaseAnswers()))) {
        await this.releaser.giveBack([row]);
        return 'released';
      }
      const message = describeFailure(error).slice(0, MAX_ERROR_LENGTH);
      if (error instanceof PermanentEventError || isLastAttempt(row.attempt, this.policy)) {
        const deadLetter = await this.queue.deadLetter(row, message, handlerRan);
        if (deadLetter) {
          this.events.deadLettered([deadLetter]);
        }
        return deadLetter ? 'dead' : 'lost';
      }
      const scheduled = await this.queue.scheduleRetry(row, message, retryDelaySeconds(row.attempt, this.policy));
      return scheduled ? 'retried' : 'lost';
    } catch (settleError) {
      // The failure could not be written (the database went away): the lease runs out and the row
      // is claimed again, uncounted.
      this.logger.warn(
        { eventId: row.stripeEventId, eventType: row.eventType, error: describeFailure(settleError) },
        'could not record the failed attempt; the lease will expire',
      );
      return 'released';
    }
  }

  private report(row: ClaimedRow, outcome: AttemptOutcome, durationMs: number, error?: unknown): void {
    this.events.attemptFinished({ eventType: row.eventType, outcome, durationMs });
    const log = { eventId: row.stripeEventId, eventType: row.eventType, attempt: row.attempt, outcome };
    if (error === undefined) {
      this.logger.log({ ...log, durationMs: Math.round(durationMs) }, `event ${outcome}`);
    } else {
      this.logger.warn({ ...log, error: describeFailure(error) }, `attempt failed: ${outcome}`);
    }
  }
}

export class HandlerTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`handler timed out after ${timeoutMs} ms`);
    this.name = 'HandlerTimeoutError';
  }
}

/** An error an outage or a silent database also causes: a timeout, or a lost connection. */
function isOutage(error: unknown): boolean {
  return error instanceof HandlerTimeoutError || sqlState(error) === '57014' || isDatabaseUnavailable(error);
}

/** How a failed attempt is recorded in `last_error`: the error's class and message. */
export function describeFailure(error: unknown): string {
  if (sqlState(error) === '57014') {
    return 'statement timed out (HANDLER_TIMEOUT_MS)';
  }
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
