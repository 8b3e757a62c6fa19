import { computeEntitlements, CustomerRow, SubscriptionRow } from './entitlements';

const ACCESS = ['active', 'trialing', 'past_due'];
const t = (s: string): Date => new Date(s);
const customer = (overrides: Partial<CustomerRow> = {}): CustomerRow => ({
  stripe_customer_id: 'cus_1',
  user_id: 'user_1',
  deleted: false,
  updated_at: t('2026-01-01T00:00:00Z'),
  ...overrides,
});
const subscription = (overrides: Partial<SubscriptionRow> = {}): SubscriptionRow => ({
  stripe_subscription_id: 'sub_1',
  stripe_customer_id: 'cus_1',
  status: 'active',
  user_id: null,
  price_ids: ['price_pro'],
  product_ids: ['prod_pro'],
  lookup_keys: ['pro_monthly'],
  price_features: ['reports', 'api_access'],
  current_period_end: t('2026-02-01T00:00:00Z'),
  cancel_at_period_end: false,
  last_event_created: t('2026-01-01T00:00:00Z'),
  updated_at: t('2026-01-01T00:00:01Z'),
  ...overrides,
});

describe('computeEntitlements', () => {
  it('grants access from an access status, with price features and lookup keys', () => {
    expect(
      computeEntitlements({ customers: [customer()], subscriptions: [subscription()], summaries: [] }, ACCESS),
    ).toEqual({
      customer_id: 'cus_1',
      user_id: 'user_1',
      active: true,
      status: 'active',
      subscription_ids: ['sub_1'],
      price_ids: ['price_pro'],
      product_ids: ['prod_pro'],
      features: ['api_access', 'pro_monthly', 'reports'],
      current_period_end: '2026-02-01T00:00:00.000Z',
      cancel_at_period_end: false,
      updated_at: '2026-01-01T00:00:01.000Z',
    });
  });

  it('follows ACCESS_STATUSES: past_due grants by default, not when excluded', () => {
    const input = { customers: [customer()], subscriptions: [subscription({ status: 'past_due' })], summaries: [] };
    expect(computeEntitlements(input, ACCESS).active).toBe(true);
    expect(computeEntitlements(input, ['active', 'trialing']).active).toBe(false);
    expect(computeEntitlements(input, ['active', 'trialing']).features).toEqual([]);
  });

  it('is active when any of several subscriptions grants access, and reports the granting ones', () => {
    const result = computeEntitlements(
      {
        customers: [customer()],
        subscriptions: [
          subscription({
            stripe_subscription_id: 'sub_old',
            status: 'canceled',
            last_event_created: t('2026-03-01T00:00:00Z'),
          }),
          subscription({ stripe_subscription_id: 'sub_a', status: 'trialing', price_features: ['a'], lookup_keys: [] }),
          subscription({
            stripe_subscription_id: 'sub_b',
            status: 'active',
            price_features: ['b'],
            lookup_keys: [],
            cancel_at_period_end: true,
          }),
        ],
        summaries: [],
      },
      ACCESS,
    );
    expect(result.active).toBe(true);
    expect(result.subscription_ids.sort()).toEqual(['sub_a', 'sub_b']);
    expect(result.features).toEqual(['a', 'b']);
    expect(result.cancel_at_period_end).toBe(false); // sub_a does not end
  });

  it('without access, reports the most recently changed subscription', () => {
    const result = computeEntitlements(
      {
        customers: [customer()],
        subscriptions: [
          subscription({
            stripe_subscription_id: 'sub_a',
            status: 'canceled',
            last_event_created: t('2026-01-05T00:00:00Z'),
          }),
          subscription({
            stripe_subscription_id: 'sub_b',
            status: 'unpaid',
            last_event_created: t('2026-01-09T00:00:00Z'),
          }),
        ],
        summaries: [],
      },
      ACCESS,
    );
    expect(result).toMatchObject({ active: false, status: 'unpaid', subscription_ids: ['sub_b'], features: [] });
  });

  it('uses the entitlement summary instead of price features when one exists (even an empty one)', () => {
    const summary = { stripe_customer_id: 'cus_1', lookup_keys: ['sso'], updated_at: t('2026-01-02T00:00:00Z') };
    const withSummary = computeEntitlements(
      { customers: [customer()], subscriptions: [subscription()], summaries: [summary] },
      ACCESS,
    );
    expect(withSummary.features).toEqual(['sso']);
    expect(withSummary.updated_at).toBe('2026-01-02T00:00:00.000Z');
    const emptied = computeEntitlements(
      { customers: [customer()], subscriptions: [subscription()], summaries: [{ ...summary, lookup_keys: [] }] },
      ACCESS,
    );
    expect(emptied.features).toEqual([]);
  });

  it('gives a deleted customer no access', () => {
    const result = computeEntitlements(
      { customers: [customer({ deleted: true })], subscriptions: [subscription()], summaries: [] },
      ACCESS,
    );
    expect(result).toMatchObject({ active: false, features: [] });
  });

  it("reports a deleted customer's still-active subscription as canceled, not active", () => {
    const result = computeEntitlements(
      { customers: [customer({ deleted: true })], subscriptions: [subscription()], summaries: [] },
      ACCESS,
    );
    expect(result).toMatchObject({ active: false, status: 'canceled', subscription_ids: ['sub_1'], features: [] });
  });

  it('reads a deleted customer with no subscription row as canceled', () => {
    const result = computeEntitlements(
      { customers: [customer({ deleted: true })], subscriptions: [], summaries: [] },
      ACCESS,
    );
    expect(result).toMatchObject({ active: false, status: 'canceled', subscription_ids: [] });
  });

  it("gives a deleted customer no access even when 'canceled' is an access status", () => {
    const result = computeEntitlements(
      { customers: [customer({ deleted: true })], subscriptions: [subscription()], summaries: [] },
      [...ACCESS, 'canceled'],
    );
    expect(result).toMatchObject({ active: false, status: 'canceled', features: [] });
  });

  it('answers for a customer with no subscription', () => {
    expect(computeEntitlements({ customers: [customer()], subscriptions: [], summaries: [] }, ACCESS)).toMatchObject({
      active: false,
      status: null,
      subscription_ids: [],
      current_period_end: null,
      cancel_at_period_end: false,
    });
  });

  it('for a user with several customers, names the customer that grants access', () => {
    const result = computeEntitlements(
      {
        customers: [
          customer({ stripe_customer_id: 'cus_a', updated_at: t('2026-05-01T00:00:00Z') }),
          customer({ stripe_customer_id: 'cus_b' }),
        ],
        subscriptions: [subscription({ stripe_customer_id: 'cus_b' })],
        summaries: [],
        userId: 'user_x',
      },
      ACCESS,
    );
    expect(result).toMatchObject({ customer_id: 'cus_b', user_id: 'user_x', active: true });
  });
});

describe('computeEntitlements for a user with several customers', () => {
  it("takes each customer's own summary, or else its own granting prices, and merges them", () => {
    const result = computeEntitlements(
      {
        customers: [customer({ stripe_customer_id: 'cus_a' }), customer({ stripe_customer_id: 'cus_b' })],
        subscriptions: [
          subscription({
            stripe_subscription_id: 'sub_a',
            stripe_customer_id: 'cus_a',
            price_features: ['x'],
            lookup_keys: ['a_key'],
          }),
          subscription({
            stripe_subscription_id: 'sub_b',
            stripe_customer_id: 'cus_b',
            price_features: ['api'],
            lookup_keys: ['pro'],
          }),
        ],
        summaries: [{ stripe_customer_id: 'cus_a', lookup_keys: ['reports'], updated_at: t('2026-01-02T00:00:00Z') }],
        userId: 'user_1',
      },
      ACCESS,
    );
    expect(result.features).toEqual(['api', 'pro', 'reports']);
  });

  it("ignores a deleted customer's summary and keeps a live customer's price features", () => {
    const result = computeEntitlements(
      {
        customers: [
          customer({ stripe_customer_id: 'cus_gone', deleted: true }),
          customer({ stripe_customer_id: 'cus_live' }),
        ],
        subscriptions: [
          subscription({ stripe_customer_id: 'cus_live', price_features: ['api'], lookup_keys: ['pro'] }),
        ],
        summaries: [
          { stripe_customer_id: 'cus_gone', lookup_keys: ['reports'], updated_at: t('2026-01-02T00:00:00Z') },
        ],
        userId: 'user_1',
      },
      ACCESS,
    );
    expect(result).toMatchObject({ active: true, features: ['api', 'pro'] });
  });
});
