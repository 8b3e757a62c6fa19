import { isObject, StripeEvent } from '../common/stripe-event';
import { PermanentEventError } from '../queue/permanent-event.error';

/**
 * Pure mapping from Stripe objects to our rows, reading current and older API shapes alike. A
 * malformed object is a PermanentEventError naming the field (retrying cannot help): every value is
 * checked where it is read, not left to fail later in SQL or a Date, which would be retried.
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
  const id = requiredId(object.id, 'id', 'of a subscription');
  const of = `of subscription ${id}`;
  const customerId = requiredId(object.customer, 'customer', of);
  const status = requiredString(object.status, 'status', of);
  const itemObjects = listData(object.items, 'items', of);
  const items = itemObjects.map((item, i) => itemFromStripe(item, `items.data[${i}]`, of));
  const itemStarts = items.map((i) => i.currentPeriodStart).filter((v): v is string => v !== null);
  const itemEnds = items.map((i) => i.currentPeriodEnd).filter((v): v is string => v !== null);
  const metadata = metadataOf(object.metadata, 'metadata', of);
  return {
    id,
    customerId,
    status,
    userId: optionalString(metadata.user_id, 'metadata.user_id', of),
    priceIds: unique(items.map((i) => i.priceId)),
    productIds: unique(items.map((i) => i.productId)),
    lookupKeys: unique(items.map((i) => i.lookupKey)),
    priceFeatures: unique(itemObjects.flatMap((item, i) => priceFeatures(item, `items.data[${i}]`, of))),
    items,
    // Older API versions: on the subscription. Current ones: on each item.
    currentPeriodStart: timestamp(object.current_period_start, 'current_period_start', of) ?? earliest(itemStarts),
    currentPeriodEnd: timestamp(object.current_period_end, 'current_period_end', of) ?? latest(itemEnds),
    cancelAtPeriodEnd: flag(object.cancel_at_period_end, 'cancel_at_period_end', of),
    cancelAt: timestamp(object.cancel_at, 'cancel_at', of),
    canceledAt: timestamp(object.canceled_at, 'canceled_at', of),
    endedAt: timestamp(object.ended_at, 'ended_at', of),
    trialStart: timestamp(object.trial_start, 'trial_start', of),
    trialEnd: timestamp(object.trial_end, 'trial_end', of),
    metadata,
    deleted: eventType === 'customer.subscription.deleted' || TERMINAL_SUBSCRIPTION_STATUSES.has(status),
  };
}

function itemFromStripe(item: StripeObject, path: string, of: string): SubscriptionItemState {
  const price = priceOf(item, path, of);
  return {
    id: optionalString(item.id, `${path}.id`, of),
    priceId: price ? optionalString(price.id, `${path}.price.id`, of) : optionalId(item.price, `${path}.price`, of),
    productId: price ? optionalId(price.product, `${path}.price.product`, of) : null,
    lookupKey: price ? optionalString(price.lookup_key, `${path}.price.lookup_key`, of) : null,
    quantity: integer(item.quantity, `${path}.quantity`, of, 0, Number.MAX_SAFE_INTEGER),
    currentPeriodStart: timestamp(item.current_period_start, `${path}.current_period_start`, of)?.toISOString() ?? null,
    currentPeriodEnd: timestamp(item.current_period_end, `${path}.current_period_end`, of)?.toISOString() ?? null,
  };
}

/** An item's price (current versions), or its plan (older ones), when expanded as an object. */
function priceOf(item: StripeObject, path: string, of: string): StripeObject | undefined {
  if (isObject(item.price)) {
    return item.price;
  }
  if (isObject(item.plan)) {
    return item.plan;
  }
  if (item.plan !== undefined && item.plan !== null) {
    throw malformed(`${path}.plan`, of, 'an object', item.plan);
  }
  return undefined;
}

/** `metadata.features` of an item's price: "a, b,c" → ["a", "b", "c"]. */
function priceFeatures(item: StripeObject, path: string, of: string): string[] {
  const price = priceOf(item, path, of);
  const metadata = price ? metadataOf(price.metadata, `${path}.price.metadata`, of) : {};
  const features = optionalString(metadata.features, `${path}.price.metadata.features`, of);
  return features
    ? features
        .split(',')
        .map((f) => f.trim())
        .filter(Boolean)
    : [];
}

export function customerFromStripe(object: StripeObject): CustomerState {
  const id = requiredId(object.id, 'id', 'of a customer');
  const of = `of customer ${id}`;
  const metadata = metadataOf(object.metadata, 'metadata', of);
  return {
    id,
    userId: optionalString(metadata.user_id, 'metadata.user_id', of),
    email: optionalString(object.email, 'email', of),
    name: optionalString(object.name, 'name', of),
    metadata,
  };
}

export function invoiceFromStripe(object: StripeObject): InvoiceState {
  const id = requiredId(object.id, 'id', 'of an invoice');
  const of = `of invoice ${id}`;
  const customerId = requiredId(object.customer, 'customer', of);
  const parent = optionalObject(object.parent, 'parent', of);
  const details = parent ? optionalObject(parent.subscription_details, 'parent.subscription_details', of) : null;
  const subscriptionId =
    (details ? optionalId(details.subscription, 'parent.subscription_details.subscription', of) : null) ??
    optionalId(object.subscription, 'subscription', of);
  // The period a subscription invoice pays for is on its subscription lines (the invoice's own
  // period_start/period_end cover the previous period on renewals): the latest-starting line that
  // is not a proration, since prorations and usage billed in arrears cover earlier periods.
  const lines = listData(object.lines, 'lines', of).flatMap((line, i) =>
    subscriptionLine(line, `lines.data[${i}]`, of),
  );
  const billed = lines.filter((l) => !l.proration);
  const period = latestPeriod(billed.length > 0 ? billed : lines);
  const transitions = optionalObject(object.status_transitions, 'status_transitions', of) ?? {};
  return {
    id,
    customerId,
    subscriptionId,
    status: requiredString(object.status, 'status', of),
    billingReason: optionalString(object.billing_reason, 'billing_reason', of),
    currency: optionalString(object.currency, 'currency', of),
    amountDue: amount(object.amount_due, 'amount_due', of),
    amountPaid: amount(object.amount_paid, 'amount_paid', of),
    periodStart: period?.start ?? timestamp(object.period_start, 'period_start', of),
    periodEnd: period?.end ?? timestamp(object.period_end, 'period_end', of),
    // attempt_count is an integer column.
    attemptCount: integer(object.attempt_count, 'attempt_count', of, 0, INT32_MAX),
    nextPaymentAttempt: timestamp(object.next_payment_attempt, 'next_payment_attempt', of),
    paidAt: timestamp(transitions.paid_at, 'status_transitions.paid_at', of),
  };
}

interface SubscriptionLine {
  proration: boolean;
  start: Date | null;
  end: Date | null;
}

/** A line for a subscription item, as a one-element list; other lines (one-off items) are not read. */
function subscriptionLine(line: StripeObject, path: string, of: string): SubscriptionLine[] {
  const parent = optionalObject(line.parent, `${path}.parent`, of);
  const details = parent
    ? optionalObject(parent.subscription_item_details, `${path}.parent.subscription_item_details`, of)
    : null;
  if (details === null && line.type !== 'subscription') {
    return [];
  }
  const period = optionalObject(line.period, `${path}.period`, of) ?? {};
  return [
    {
      proration:
        (details ? flag(details.proration, `${path}.parent.subscription_item_details.proration`, of) : false) ||
        flag(line.proration, `${path}.proration`, of),
      start: timestamp(period.start, `${path}.period.start`, of),
      end: timestamp(period.end, `${path}.period.end`, of),
    },
  ];
}

/** The period of the line that starts last. */
function latestPeriod(lines: SubscriptionLine[]): { start: Date; end: Date | null } | undefined {
  let best: { start: Date; end: Date | null } | undefined;
  for (const { start, end } of lines) {
    if (start && (!best || start > best.start)) {
      best = { start, end };
    }
  }
  return best;
}

export function entitlementSummaryFromStripe(object: StripeObject): EntitlementSummaryState {
  const customerId = requiredId(object.customer, 'customer', 'of an entitlement summary');
  const of = `of the entitlement summary of ${customerId}`;
  const entitlements = listData(object.entitlements, 'entitlements', of)
    .map((e, i) => ({
      feature: optionalId(e.feature, `entitlements.data[${i}].feature`, of),
      lookupKey: optionalString(e.lookup_key, `entitlements.data[${i}].lookup_key`, of),
    }))
    .filter((e): e is { feature: string | null; lookupKey: string } => e.lookupKey !== null);
  const list = optionalObject(object.entitlements, 'entitlements', of) ?? {};
  return {
    customerId,
    lookupKeys: unique(entitlements.map((e) => e.lookupKey)),
    entitlements,
    hasMore: flag(list.has_more, 'entitlements.has_more', of),
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
  const id = requiredId(object.id, 'id', 'of a checkout session');
  const of = `of checkout session ${id}`;
  const details = optionalObject(object.customer_details, 'customer_details', of) ?? {};
  return {
    id,
    mode: optionalString(object.mode, 'mode', of),
    status: optionalString(object.status, 'status', of),
    paymentStatus: optionalString(object.payment_status, 'payment_status', of),
    customerId: optionalId(object.customer, 'customer', of),
    subscriptionId: optionalId(object.subscription, 'subscription', of),
    paymentIntentId: optionalId(object.payment_intent, 'payment_intent', of),
    userId: optionalString(object.client_reference_id, 'client_reference_id', of),
    email:
      optionalString(details.email, 'customer_details.email', of) ??
      optionalString(object.customer_email, 'customer_email', of),
    amountTotal: amount(object.amount_total, 'amount_total', of),
    currency: optionalString(object.currency, 'currency', of),
    metadata: metadataOf(object.metadata, 'metadata', of),
  };
}

// --- small readers ---------------------------------------------------------------------------
// Each takes the field's path and its owner ("of subscription sub_…") for its error. Absent
// (undefined) and null read as null: Stripe leaves out or nulls what does not apply. Anything else
// of the wrong type or out of range is malformed.

/** 9999-12-31T23:59:59Z, the last second PostgreSQL and toISOString both write with a four-digit year. */
const MAX_TIMESTAMP_SECONDS = 253_402_300_799;
const INT32_MAX = 2_147_483_647;

function isAbsent(value: unknown): value is null | undefined {
  return value === undefined || value === null;
}

function malformed(path: string, of: string, expected: string, value: unknown): PermanentEventError {
  return new PermanentEventError(`malformed object: ${path} ${of} is not ${expected} (got ${preview(value)})`);
}

/** The offending value, short: enough to recognise it in the dead letter's error. */
function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/** An id, whether the field holds it as a string or holds the expanded object; blank reads as null. */
function optionalId(value: unknown, path: string, of: string): string | null {
  if (isAbsent(value)) {
    return null;
  }
  if (typeof value === 'string') {
    return nonEmptyString(value);
  }
  if (isObject(value)) {
    return optionalString(value.id, `${path}.id`, of);
  }
  throw malformed(path, of, 'an id or an object with an id', value);
}

function requiredId(value: unknown, path: string, of: string): string {
  const id = optionalId(value, path, of);
  if (!id) {
    throw new PermanentEventError(`malformed object: no ${path} ${of}`);
  }
  return id;
}

function requiredString(value: unknown, path: string, of: string): string {
  const text = optionalString(value, path, of);
  if (!text) {
    throw new PermanentEventError(`malformed object: no ${path} ${of}`);
  }
  return text;
}

/** A string; blank reads as null. */
function optionalString(value: unknown, path: string, of: string): string | null {
  if (isAbsent(value)) {
    return null;
  }
  if (typeof value !== 'string') {
    throw malformed(path, of, 'a string', value);
  }
  return nonEmptyString(value);
}

function nonEmptyString(value: string): string | null {
  return value.trim() !== '' ? value : null;
}

/** An amount in minor units: a safe integer (the columns are bigint). */
function amount(value: unknown, path: string, of: string): number | null {
  return integer(value, path, of, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
}

function integer(value: unknown, path: string, of: string, min: number, max: number): number | null {
  if (isAbsent(value)) {
    return null;
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw malformed(path, of, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

/**
 * Unix seconds → Date, up to the year 9999; 0 reads as unset. Past that range a Date is invalid,
 * and would throw only where it is written (toISOString, the driver), after the checks.
 */
function timestamp(value: unknown, path: string, of: string): Date | null {
  if (isAbsent(value) || value === 0) {
    return null;
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_TIMESTAMP_SECONDS) {
    throw malformed(path, of, 'a Unix timestamp in seconds up to the year 9999', value);
  }
  return new Date(value * 1000);
}

function flag(value: unknown, path: string, of: string): boolean {
  if (isAbsent(value)) {
    return false;
  }
  if (typeof value !== 'boolean') {
    throw malformed(path, of, 'true or false', value);
  }
  return value;
}

function optionalObject(value: unknown, path: string, of: string): StripeObject | null {
  if (isAbsent(value)) {
    return null;
  }
  if (!isObject(value)) {
    throw malformed(path, of, 'an object', value);
  }
  return value;
}

/** Metadata: an object (its values are the account's own strings); absent reads as empty. */
function metadataOf(value: unknown, path: string, of: string): StripeObject {
  return optionalObject(value, path, of) ?? {};
}

/** A Stripe list (`{"object":"list","data":[…]}`): its objects; absent reads as empty. */
function listData(list: unknown, path: string, of: string): StripeObject[] {
  const object = optionalObject(list, path, of);
  if (!object) {
    return [];
  }
  const { data } = object;
  if (!Array.isArray(data)) {
    throw malformed(`${path}.data`, of, 'an array', data);
  }
  return data.map((element: unknown, i) => {
    if (!isObject(element)) {
      throw malformed(`${path}.data[${i}]`, of, 'an object', element);
    }
    return element;
  });
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

function isTopUp(object: StripeObject, of: string): boolean {
  return metadataOf(object.metadata, 'metadata', of).purpose === TOP_UP_PURPOSE;
}

function currencyOf(object: StripeObject, of: string): string | null {
  return optionalString(object.currency, 'currency', of)?.toLowerCase() ?? null;
}

/** A paid one-time Checkout Session for a top-up (credits `amount_total`), else null. */
export function topUpFromCheckoutSession(object: StripeObject): TopUp | null {
  const of = `of checkout session ${optionalId(object.id, 'id', 'of a checkout session') ?? '(no id)'}`;
  if (!isTopUp(object, of) || object.mode !== 'payment' || object.payment_status !== 'paid') {
    return null;
  }
  const intent = isObject(object.payment_intent) ? object.payment_intent : null;
  return {
    customerId: optionalId(object.customer, 'customer', of),
    paymentIntentId: optionalId(object.payment_intent, 'payment_intent', of),
    amount: amount(object.amount_total, 'amount_total', of),
    currency: currencyOf(object, of),
    // Only when the PaymentIntent is expanded, which a webhook's session never is (it holds the id):
    // the method normally comes from the PaymentIntent's own event (see WalletService).
    paymentMethodId: intent ? optionalId(intent.payment_method, 'payment_intent.payment_method', of) : null,
  };
}

/** Any succeeded PaymentIntent that names its payment method, top-up or not; else null. */
export function paymentMethodOfPaymentIntent(
  object: StripeObject,
): { paymentIntentId: string; customerId: string | null; paymentMethodId: string } | null {
  const paymentIntentId = requiredId(object.id, 'id', 'of a payment intent');
  const of = `of payment intent ${paymentIntentId}`;
  const paymentMethodId = optionalId(object.payment_method, 'payment_method', of);
  if (!paymentMethodId) {
    return null;
  }
  return { paymentIntentId, customerId: optionalId(object.customer, 'customer', of), paymentMethodId };
}

/** A top-up PaymentIntent's id and how its errors name it; null when it is not a top-up. */
function topUpIntent(object: StripeObject): { paymentIntentId: string; of: string } | null {
  const paymentIntentId = requiredId(object.id, 'id', 'of a payment intent');
  const of = `of payment intent ${paymentIntentId}`;
  return isTopUp(object, of) ? { paymentIntentId, of } : null;
}

/** A succeeded top-up PaymentIntent (credits `amount_received`), else null. */
export function topUpFromPaymentIntent(object: StripeObject): TopUp | null {
  const intent = topUpIntent(object);
  if (!intent) {
    return null;
  }
  const { paymentIntentId, of } = intent;
  return {
    customerId: optionalId(object.customer, 'customer', of),
    paymentIntentId,
    amount: amount(object.amount_received, 'amount_received', of),
    currency: currencyOf(object, of),
    paymentMethodId: optionalId(object.payment_method, 'payment_method', of),
  };
}

/** A failed top-up PaymentIntent with its last error, else null. */
export function failedTopUpFromPaymentIntent(object: StripeObject): FailedTopUp | null {
  const intent = topUpIntent(object);
  if (!intent) {
    return null;
  }
  const { paymentIntentId, of } = intent;
  const error = optionalObject(object.last_payment_error, 'last_payment_error', of) ?? {};
  return {
    paymentIntentId,
    customerId: optionalId(object.customer, 'customer', of),
    amount: amount(object.amount, 'amount', of),
    currency: currencyOf(object, of),
    code: optionalString(error.code, 'last_payment_error.code', of),
    declineCode: optionalString(error.decline_code, 'last_payment_error.decline_code', of),
    message: optionalString(error.message, 'last_payment_error.message', of),
    paymentMethodId:
      optionalId(error.payment_method, 'last_payment_error.payment_method', of) ??
      optionalId(object.payment_method, 'payment_method', of),
  };
}
