import { Injectable, Logger } from '@nestjs/common';
import { DataSource, QueryRunner } from 'typeorm';
import { isDatabaseUnavailable, sqlState } from '../common/database-errors';
import { stripeEventFromPayload, StripeEvent } from '../common/stripe-event';
import { AppConfig } from '../config/app-config';
import { HandlerRegistry } from './handler-registry';
import { PermanentEventError } from './permanent-event.error';
import { ClaimedRow, DeadLetterRow, QueueRepository } from './queue.repository';
import { QueueEvents } from './queue-events';
import { isLastAttempt, retryDelaySeconds, RetryPolicy } from './retry-policy';

export type AttemptOutcome = 'processed' | 'ignored' | 'retried' | 'dead' | 'released' | 'lost';

const MAX_ERROR_LENGTH = 2_000;

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
  /** Rows to give back (without counting the attempt) once the database answers again. */
  private readonly pendingReleases = new Map<string, string>();

  constructor(
    private readonly config: AppConfig,
    private readonly dataSource: DataSource,
    private readonly handlers: HandlerRegistry,
    private readonly queue: QueueRepository,
    private readonly events: QueueEvents,
  ) {
    this.policy = {
      baseDelaySeconds: config.retryBaseDelaySeconds,
      maxDelaySeconds: config.retryMaxDelaySeconds,
      maxAttempts: config.retryMaxAttempts,
    };
  }

  /** The lease a claim takes: one attempt's limit plus a margin for the statements around it. */
  get leaseMs(): number {
    return this.config.handlerTimeoutMs + Math.max(2_000, Math.round(this.config.handlerTimeoutMs * 0.1));
  }

  async attempt(row: ClaimedRow): Promise<AttemptOutcome> {
    const started = performance.now();
    const log = { eventId: row.stripeEventId, eventType: row.eventType, attempt: row.attempts };
    let outcome: AttemptOutcome;
    let error: unknown;
    try {
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

  /** Gives back rows held during an outage; called before every claim and at shutdown. */
  async flushPendingReleases(): Promise<void> {
    for (const [eventId, token] of this.pendingReleases) {
      try {
        await this.queue.release(eventId, token, true);
        this.pendingReleases.delete(eventId);
      } catch (error) {
        if (!isDatabaseUnavailable(error)) {
          this.pendingReleases.delete(eventId);
        }
        return;
      }
    }
  }

  private async run(row: ClaimedRow): Promise<AttemptOutcome> {
    const event = parseStored(row);
    const handler = this.handlers.get(row.eventType);
    const timeoutMs = this.config.handlerTimeoutMs;
    const runner = this.dataSource.createQueryRunner();
    const afterCommit: Array<() => unknown> = [];
    try {
      await runner.connect();
      await runner.startTransaction();
      // Each statement, and any pause between them, is bounded on the server too.
      await runner.query(
        `SELECT set_config('statement_timeout', $1, true), set_config('idle_in_transaction_session_timeout', $2, true)`,
        [String(timeoutMs), String(this.leaseMs)],
      );
      if (!(await this.queue.takeForAttempt(runner, row))) {
        await runner.rollbackTransaction();
        return 'lost';
      }
      if (handler) {
        const context = { afterCommit: (effect: () => unknown) => void afterCommit.push(effect) };
        await this.withTimeout(runner, timeoutMs, () => handler(event, runner.manager, context));
      }
      const status = handler ? 'processed' : 'ignored';
      await this.queue.complete(runner, row, status);
      await runner.commitTransaction();
      this.runAfterCommit(row, afterCommit);
      return status;
    } catch (error) {
      if (runner.isTransactionActive && !runner.isReleased) {
        await runner.rollbackTransaction().catch(() => undefined);
      }
      throw error;
    } finally {
      await runner.release();
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
  private withTimeout(runner: QueryRunner, timeoutMs: number, work: () => Promise<unknown>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new HandlerTimeoutError(timeoutMs));
        void this.abandon(runner);
      }, timeoutMs);
      work().then(
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

  private async abandon(runner: QueryRunner): Promise<void> {
    const pid = (runner as unknown as { databaseConnection?: { processID?: number } }).databaseConnection?.processID;
    await (runner as unknown as { releasePostgresConnection(err?: Error): Promise<void> })
      .releasePostgresConnection(new Error('attempt timed out'))
      .catch(() => undefined);
    if (pid) {
      await this.dataSource.query('SELECT pg_terminate_backend($1)', [pid]).catch(() => undefined);
    }
  }

  private async settleFailure(row: ClaimedRow, error: unknown): Promise<AttemptOutcome> {
    const timedOut = error instanceof HandlerTimeoutError || sqlState(error) === '57014';
    try {
      if (!timedOut && isDatabaseUnavailable(error)) {
        // The attempt never had a fair chance: give the row back without counting it.
        this.pendingReleases.set(row.eventId, row.token);
        await this.flushPendingReleases();
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

export type { DeadLetterRow };
