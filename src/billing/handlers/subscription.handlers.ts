import { Injectable, Logger } from '@nestjs/common';
import type { Executor } from '../../database/database';
import type { StripeEvent } from '../../common/stripe-event';
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
 * outright if it is newer than the stored one (an unknown customer is created in the same statement).
 */
@Injectable()
export class SubscriptionHandlers {
  private readonly logger = new Logger(SubscriptionHandlers.name);

  constructor(private readonly billing: BillingRepository) {}

  async apply(event: StripeEvent, manager: Executor): Promise<void> {
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
