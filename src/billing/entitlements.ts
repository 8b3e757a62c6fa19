/**
 * The entitlements answer, from stored rows by a pure function; the README's "Subscriptions and
 * entitlements" says what each field means.
 */

export interface CustomerRow {
  stripe_customer_id: string;
  user_id: string | null;
  deleted: boolean;
  updated_at: Date;
}

export interface SubscriptionRow {
  stripe_subscription_id: string;
  stripe_customer_id: string;
  status: string;
  user_id: string | null;
  price_ids: string[];
  product_ids: string[];
  lookup_keys: string[];
  price_features: string[];
  current_period_end: Date | null;
  cancel_at_period_end: boolean;
  last_event_created: Date;
  updated_at: Date;
}

export interface EntitlementSummaryRow {
  stripe_customer_id: string;
  lookup_keys: string[];
  updated_at: Date;
}

export interface Entitlements {
  customer_id: string;
  user_id: string | null;
  active: boolean;
  status: string | null;
  subscription_ids: string[];
  price_ids: string[];
  product_ids: string[];
  features: string[];
  current_period_end: string | null;
  cancel_at_period_end: boolean;
  updated_at: string;
}

export interface EntitlementInput {
  customers: CustomerRow[];
  subscriptions: SubscriptionRow[];
  summaries: EntitlementSummaryRow[];
  /** Set when the question was asked for a user. */
  userId?: string;
}

export function computeEntitlements(input: EntitlementInput, accessStatuses: readonly string[]): Entitlements {
  const { customers, summaries } = input;
  if (customers.length === 0) {
    throw new Error('computeEntitlements needs at least one customer');
  }
  const deleted = new Set(customers.filter((c) => c.deleted).map((c) => c.stripe_customer_id));
  // Stripe cancels a customer's subscriptions when it deletes the customer; their own
  // customer.subscription.deleted events may come later or not at all. A deleted customer's
  // subscriptions are therefore read as 'canceled', so that `status` never says 'active' next to
  // `active: false`.
  const subscriptions = input.subscriptions
    .map((s) => (deleted.has(s.stripe_customer_id) ? { ...s, status: 'canceled' } : s))
    .sort(newestFirst);
  // Not even with 'canceled' among the access statuses does a deleted customer's subscription grant.
  const granting = subscriptions.filter((s) => !deleted.has(s.stripe_customer_id) && accessStatuses.includes(s.status));
  const reported = granting.length > 0 ? granting : subscriptions.slice(0, 1);
  const decisive = reported[0];
  const customer =
    customers.find((c) => c.stripe_customer_id === decisive?.stripe_customer_id) ??
    [...customers].sort((a, b) => b.updated_at.getTime() - a.updated_at.getTime())[0];

  // Per customer (a user may have several): its latest summary if one was received, else its
  // access-granting prices; a deleted customer contributes nothing.
  const features = union(
    customers
      .filter((c) => !c.deleted)
      .map((c) => {
        const summary = summaries.find((s) => s.stripe_customer_id === c.stripe_customer_id);
        return summary
          ? summary.lookup_keys
          : granting
              .filter((s) => s.stripe_customer_id === c.stripe_customer_id)
              .flatMap((s) => [...s.price_features, ...s.lookup_keys]);
      }),
  );

  const periodEnds = reported.map((s) => s.current_period_end?.getTime()).filter((t): t is number => t !== undefined);
  const updated = [
    ...customers.map((c) => c.updated_at),
    ...subscriptions.map((s) => s.updated_at),
    ...summaries.map((s) => s.updated_at),
  ].reduce((a, b) => (a > b ? a : b));

  return {
    customer_id: customer.stripe_customer_id,
    user_id: input.userId ?? customer.user_id ?? subscriptions.find((s) => s.user_id !== null)?.user_id ?? null,
    active: granting.length > 0,
    // A deleted customer reads 'canceled', also when none of its subscriptions was ever received.
    status: deleted.size === customers.length ? 'canceled' : (decisive?.status ?? null),
    subscription_ids: reported.map((s) => s.stripe_subscription_id),
    price_ids: union(reported.map((s) => s.price_ids)),
    product_ids: union(reported.map((s) => s.product_ids)),
    features,
    current_period_end: periodEnds.length ? new Date(Math.max(...periodEnds)).toISOString() : null,
    cancel_at_period_end: reported.length > 0 && reported.every((s) => s.cancel_at_period_end),
    updated_at: updated.toISOString(),
  };
}

/** Most recently changed first (by the applied event's time, then by when we applied it). */
function newestFirst(a: SubscriptionRow, b: SubscriptionRow): number {
  return (
    b.last_event_created.getTime() - a.last_event_created.getTime() ||
    b.updated_at.getTime() - a.updated_at.getTime() ||
    b.stripe_subscription_id.localeCompare(a.stripe_subscription_id)
  );
}

function union(lists: string[][]): string[] {
  return [...new Set(lists.flat())].sort();
}
