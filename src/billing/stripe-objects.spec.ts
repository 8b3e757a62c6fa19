import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PermanentEventError } from '../queue/permanent-event.error';
import {
  checkoutSessionFromStripe,
  customerFromStripe,
  entitlementSummaryFromStripe,
  withFullList,
  invoiceFromStripe,
  subscriptionEventRank,
  subscriptionFromStripe,
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
