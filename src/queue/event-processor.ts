import { Injectable, Logger } from '@nestjs/common';
import { isDatabaseUnavailable, sqlState } from '../common/database-errors';
import { Connection, Database } from '../database/database';
import { stripeEventFromPayload, StripeEvent } from '../common/stripe-event';
import { AppConfig } from '../config/app-config';
import { HandlerRegistry } from './handler-registry';
import { PermanentEventError } from './permanent-event.error';
import { ClaimedRow, QueueRepository } from './queue.repository';
import { RowReleaser } from './row-releaser';
import { withTimeout } from '../common/with-timeout';
import { AttemptOutcome, QueueEvents } from './queue-events';
import { isLastAttempt, leaseMs, retryDelaySeconds, RetryPolicy } from './retry-policy';

const MAX_ERROR_LENGTH = 2_000;
const PROBE_TIMEOUT_MS = 2_000;

/**
 * Runs one attempt of one held event. The handler's writes, the removal of the queue row and the
 * event's completion commit in one transaction, so an event's effects are applied exactly once:
 * a failed or timed-out attempt leaves nothing behind, and a replica that lost its lease commits
 * nothing (the queue row is deleted first, fenced on the lock token).
 */
@Injectable()
export class EventProcessor {
  private readonly logger = new Logger(EventProcessor.name);
  private readonly policy: RetryPolicy;

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

  async attempt(row: ClaimedRow): Promise<AttemptOutcome> {
    const started = performance.now();
    const log = { eventId: row.stripeEventId, eventType: row.eventType, attempt: row.attempts };
    let outcome: AttemptOutcome;
    let error: unknown;
    try {
      if (row.attempts > this.policy.maxAttempts) {
        // Claimed again after its last attempt never reported back: the replica running it died or
        // lost its lease every time (say, the handler crashes the process). Running it again would loop.
        throw new PermanentEventError(
          `claimed ${row.attempts} times, more than RETRY_MAX_ATTEMPTS (${this.policy.maxAttempts}), ` +
            'without a result: the replicas running it crashed or lost their lease',
        );
      }
      outcome = await this.run(row);
    } catch (caught) {
      error = caught;
      outcome = await this.settleFailure(row, caught);
    }
    const durationMs = performance.now() - started;
    this.events.attemptFinished({ eventType: row.eventType, outcome, durationMs });
    if (error === undefined) {
      this.logger.log({ ...log, outcome, durationMs: Math.round(durationMs) }, `event ${outcome}`);
    } else {
      this.logger.warn({ ...log, outcome, error: describe(error) }, `attempt failed: ${outcome}`);
    }
    return outcome;
  }

  private async run(row: ClaimedRow): Promise<AttemptOutcome> {
    const event = parseStored(row);
    // An event of the other mode is ignored here too (it may be reprocessed after being stored as ignored).
    const otherMode = this.config.stripeLivemode !== undefined && event.livemode !== this.config.stripeLivemode;
    const handler = otherMode ? undefined : this.handlers.get(row.eventType);
    const timeoutMs = this.config.handlerTimeoutMs;
    const afterCommit: Array<() => unknown> = [];
    const connection = await this.db.connect();
    try {
      await connection.query('BEGIN');
      if (!(await this.queue.takeForAttempt(connection, row, timeoutMs, this.leaseMs))) {
        await connection.query('ROLLBACK');
        return 'lost';
      }
      if (handler) {
        const context = { afterCommit: (effect: () => unknown) => void afterCommit.push(effect) };
        await this.runBounded(connection, timeoutMs, () => handler(event, connection, context));
      }
      const status = handler ? 'processed' : 'ignored';
      await this.queue.complete(connection, row, status);
      await connection.query('COMMIT');
      this.runAfterCommit(row, afterCommit);
      return status;
    } catch (error) {
      // Never roll back and reuse the connection: a handler may still have statements in flight (a
      // branch of a Promise.all) that would then run outside the transaction. Dropping the connection
      // makes every later statement fail and lets the server roll back.
      connection.destroy();
      throw error;
    } finally {
      connection.release();
    }
  }

  private runAfterCommit(row: ClaimedRow, effects: Array<() => unknown>): void {
    for (const effect of effects) {
      Promise.resolve()
        .then(effect)
        .catch((error: unknown) =>
          this.logger.warn(
            { eventId: row.stripeEventId, eventType: row.eventType, error: describe(error) },
            'after-commit effect failed',
          ),
        );
    }
  }

  /**
   * Bounds the handler in JavaScript as well: past the limit the attempt fails at once, the
   * connection is dropped and its server process terminated, so the transaction can never commit
   * and its locks are freed now rather than when some statement next times out.
   */
  private runBounded(connection: Connection, timeoutMs: number, work: () => Promise<unknown>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new HandlerTimeoutError(timeoutMs));
        void this.abandon(connection);
      }, timeoutMs);
      // Through a promise, so that a handler throwing synchronously is caught and the timer cleared.
      Promise.resolve()
        .then(work)
        .then(
          () => {
            clearTimeout(timer);
            resolve();
          },
          (error: unknown) => {
            clearTimeout(timer);
            reject(error instanceof Error ? error : new Error(String(error)));
          },
        );
    });
  }

  /**
   * Drops the attempt's connection, so that its transaction can never commit, and terminates its
   * server process, whose statement may still be running, to free its locks now.
   */
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
      // boundedQuery: on a silent database the probe's connection is destroyed, not left hung.
      await withTimeout(this.db.queryWithin(PROBE_TIMEOUT_MS, 'SELECT 1'), PROBE_TIMEOUT_MS);
      return true;
    } catch {
      return false;
    }
  }

  private async settleFailure(row: ClaimedRow, error: unknown): Promise<AttemptOutcome> {
    const timedOut = error instanceof HandlerTimeoutError || sqlState(error) === '57014';
    try {
      // An error that looks like an outage (or a timeout, which a network black hole also causes)
      // counts only if the database answers now; otherwise the attempt never had a fair chance.
      if ((timedOut || isDatabaseUnavailable(error)) && !(await this.databaseAnswers())) {
        await this.releaser.giveBack(row);
        return 'released';
      }
      const message = describe(error).slice(0, MAX_ERROR_LENGTH);
      if (error instanceof PermanentEventError || isLastAttempt(row.attempts, this.policy)) {
        const deadLetter = await this.queue.deadLetter(row, message);
        if (deadLetter) {
          this.events.deadLettered([deadLetter]);
        }
        return deadLetter ? 'dead' : 'lost';
      }
      const scheduled = await this.queue.scheduleRetry(row, message, retryDelaySeconds(row.attempts, this.policy));
      return scheduled ? 'retried' : 'lost';
    } catch (settleError) {
      // The failure could not be written (the database went away): the lease runs out and the row
      // is claimed again, which counts this attempt as spent.
      this.logger.warn(
        { eventId: row.stripeEventId, eventType: row.eventType, error: describe(settleError) },
        'could not record the failed attempt; the lease will expire',
      );
      return 'released';
    }
  }
}

export class HandlerTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`handler timed out after ${timeoutMs} ms`);
    this.name = 'HandlerTimeoutError';
  }
}

function parseStored(row: ClaimedRow): StripeEvent {
  try {
    return stripeEventFromPayload(row.payload);
  } catch (error) {
    throw new PermanentEventError(`stored payload is not a Stripe event: ${describe(error)}`);
  }
}

function describe(error: unknown): string {
  if (sqlState(error) === '57014') {
    return 'statement timed out (HANDLER_TIMEOUT_MS)';
  }
  if (error instanceof Error) {
    const driverMessage = (error as { driverError?: { message?: string } }).driverError?.message;
    return `${error.name}: ${driverMessage ?? error.message}`;
  }
  return String(error);
}
