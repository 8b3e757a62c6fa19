import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { Executor } from '../../database/database';
import type { StripeEvent } from '../../common/stripe-event';
import { HandlerRegistry } from '../../queue/handler-registry';
import { BillingRepository } from '../billing.repository';
import { eventOrder, subscriptionEventRank, subscriptionFromStripe } from '../stripe-objects';

export const SUBSCRIPTION_EVENTS = [
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
  'customer.subscription.paused',
  'customer.subscription.resumed',
  'customer.subscription.trial_will_end',
] as const;

/**
 * Every customer.subscription.* event carries the whole subscription, so each one sets its state
 * outright, if it is newer than the state stored. An unknown customer is created from the event
 * (in the same statement).
 */
@Injectable()
export class SubscriptionHandlers implements OnModuleInit {
  private readonly logger = new Logger(SubscriptionHandlers.name);

  constructor(
    private readonly registry: HandlerRegistry,
    private readonly billing: BillingRepository,
  ) {}

  onModuleInit(): void {
    for (const type of SUBSCRIPTION_EVENTS) {
      this.registry.register(type, (event, manager) => this.apply(event, manager));
    }
  }

  private async apply(event: StripeEvent, manager: Executor): Promise<void> {
    const subscription = subscriptionFromStripe(event.object, event.type);
    const applied = await this.billing.upsertSubscription(
      manager,
      subscription,
      eventOrder(event, subscriptionEventRank(event.type, subscription)),
    );
    if (!applied) {
      this.logger.log(
        { eventId: event.id, eventType: event.type, subscription: subscription.id },
        'older than the stored state (or the subscription is deleted): nothing to change',
      );
    }
  }
}
