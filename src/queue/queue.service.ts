import { Injectable, Logger } from '@nestjs/common';
import { AppError, ErrorCode } from '../common/app-error';
import { sqlState } from '../common/database-errors';
import type { StripeEvent } from '../common/stripe-event';
import { AppConfig } from '../config/app-config';
import { Dispatcher } from './dispatcher.service';
import { HandlerRegistry } from './handler-registry';
import { IngestBatcher } from './ingest-batcher';
import { QueueEvents } from './queue-events';
import type { NewEvent } from './queue.repository';
import { RetryWorker } from './retry-worker.service';

/** Where a received event came from, when not a classic webhook of the platform itself. */
export type EventOrigin = Pick<NewEvent, 'source'>;

export interface EnqueueResult {
  /** The event id was already stored: nothing was written. */
  duplicate: boolean;
}

/**
 * The queue's entry point: stores an accepted event and gets it handled (or stores it `ignored`, on
 * record). With room here its queue row is inserted already held by this replica and runs after the
 * commit, with no claim and no second read; else it is due at once for any replica's retry worker.
 */
@Injectable()
export class QueueService {
  private readonly logger = new Logger(QueueService.name);

  constructor(
    private readonly config: AppConfig,
    private readonly handlers: HandlerRegistry,
    private readonly batcher: IngestBatcher,
    private readonly dispatcher: Dispatcher,
    private readonly worker: RetryWorker,
    private readonly events: QueueEvents,
  ) {}

  /**
   * Resolves once the event is committed (or found already stored). Throws AppError `unavailable`
   * when the database cannot take the write now, and `invalid_payload` for text PostgreSQL cannot
   * store as JSON.
   */
  async enqueue(event: StripeEvent, rawPayload: string, origin: EventOrigin = {}): Promise<EnqueueResult> {
    const ignoredBecause = this.ignoredBecause(event);
    const claim = ignoredBecause ? null : this.dispatcher.reserve();
    const started = performance.now();
    let id: string | null;
    try {
      id = await this.batcher.insert({
        event,
        rawPayload,
        status: ignoredBecause ? 'ignored' : 'pending',
        claim,
        ...origin,
      });
      this.dispatcher.noteStored(performance.now() - started);
    } catch (error) {
      if (claim) {
        this.dispatcher.cancel();
      }
      throw this.refusal(event, error);
    }
    if (id === null) {
      if (claim) {
        this.dispatcher.cancel();
      }
      this.logger.log({ eventId: event.id, eventType: event.type }, 'duplicate delivery acknowledged');
      return { duplicate: true };
    }
    if (claim) {
      this.dispatcher.start({
        eventId: id,
        token: claim.token,
        attempt: 1,
        claims: 1,
        eventType: event.type,
        stripeEventId: event.id,
        payload: event.payload,
      });
    } else if (!ignoredBecause) {
      this.worker.nudge();
    }
    if (ignoredBecause) {
      this.events.storedIgnored(event.type);
    }
    this.logger.log(
      { eventId: event.id, eventType: event.type, ...(ignoredBecause ? { ignored: ignoredBecause } : {}) },
      ignoredBecause ? 'event stored as ignored' : 'event stored',
    );
    return { duplicate: false };
  }

  private ignoredBecause(event: StripeEvent): string | undefined {
    if (this.config.stripeLivemode !== undefined && event.livemode !== this.config.stripeLivemode) {
      return `livemode ${String(event.livemode)} while STRIPE_LIVEMODE=${String(this.config.stripeLivemode)}`;
    }
    if (!this.handlers.has(event.type)) {
      return 'no handler for this event type';
    }
    return undefined;
  }

  /** What a failed insert means for the sender. */
  private refusal(event: StripeEvent, error: unknown): unknown {
    const state = sqlState(error);
    // A data exception (class 22) is about this event: jsonb cannot hold \u0000 or unpaired
    // surrogates, say. Refuse it rather than alter it.
    if (state?.startsWith('22')) {
      return new AppError(
        ErrorCode.InvalidPayload,
        'The event contains text PostgreSQL cannot store as JSON (\\u0000 or an unpaired surrogate).',
      );
    }
    // A program limit (class 54, say a document nested past the server's stack) is hit by what the
    // event holds: retrying cannot get past it.
    if (state?.startsWith('54')) {
      return new AppError(ErrorCode.InvalidPayload, 'The event is too complex for PostgreSQL to store.');
    }
    // Any other error the server raised for this fixed statement (disk full, a lock or statement
    // timeout, a failover, …) means it could not take the write now: 503, so that Stripe retries.
    // Integrity (23) and syntax or schema (42) errors would be bugs here: they stay 500.
    if (state !== undefined && isServerRefusal(state)) {
      this.logger.error(
        { eventId: event.id, eventType: event.type, sqlState: state, err: error },
        'the database refused the event; answered 503 so that Stripe retries',
      );
      return new AppError(ErrorCode.Unavailable, 'The database cannot store the event right now; retry later.');
    }
    return error;
  }
}

/**
 * A SQLSTATE the server raises when it cannot take a write now, as opposed to a bug in the statement
 * or a limit the event itself hits (class 54, program limit: 54001 for JSON nested too deep), which
 * retrying cannot get past.
 */
function isServerRefusal(state: string): boolean {
  return /^[0-9A-Z]{5}$/.test(state) && !['22', '23', '42', '54'].includes(state.slice(0, 2));
}
