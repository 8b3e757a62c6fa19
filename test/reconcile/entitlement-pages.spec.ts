import { entitlementsOf } from '../support/billing';
import { createTestDatabase, TestDatabase } from '../support/database';
import { FakeStripe } from '../support/fake-stripe';
import { fixtureEvent, newWorld, StripeJson } from '../support/fixtures';
import { eventState, settle } from '../support/queue';
import { startPullingApp } from '../support/reconcile';
import { TestApp } from '../support/test-app';

const PATH = '/v1/entitlements/active_entitlements';

/** Lookup keys as the entitlements API lists them (sorted). */
const keys = (list: Array<{ lookup_key: string }>) => list.map((f) => f.lookup_key).sort();

/** A summary event whose list holds its first 100 entitlements and says has_more. */
function summaryWithMore(customer: string, features: Array<{ lookup_key: string; feature: string }>): StripeJson {
  const event = fixtureEvent('entitlements.active_entitlement_summary.updated', newWorld());
  const object = event.data.object;
  object.customer = customer;
  object.entitlements.data = features.slice(0, 100).map((f, i) => ({
    id: `ent_first_${i}`,
    object: 'entitlements.active_entitlement',
    feature: f.feature,
    livemode: false,
    lookup_key: f.lookup_key,
  }));
  object.entitlements.has_more = true;
  return event;
}

describe('entitlement summaries with has_more', () => {
  let db: TestDatabase;
  let fake: FakeStripe;
  let t: TestApp;
  const features = Array.from({ length: 230 }, (_, i) => ({ lookup_key: `feature_${i}`, feature: `feat_test_${i}` }));

  beforeAll(async () => {
    db = await createTestDatabase();
    fake = await FakeStripe.start();
    t = await startPullingApp(db.url, fake);
  });
  afterAll(async () => {
    await t.close();
    await fake.close();
    await db.drop();
  });

  it("read every page of the customer's active entitlements within the attempt: every lookup key is stored", async () => {
    const customer = `cus_pages_${Date.now()}`;
    fake.setActiveEntitlements(customer, features);
    const event = summaryWithMore(customer, features);
    expect((await t.deliver(event)).status).toBe(200);
    expect(await settle(t, db.pool, event.id as string)).toMatchObject({ status: 'processed', attempts: 1 });
    const { body } = await entitlementsOf(t, `/v1/customers/${customer}/entitlements`);
    expect(body.features).toEqual(keys(features));
    const pages = fake.requestsTo(PATH).filter((r) => r.query.customer === customer);
    expect(pages.map((p) => p.query.starting_after ?? null)).toEqual([
      null,
      `ent_test_${customer}_99`,
      `ent_test_${customer}_199`,
    ]);
    expect(pages[0].query.limit).toBe('100');
    expect(pages.map((p) => p.account)).toEqual([null, null, null]); // the platform's own: no Stripe-Account
  });

  it("a connected account's summary reads that account's list, sending Stripe-Account on every page", async () => {
    const account = 'acct_1EntitlementPages';
    const customer = `cus_connected_${Date.now()}`;
    fake.setActiveEntitlements(customer, features, account);
    fake.setActiveEntitlements(customer, features.slice(0, 3)); // the platform's same id lists something else
    const event: StripeJson = { ...summaryWithMore(customer, features), account };
    expect((await t.deliver(event)).status).toBe(200);
    expect(await settle(t, db.pool, event.id as string)).toMatchObject({ status: 'processed', attempts: 1 });
    const { body } = await entitlementsOf(t, `/v1/customers/${customer}/entitlements`);
    expect(body.features).toEqual(keys(features));
    const pages = fake.requestsTo(PATH).filter((r) => r.query.customer === customer);
    expect(pages).toHaveLength(3);
    expect(pages.map((p) => p.headers['stripe-account'])).toEqual([account, account, account]);
  });

  it('a failed read fails the attempt, and the retry stores the full list', async () => {
    const customer = `cus_retry_${Date.now()}`;
    fake.setActiveEntitlements(customer, features);
    fake.fail({ failure: 'malformed', when: (r) => r.path === PATH && r.query.starting_after !== undefined });
    const event = summaryWithMore(customer, features);
    await t.deliver(event);
    expect(await settle(t, db.pool, event.id as string)).toMatchObject({ status: 'processed', attempts: 2 });
    const { body } = await entitlementsOf(t, `/v1/customers/${customer}/entitlements`);
    expect(body.features).toEqual(keys(features));
  });

  it('a refused key fails the attempt with an error that names the key, never shows it', async () => {
    const customer = `cus_refused_${Date.now()}`;
    fake.setActiveEntitlements(customer, features);
    fake.fail({ failure: 401, times: Infinity, when: (r) => r.path === PATH && r.query.customer === customer });
    const event = summaryWithMore(customer, features);
    await t.deliver(event);
    const state = await settle(t, db.pool, event.id as string);
    expect(state.status).toBe('dead'); // FAST_QUEUE gives 4 attempts
    expect(state.last_error).toMatch(/Stripe refused STRIPE_API_KEY \(401\)/);
    expect(state.last_error).not.toContain(fake.apiKey.slice(-4));
    fake.heal();
  });

  it('without a key the first page is stored and nothing calls Stripe', async () => {
    const keyless = await startPullingApp(db.url, fake, { STRIPE_API_KEY: '' });
    try {
      const customer = `cus_keyless_${Date.now()}`;
      fake.setActiveEntitlements(customer, features);
      const before = fake.requests.length;
      const event = summaryWithMore(customer, features);
      await keyless.deliver(event);
      expect(await settle(keyless, db.pool, event.id as string)).toMatchObject({ status: 'processed' });
      const { body } = await entitlementsOf(keyless, `/v1/customers/${customer}/entitlements`);
      expect(body.features).toEqual(keys(features.slice(0, 100)));
      expect(fake.requests.length).toBe(before);
      expect(await eventState(db.pool, event.id as string)).toMatchObject({ attempts: 1 });
    } finally {
      await keyless.close();
    }
  });
});
