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
}

/**
 * Handles one Stripe event type. It runs inside the transaction that also completes the event, so
 * every write must go through `manager`; throwing rolls all of it back and schedules a retry
 * (or dead-letters at once for a PermanentEventError).
 */
export type EventHandler = (event: StripeEvent, manager: Executor, context: HandlerContext) => Promise<unknown>;

/** Which handler runs for which event type. An event type with no handler is stored and marked `ignored`. */
@Injectable()
export class HandlerRegistry {
  private readonly handlers = new Map<string, EventHandler>();

  register(eventType: string, handler: EventHandler): void {
    this.handlers.set(eventType, handler);
  }

  get(eventType: string): EventHandler | undefined {
    return this.handlers.get(eventType);
  }

  has(eventType: string): boolean {
    return this.handlers.has(eventType);
  }

  eventTypes(): string[] {
    return [...this.handlers.keys()].sort();
  }
}
