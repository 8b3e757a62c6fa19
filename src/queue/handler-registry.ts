import { Injectable } from '@nestjs/common';
import type { Executor } from '../database/database';
import type { StripeEvent } from '../common/stripe-event';

/** What a handler may ask of the attempt it runs in. */
export interface HandlerContext {
  /**
   * Runs `effect` once the attempt has committed (never if it rolls back), for side effects outside
   * the database such as alerts, so that a retried attempt does not repeat them.
   */
  afterCommit(effect: () => unknown): void;
  /**
   * Set when the attempt is a dry run whose transaction is always rolled back: a handler must then
   * start nothing outside the database (say, a sweep).
   */
  readonly dryRun?: boolean;
}

/**
 * Handles one Stripe event type. It runs inside the transaction that also completes the event, so
 * every write must go through `manager`; throwing rolls all of it back and schedules a retry
 * (or dead-letters at once for a PermanentEventError).
 */
export type EventHandler = (event: StripeEvent, manager: Executor, context: HandlerContext) => Promise<unknown>;

/** The prefix of a thin event that copies a classic one: `v1.customer.subscription.updated`. */
const THIN_COPY_PREFIX = 'v1.';

/**
 * Which handler runs for which event type. An event type with no handler is stored and marked
 * `ignored`. Classic types (`register`) are the ones the Events API lists; thin event types
 * (`registerThin`, `v2.…`) arrive only at /webhooks/stripe/thin; a thin copy of a classic type
 * (`v1.<type>`) runs the thin-copy handler when that classic type has a handler, and is ignored
 * otherwise.
 */
@Injectable()
export class HandlerRegistry {
  private readonly handlers = new Map<string, EventHandler>();
  private readonly thinHandlers = new Map<string, EventHandler>();
  private thinCopyHandler: EventHandler | undefined;

  register(eventType: string, handler: EventHandler): void {
    this.handlers.set(eventType, handler);
  }

  registerThin(eventType: string, handler: EventHandler): void {
    this.thinHandlers.set(eventType, handler);
  }

  /** The handler of every thin copy (`v1.<type>`) of a classic type that has a handler. */
  registerThinCopies(handler: EventHandler): void {
    this.thinCopyHandler = handler;
  }

  get(eventType: string): EventHandler | undefined {
    return this.handlers.get(eventType) ?? this.thinHandlers.get(eventType) ?? this.thinCopy(eventType);
  }

  has(eventType: string): boolean {
    return this.get(eventType) !== undefined;
  }

  /** The classic types handled: what a sweep lists from the Events API. */
  eventTypes(): string[] {
    return [...this.handlers.keys()].sort();
  }

  private thinCopy(eventType: string): EventHandler | undefined {
    return eventType.startsWith(THIN_COPY_PREFIX) && this.handlers.has(eventType.slice(THIN_COPY_PREFIX.length))
      ? this.thinCopyHandler
      : undefined;
  }
}
