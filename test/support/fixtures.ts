import { fixtureEvent, StripeJson, World } from '../../scripts/stripe-fixtures';

export { fixtureEvent, newWorld } from '../../scripts/stripe-fixtures';
export type { StripeJson, World } from '../../scripts/stripe-fixtures';

/** A customer.subscription.* event for the world's subscription with the given state. */
export function subscriptionEvent(
  type: string,
  world: World,
  state: { status: string; created: number; cancelAtPeriodEnd?: boolean },
): StripeJson {
  const event = fixtureEvent('customer.subscription.updated', world);
  event.type = type;
  event.created = state.created;
  const subscription = event.data.object;
  subscription.status = state.status;
  subscription.cancel_at_period_end = state.cancelAtPeriodEnd ?? false;
  if (state.status === 'canceled') {
    subscription.canceled_at = state.created;
    subscription.ended_at = state.created;
  }
  if (type !== 'customer.subscription.updated') {
    delete event.data.previous_attributes;
  }
  return event;
}
