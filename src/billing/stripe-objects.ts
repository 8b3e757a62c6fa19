import { isObject, StripeEvent } from '../common/stripe-event';
import { PermanentEventError } from '../queue/permanent-event.error';

/**
 * Pure mapping from Stripe objects to our rows, reading current and older API shapes alike. A
 * malformed object is a PermanentEventError: retrying cannot help.
 */

type StripeObject = Record<string, unknown>;

export interface EventOrder {
  /** The event's `created`. */
  created: Date;
  /** Breaks ties between events created in the same second; higher wins. */
  rank: number;
  eventId: string;
}

export interface SubscriptionItemState {
  id: string | null;
  priceId: string | null;
  productId: string | null;
  lookupKey: string | null;
  quantity: number | null;
  currentPeriodStart: string | null;
  currentPeriodEnd: string | null;
}

export interface SubscriptionState {
  id: string;
  customerId: string;
  status: string;
  userId: string | null;
  priceIds: string[];
  productIds: string[];
  lookupKeys: string[];
  priceFeatures: string[];
  items: SubscriptionItemState[];
  currentPeriodStart: Date | null;
  currentPeriodEnd: Date | null;
  cancelAtPeriodEnd: boolean;
  cancelAt: Date | null;
  canceledAt: Date | null;
  endedAt: Date | null;
  trialStart: Date | null;
  trialEnd: Date | null;
  metadata: Record<string, unknown>;
  /** Final: a deleted (or canceled / expired) subscription never comes back. */
  deleted: boolean;
}

export interface CustomerState {
  id: string;
  userId: string | null;
  email: string | null;
  name: string | null;
  metadata: Record<string, unknown>;
}

export interface InvoiceState {
  id: string;
  customerId: string;
  subscriptionId: string | null;
  status: string;
  billingReason: string | null;
  currency: string | null;
  amountDue: number | null;
  amountPaid: number | null;
  /** The service period the invoice bills: its subscription lines' period, else the invoice's own. */
  periodStart: Date | null;
  periodEnd: Date | null;
  attemptCount: number | null;
  nextPaymentAttempt: Date | null;
  paidAt: Date | null;
}

export interface EntitlementSummaryState {
  customerId: string;
  lookupKeys: string[];
  entitlements: Array<{ feature: string | null; lookupKey: string }>;
  hasMore: boolean;
}

export interface CheckoutSessionState {
  id: string;
  mode: string | null;
  status: string | null;
  paymentStatus: string | null;
  customerId: string | null;
  subscriptionId: string | null;
  paymentIntentId: string | null;
  userId: string | null;
  email: string | null;
  amountTotal: number | null;
  currency: string | null;
  metadata: Record<string, unknown>;
}

const TERMINAL_SUBSCRIPTION_STATUSES = new Set(['canceled', 'incomplete_expired']);

export function eventOrder(event: StripeEvent, rank: number): EventOrder {
  return { created: new Date((event.created ?? 0) * 1000), rank, eventId: event.id };
}

/**
 * Same-second ties: a terminal state wins, then any update over the creation (a `created` event
 * is by definition the first), then the event id (arbitrary but deterministic).
 */
export function subscriptionEventRank(eventType: string, state: Pick<SubscriptionState, 'deleted'>): number {
  if (state.deleted) {
    return 2;
  }
  return eventType === 'customer.subscription.created' ? 0 : 1;
}

export function customerEventRank(eventType: string): number {
  return eventType === 'customer.deleted' ? 2 : eventType === 'customer.created' ? 0 : 1;
}

export function invoiceEventRank(state: Pick<InvoiceState, 'status'>): number {
  return ['paid', 'void', 'uncollectible'].includes(state.status) ? 2 : 1;
}

export function subscriptionFromStripe(object: StripeObject, eventType: string): SubscriptionState {
  const id = requiredId(object.id, 'subscription id');
  const customerId = requiredId(object.customer, `customer of subscription ${id}`);
  const status = requiredString(object.status, `status of subscription ${id}`);
  const items = listData(object.items).map(itemFromStripe);
  const itemStarts = items.map((i) => i.currentPeriodStart).filter((v): v is string => v !== null);
  const itemEnds = items.map((i) => i.currentPeriodEnd).filter((v): v is string => v !== null);
  const metadata = isObject(object.metadata) ? object.metadata : {};
  return {
    id,
    customerId,
    status,
    userId: nonEmptyString(metadata.user_id),
    priceIds: unique(items.map((i) => i.priceId)),
    productIds: unique(items.map((i) => i.productId)),
    lookupKeys: unique(items.map((i) => i.lookupKey)),
    priceFeatures: unique(listData(object.items).flatMap(priceFeatures)),
    items,
    // Older API versions: on the subscription. Current ones: on each item.
    currentPeriodStart: timestamp(object.current_period_start) ?? earliest(itemStarts),
    currentPeriodEnd: timestamp(object.current_period_end) ?? latest(itemEnds),
    cancelAtPeriodEnd: object.cancel_at_period_end === true,
    cancelAt: timestamp(object.cancel_at),
    canceledAt: timestamp(object.canceled_at),
    endedAt: timestamp(object.ended_at),
    trialStart: timestamp(object.trial_start),
    trialEnd: timestamp(object.trial_end),
    metadata,
    deleted: eventType === 'customer.subscription.deleted' || TERMINAL_SUBSCRIPTION_STATUSES.has(status),
  };
}

function itemFromStripe(item: StripeObject): SubscriptionItemState {
  const price = isObject(item.price) ? item.price : isObject(item.plan) ? item.plan : undefined;
  return {
    id: nonEmptyString(item.id),
    priceId: price ? nonEmptyString(price.id) : nonEmptyString(item.price),
    productId: price ? idOf(price.product) : null,
    lookupKey: price ? nonEmptyString(price.lookup_key) : null,
    quantity: typeof item.quantity === 'number' ? item.quantity : null,
    currentPeriodStart: timestamp(item.current_period_start)?.toISOString() ?? null,
    currentPeriodEnd: timestamp(item.current_period_end)?.toISOString() ?? null,
  };
}

/** `metadata.features` of an item's price: "a, b,c" → ["a", "b", "c"]. */
function priceFeatures(item: StripeObject): string[] {
  const price = isObject(item.price) ? item.price : isObject(item.plan) ? item.plan : undefined;
  const features = price && isObject(price.metadata) ? price.metadata.features : undefined;
  return typeof features === 'string'
    ? features
        .split(',')
        .map((f) => f.trim())
        .filter(Boolean)
    : [];
}

export function customerFromStripe(object: StripeObject): CustomerState {
  const id = requiredId(object.id, 'customer id');
  const metadata = isObject(object.metadata) ? object.metadata : {};
  return {
    id,
    userId: nonEmptyString(metadata.user_id),
    email: nonEmptyString(object.email),
    name: nonEmptyString(object.name),
    metadata,
  };
}

export function invoiceFromStripe(object: StripeObject): InvoiceState {
  const id = requiredId(object.id, 'invoice id');
  const customerId = requiredId(object.customer, `customer of invoice ${id}`);
  const parent = isObject(object.parent) ? object.parent : undefined;
  const details = parent && isObject(parent.subscription_details) ? parent.subscription_details : undefined;
  const subscriptionId = idOf(details?.subscription) ?? idOf(object.subscription);
  // The period a subscription invoice pays for is on its subscription lines (the invoice's own
  // period_start/period_end cover the previous period on renewals): the latest-starting line that
  // is not a proration, since prorations and usage billed in arrears cover earlier periods.
  const lines = listData(object.lines).filter(isSubscriptionLine);
  const billed = lines.filter((l) => !isProration(l));
  const period = latestPeriod(billed.length > 0 ? billed : lines);
  const transitions = isObject(object.status_transitions) ? object.status_transitions : {};
  return {
    id,
    customerId,
    subscriptionId,
    status: requiredString(object.status, `status of invoice ${id}`),
    billingReason: nonEmptyString(object.billing_reason),
    currency: nonEmptyString(object.currency),
    amountDue: integer(object.amount_due),
    amountPaid: integer(object.amount_paid),
    periodStart: period?.start ?? timestamp(object.period_start),
    periodEnd: period?.end ?? timestamp(object.period_end),
    attemptCount: integer(object.attempt_count),
    nextPaymentAttempt: timestamp(object.next_payment_attempt),
    paidAt: timestamp(transitions.paid_at),
  };
}

function isProration(line: StripeObject): boolean {
  const parent = isObject(line.parent) ? line.parent : undefined;
  const details = parent && isObject(parent.subscription_item_details) ? parent.subscription_item_details : undefined;
  return details?.proration === true || line.proration === true;
}

/** The period of the line that starts last. */
function latestPeriod(lines: StripeObject[]): { start: Date; end: Date | null } | undefined {
  let best: { start: Date; end: Date | null } | undefined;
  for (const line of lines) {
    const period = isObject(line.period) ? line.period : {};
    const start = timestamp(period.start);
    if (start && (!best || start > best.start)) {
      best = { start, end: timestamp(period.end) };
    }
  }
  return best;
}

function isSubscriptionLine(line: StripeObject): boolean {
  const parent = isObject(line.parent) ? line.parent : undefined;
  return (parent !== undefined && isObject(parent.subscription_item_details)) || line.type === 'subscription';
}

export function entitlementSummaryFromStripe(object: StripeObject): EntitlementSummaryState {
  const customerId = requiredId(object.customer, 'customer of the entitlement summary');
  const entitlements = listData(object.entitlements)
    .map((e) => ({ feature: idOf(e.feature), lookupKey: nonEmptyString(e.lookup_key) }))
    .filter((e): e is { feature: string | null; lookupKey: string } => e.lookupKey !== null);
  const list = isObject(object.entitlements) ? object.entitlements : {};
  return {
    customerId,
    lookupKeys: unique(entitlements.map((e) => e.lookupKey)),
    entitlements,
    hasMore: list.has_more === true,
  };
}

/** The summary with the customer's full list of active entitlements (read from the API) in place of its first page. */
export function withFullList(
  summary: EntitlementSummaryState,
  entitlements: ReadonlyArray<{ feature: string | null; lookupKey: string }>,
): EntitlementSummaryState {
  return {
    customerId: summary.customerId,
    lookupKeys: unique(entitlements.map((e) => e.lookupKey)),
    entitlements: entitlements.map((e) => ({ feature: e.feature, lookupKey: e.lookupKey })),
    hasMore: false,
  };
}

export function checkoutSessionFromStripe(object: StripeObject): CheckoutSessionState {
  const id = requiredId(object.id, 'checkout session id');
  const details = isObject(object.customer_details) ? object.customer_details : {};
  return {
    id,
    mode: nonEmptyString(object.mode),
    status: nonEmptyString(object.status),
    paymentStatus: nonEmptyString(object.payment_status),
    customerId: idOf(object.customer),
    subscriptionId: idOf(object.subscription),
    paymentIntentId: idOf(object.payment_intent),
    userId: nonEmptyString(object.client_reference_id),
    email: nonEmptyString(details.email) ?? nonEmptyString(object.customer_email),
    amountTotal: integer(object.amount_total),
    currency: nonEmptyString(object.currency),
    metadata: isObject(object.metadata) ? object.metadata : {},
  };
}

// --- small readers ---------------------------------------------------------------------------

/** An id, whether the field holds it as a string or holds the expanded object. */
export function idOf(value: unknown): string | null {
  if (typeof value === 'string') {
    return nonEmptyString(value);
  }
  return isObject(value) ? nonEmptyString(value.id) : null;
}

function requiredId(value: unknown, what: string): string {
  const id = idOf(value);
  if (!id) {
    throw new PermanentEventError(`malformed object: no ${what}`);
  }
  return id;
}

function requiredString(value: unknown, what: string): string {
  const text = nonEmptyString(value);
  if (!text) {
    throw new PermanentEventError(`malformed object: no ${what}`);
  }
  return text;
}

export function nonEmptyString(value: unknown): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value : null;
}

function integer(value: unknown): number | null {
  return typeof value === 'number' && Number.isSafeInteger(value) ? value : null;
}

/** Unix seconds → Date; anything else → null. */
export function timestamp(value: unknown): Date | null {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? new Date(value * 1000) : null;
}

function listData(list: unknown): StripeObject[] {
  const data = isObject(list) ? list.data : undefined;
  return Array.isArray(data) ? data.filter(isObject) : [];
}

function unique(values: Array<string | null>): string[] {
  return [...new Set(values.filter((v): v is string => v !== null))];
}

function earliest(isoTimes: string[]): Date | null {
  return isoTimes.length ? new Date(isoTimes.reduce((a, b) => (a < b ? a : b))) : null;
}

function latest(isoTimes: string[]): Date | null {
  return isoTimes.length ? new Date(isoTimes.reduce((a, b) => (a > b ? a : b))) : null;
}

// --- wallet top-ups ---------------------------------------------------------------------------

/** `metadata.purpose` of a Checkout Session or PaymentIntent that tops up a wallet. */
export const TOP_UP_PURPOSE = 'wallet_top_up';

export interface TopUp {
  customerId: string | null;
  /** A top-up is credited once per PaymentIntent. */
  paymentIntentId: string | null;
  /** Minor units. */
  amount: number | null;
  currency: string | null;
  paymentMethodId: string | null;
}

export interface FailedTopUp {
  paymentIntentId: string;
  customerId: string | null;
  amount: number | null;
  currency: string | null;
  code: string | null;
  declineCode: string | null;
  message: string | null;
  paymentMethodId: string | null;
}

function isTopUp(object: StripeObject): boolean {
  return isObject(object.metadata) && object.metadata.purpose === TOP_UP_PURPOSE;
}

/** A paid one-time Checkout Session for a top-up (credits `amount_total`), else null. */
export function topUpFromCheckoutSession(object: StripeObject): TopUp | null {
  if (!isTopUp(object) || object.mode !== 'payment' || object.payment_status !== 'paid') {
    return null;
  }
  const intent = isObject(object.payment_intent) ? object.payment_intent : undefined;
  return {
    customerId: idOf(object.customer),
    paymentIntentId: idOf(object.payment_intent),
    amount: integer(object.amount_total),
    currency: nonEmptyString(object.currency)?.toLowerCase() ?? null,
    // Only when the PaymentIntent is expanded, which a webhook's session never is (it holds the id):
    // the method normally comes from the PaymentIntent's own event (see WalletService).
    paymentMethodId: intent ? idOf(intent.payment_method) : null,
  };
}

/** Any succeeded PaymentIntent that names its payment method, top-up or not; else null. */
export function paymentMethodOfPaymentIntent(
  object: StripeObject,
): { paymentIntentId: string; customerId: string | null; paymentMethodId: string } | null {
  const paymentMethodId = idOf(object.payment_method);
  if (!paymentMethodId) {
    return null;
  }
  return {
    paymentIntentId: requiredId(object.id, 'payment intent id'),
    customerId: idOf(object.customer),
    paymentMethodId,
  };
}

/** A succeeded top-up PaymentIntent (credits `amount_received`), else null. */
export function topUpFromPaymentIntent(object: StripeObject): TopUp | null {
  if (!isTopUp(object)) {
    return null;
  }
  return {
    customerId: idOf(object.customer),
    paymentIntentId: requiredId(object.id, 'payment intent id'),
    amount: integer(object.amount_received),
    currency: nonEmptyString(object.currency)?.toLowerCase() ?? null,
    paymentMethodId: idOf(object.payment_method),
  };
}

/** A failed top-up PaymentIntent with its last error, else null. */
export function failedTopUpFromPaymentIntent(object: StripeObject): FailedTopUp | null {
  if (!isTopUp(object)) {
    return null;
  }
  const error = isObject(object.last_payment_error) ? object.last_payment_error : {};
  return {
    paymentIntentId: requiredId(object.id, 'payment intent id'),
    customerId: idOf(object.customer),
    amount: integer(object.amount),
    currency: nonEmptyString(object.currency)?.toLowerCase() ?? null,
    code: nonEmptyString(error.code),
    declineCode: nonEmptyString(error.decline_code),
    message: nonEmptyString(error.message),
    paymentMethodId: idOf(error.payment_method) ?? idOf(object.payment_method),
  };
}
