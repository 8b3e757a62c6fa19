import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PermanentEventError } from '../queue/permanent-event.error';
import {
  checkoutSessionFromStripe,
  customerFromStripe,
  entitlementSummaryFromStripe,
  failedTopUpFromPaymentIntent,
  withFullList,
  invoiceFromStripe,
  paymentMethodOfPaymentIntent,
  subscriptionEventRank,
  subscriptionFromStripe,
  topUpFromCheckoutSession,
  topUpFromPaymentIntent,
} from './stripe-objects';

const fixture = (name: string): Record<string, unknown> =>
  (
    JSON.parse(readFileSync(join(__dirname, '..', '..', 'test', 'fixtures', 'events', `${name}.json`), 'utf8')) as {
      data: { object: Record<string, unknown> };
    }
  ).data.object;
const at = (seconds: number): Date => new Date(seconds * 1000);

describe('Stripe → row mapping', () => {
  it('reads a current-version subscription: the period from its items', () => {
    const s = subscriptionFromStripe(fixture('customer.subscription.updated'), 'customer.subscription.updated');
    expect(s).toMatchObject({
      id: 'sub_1QaZ3bCdEfGh4567',
      customerId: 'cus_Fx7Kq2LmN4pR8s',
      status: 'active',
      userId: 'user_42',
      priceIds: ['price_1QProMonthly01'],
      productIds: ['prod_ProPlan0001'],
      lookupKeys: ['pro_monthly'],
      priceFeatures: ['reports', 'api_access'],
      currentPeriodStart: at(1767225600),
      currentPeriodEnd: at(1769904000),
      cancelAtPeriodEnd: false,
      deleted: false,
    });
    expect(s.items).toEqual([
      {
        id: 'si_Ra1b2C3d4E5f6G',
        priceId: 'price_1QProMonthly01',
        productId: 'prod_ProPlan0001',
        lookupKey: 'pro_monthly',
        quantity: 1,
        currentPeriodStart: '2026-01-01T00:00:00.000Z',
        currentPeriodEnd: '2026-02-01T00:00:00.000Z',
      },
    ]);
  });

  it('reads a legacy (2024-06-20) subscription: the period at the top level', () => {
    const s = subscriptionFromStripe(fixture('customer.subscription.updated.legacy'), 'customer.subscription.updated');
    expect(s.currentPeriodStart).toEqual(at(1767225600));
    expect(s.currentPeriodEnd).toEqual(at(1769904000));
    expect(s.priceIds).toEqual(['price_1QProMonthly01']);
    expect(s.lookupKeys).toEqual(['pro_monthly']);
  });

  it('takes the earliest start and latest end across items, and expanded products', () => {
    const object = fixture('customer.subscription.updated');
    const items = (object.items as { data: Array<Record<string, unknown>> }).data;
    const second = JSON.parse(JSON.stringify(items[0])) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- fixture JSON, edited freely
    second.id = 'si_second';
    second.current_period_start = 1767000000;
    second.current_period_end = 1770000000;
    second.price = {
      ...second.price,
      id: 'price_addon',
      lookup_key: null,
      product: { id: 'prod_addon' },
      metadata: { features: ' sso , reports' },
    };
    items.push(second);
    const s = subscriptionFromStripe(object, 'customer.subscription.updated');
    expect(s.currentPeriodStart).toEqual(at(1767000000));
    expect(s.currentPeriodEnd).toEqual(at(1770000000));
    expect(s.productIds).toEqual(['prod_ProPlan0001', 'prod_addon']);
    expect(s.priceFeatures).toEqual(['reports', 'api_access', 'sso']);
    expect(s.lookupKeys).toEqual(['pro_monthly']);
  });

  it('treats deletion and terminal statuses as final, and ranks same-second events', () => {
    const deleted = subscriptionFromStripe(fixture('customer.subscription.deleted'), 'customer.subscription.deleted');
    expect(deleted).toMatchObject({ status: 'canceled', deleted: true });
    expect(deleted.canceledAt).not.toBeNull();
    const expired = subscriptionFromStripe(
      { ...fixture('customer.subscription.created'), status: 'incomplete_expired' },
      'customer.subscription.updated',
    );
    expect(expired.deleted).toBe(true);
    expect(subscriptionEventRank('customer.subscription.created', { deleted: false })).toBe(0);
    expect(subscriptionEventRank('customer.subscription.updated', { deleted: false })).toBe(1);
    expect(subscriptionEventRank('customer.subscription.deleted', { deleted: true })).toBe(2);
  });

  it('refuses a subscription without id, customer or status as a permanent failure', () => {
    for (const field of ['id', 'customer', 'status']) {
      const object = { ...fixture('customer.subscription.updated'), [field]: null };
      expect(() => subscriptionFromStripe(object, 'customer.subscription.updated')).toThrow(PermanentEventError);
    }
  });

  it('reads a current-version invoice: subscription under parent, paid period from its lines', () => {
    expect(invoiceFromStripe(fixture('invoice.paid'))).toMatchObject({
      id: 'in_1Qn8FhT3uV6wX9yZ2aB5cD7e',
      customerId: 'cus_Fx7Kq2LmN4pR8s',
      subscriptionId: 'sub_1QaZ3bCdEfGh4567',
      status: 'paid',
      billingReason: 'subscription_cycle',
      amountPaid: 2900,
      currency: 'usd',
      periodStart: at(1769904000),
      periodEnd: at(1772323200),
    });
  });

  it("takes a renewal's new period from its latest-starting line that is not a proration", () => {
    const invoice = fixture('invoice.paid') as { lines: { data: Array<Record<string, any>> } }; // eslint-disable-line @typescript-eslint/no-explicit-any -- fixture JSON, edited freely
    const renewal = invoice.lines.data[0];
    const proration = JSON.parse(JSON.stringify(renewal)) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- fixture JSON, edited freely
    proration.id = 'il_proration';
    proration.period = { start: 1768500000, end: 1769904000 }; // mid-January to the old period's end
    proration.parent.subscription_item_details.proration = true;
    const metered = JSON.parse(JSON.stringify(renewal)) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- fixture JSON, edited freely
    metered.id = 'il_metered';
    metered.period = { start: 1767225600, end: 1769904000 }; // usage billed in arrears: the old period
    invoice.lines.data = [proration, metered, renewal];
    expect(invoiceFromStripe(invoice)).toMatchObject({
      periodStart: at(1769904000),
      periodEnd: at(1772323200),
    });
  });

  it('reads a legacy invoice: subscription at the top level', () => {
    expect(invoiceFromStripe(fixture('invoice.paid.legacy'))).toMatchObject({
      subscriptionId: 'sub_1QaZ3bCdEfGh4567',
      periodStart: at(1769904000),
      periodEnd: at(1772323200),
    });
  });

  it('reads a failed invoice with its retry schedule', () => {
    const invoice = invoiceFromStripe(fixture('invoice.payment_failed'));
    expect(invoice).toMatchObject({
      status: 'open',
      attemptCount: 1,
      nextPaymentAttempt: at(1770170520),
      paidAt: null,
    });
  });

  it('reads customers, entitlement summaries and checkout sessions', () => {
    expect(customerFromStripe(fixture('customer.created'))).toMatchObject({
      id: 'cus_Fx7Kq2LmN4pR8s',
      userId: 'user_42',
      email: 'ada@example.com',
      name: 'Ada Lovelace',
    });
    expect(entitlementSummaryFromStripe(fixture('entitlements.active_entitlement_summary.updated'))).toEqual({
      customerId: 'cus_Fx7Kq2LmN4pR8s',
      lookupKeys: ['reports', 'api_access'],
      entitlements: [
        { feature: 'feat_test_61RpT4sV8wXk2Lm9Nq41Fx7KAcme3Rpt', lookupKey: 'reports' },
        { feature: 'feat_test_61RpT5aB2cDe4Fg6Hj41Fx7KAcme4Ap1', lookupKey: 'api_access' },
      ],
      hasMore: false,
    });
    expect(checkoutSessionFromStripe(fixture('checkout.session.completed.subscription'))).toMatchObject({
      mode: 'subscription',
      customerId: 'cus_Fx7Kq2LmN4pR8s',
      subscriptionId: 'sub_1QaZ3bCdEfGh4567',
      userId: 'user_42',
      email: 'ada@example.com',
    });
  });

  describe('a value that cannot be converted is a permanent failure naming its field', () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- fixtures are free-form JSON the tests reach into
    type Json = Record<string, any>;
    const subscription = (): Json => fixture('customer.subscription.updated');
    const legacySubscription = (): Json => fixture('customer.subscription.updated.legacy');
    const invoice = (): Json => fixture('invoice.paid');
    const readSubscription = (object: Record<string, unknown>) => () =>
      subscriptionFromStripe(object, 'customer.subscription.updated');

    function expectPermanent(read: () => unknown, field: string): void {
      let caught: unknown;
      try {
        read();
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(PermanentEventError);
      expect((caught as Error).message).toContain(field);
    }

    it.each([
      ['1e300', 1e300],
      ['past the year 9999', 253_402_300_800],
      ['negative', -1],
      ['a date string', '2026-01-01T00:00:00Z'],
      ['a numeric string', '1767225600'],
      ['an object', { seconds: 1767225600 }],
    ])('timestamps: %s', (_, value) => {
      expectPermanent(
        readSubscription({ ...legacySubscription(), current_period_start: value }),
        'current_period_start',
      );
      expectPermanent(readSubscription({ ...subscription(), trial_end: value }), 'trial_end');
      const withItem = subscription();
      withItem.items.data[0].current_period_end = value;
      expectPermanent(readSubscription(withItem), 'items.data[0].current_period_end');
      const withLine = invoice();
      withLine.lines.data[0].period.start = value;
      expectPermanent(() => invoiceFromStripe(withLine), 'lines.data[0].period.start');
      expectPermanent(() => invoiceFromStripe({ ...invoice(), status_transitions: { paid_at: value } }), 'paid_at');
    });

    it('timestamps: absent, null and 0 read as null; the last second of 9999 is a date', () => {
      const { current_period_start: _, ...absent } = legacySubscription();
      expect(subscriptionFromStripe({ ...absent, items: null }, 'x').currentPeriodStart).toBeNull();
      expect(subscriptionFromStripe({ ...legacySubscription(), trial_end: null }, 'x').trialEnd).toBeNull();
      expect(subscriptionFromStripe({ ...legacySubscription(), trial_end: 0 }, 'x').trialEnd).toBeNull();
      expect(subscriptionFromStripe({ ...legacySubscription(), trial_end: 253_402_300_799 }, 'x').trialEnd).toEqual(
        new Date('9999-12-31T23:59:59Z'),
      );
    });

    it.each([
      ['a fraction', 12.5],
      ['past a safe integer', 2 ** 53],
      ['1e300', 1e300],
      ['a string', '2900'],
    ])('amounts: %s', (_, value) => {
      expectPermanent(() => invoiceFromStripe({ ...invoice(), amount_paid: value }), 'amount_paid');
      expectPermanent(
        () =>
          checkoutSessionFromStripe({ ...fixture('checkout.session.completed.wallet_top_up'), amount_total: value }),
        'amount_total',
      );
      expectPermanent(
        () => topUpFromCheckoutSession({ ...fixture('checkout.session.completed.wallet_top_up'), amount_total: value }),
        'amount_total',
      );
      expectPermanent(
        () => topUpFromPaymentIntent({ ...fixture('payment_intent.succeeded.wallet_top_up'), amount_received: value }),
        'amount_received',
      );
      expectPermanent(
        () =>
          failedTopUpFromPaymentIntent({ ...fixture('payment_intent.payment_failed.wallet_top_up'), amount: value }),
        'amount of payment intent',
      );
    });

    it('integers: attempt_count within an integer column, quantity whole', () => {
      expectPermanent(() => invoiceFromStripe({ ...invoice(), attempt_count: 2 ** 31 }), 'attempt_count');
      expectPermanent(() => invoiceFromStripe({ ...invoice(), attempt_count: -1 }), 'attempt_count');
      expect(invoiceFromStripe({ ...invoice(), attempt_count: 2 ** 31 - 1 }).attemptCount).toBe(2 ** 31 - 1);
      const withItem = subscription();
      withItem.items.data[0].quantity = 1.5;
      expectPermanent(readSubscription(withItem), 'items.data[0].quantity');
    });

    it('lists: an object with a data array of objects', () => {
      expectPermanent(readSubscription({ ...subscription(), items: [] }), 'items');
      expectPermanent(readSubscription({ ...subscription(), items: { object: 'list', data: 'si_1' } }), 'items.data');
      expectPermanent(
        readSubscription({ ...subscription(), items: { object: 'list', data: ['si_1'] } }),
        'items.data[0]',
      );
      const withLines = invoice();
      withLines.lines.data.push(42);
      expectPermanent(() => invoiceFromStripe(withLines), 'lines.data[1]');
      expectPermanent(
        () =>
          entitlementSummaryFromStripe({
            ...fixture('entitlements.active_entitlement_summary.updated'),
            entitlements: { data: {} },
          }),
        'entitlements.data',
      );
    });

    it('strings, ids, flags and objects of the wrong type', () => {
      expectPermanent(readSubscription({ ...subscription(), status: 3 }), 'status of subscription');
      expectPermanent(readSubscription({ ...subscription(), customer: 42 }), 'customer of subscription');
      expectPermanent(readSubscription({ ...subscription(), customer: { id: 42 } }), 'customer.id of subscription');
      expectPermanent(readSubscription({ ...subscription(), cancel_at_period_end: 'yes' }), 'cancel_at_period_end');
      expectPermanent(readSubscription({ ...subscription(), metadata: 'user_42' }), 'metadata');
      expectPermanent(readSubscription({ ...subscription(), metadata: { user_id: 42 } }), 'metadata.user_id');
      expectPermanent(() => customerFromStripe({ ...fixture('customer.created'), email: ['a@example.com'] }), 'email');
      expectPermanent(() => invoiceFromStripe({ ...invoice(), parent: 'sub_1' }), 'parent of invoice');
      expectPermanent(() => invoiceFromStripe({ ...invoice(), currency: 840 }), 'currency');
      expectPermanent(
        () => paymentMethodOfPaymentIntent({ ...fixture('payment_intent.succeeded.plain'), payment_method: 7 }),
        'payment_method',
      );
    });

    it('names the field and shows a short form of the value', () => {
      expect(readSubscription({ ...legacySubscription(), current_period_start: 1e300 })).toThrow(
        /^malformed object: current_period_start of subscription sub_\w+ is not a Unix timestamp in seconds up to the year 9999 \(got 1e\+300\)$/,
      );
      expect(readSubscription({ ...subscription(), status: 7 })).toThrow(/\(got 7\)$/);
      expect(readSubscription({ ...subscription(), metadata: 'y'.repeat(100) })).toThrow(/\(got "y{39}…\)$/);
    });
  });

  it("puts the full list read from the API in place of a summary's first page", () => {
    const firstPage = { ...entitlementSummaryFromStripe(fixture('entitlements.active_entitlement_summary.updated')) };
    firstPage.hasMore = true;
    const full = withFullList(firstPage, [
      { feature: 'feat_a', lookupKey: 'reports' },
      { feature: 'feat_b', lookupKey: 'exports' },
      { feature: 'feat_c', lookupKey: 'reports' },
    ]);
    expect(full).toEqual({
      customerId: 'cus_Fx7Kq2LmN4pR8s',
      lookupKeys: ['reports', 'exports'],
      entitlements: [
        { feature: 'feat_a', lookupKey: 'reports' },
        { feature: 'feat_b', lookupKey: 'exports' },
        { feature: 'feat_c', lookupKey: 'reports' },
      ],
      hasMore: false,
    });
  });
});
