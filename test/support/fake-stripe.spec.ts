import Stripe from 'stripe';
import { FakeStripe } from './fake-stripe';
import { fixtureEvent, newWorld, StripeJson } from './fixtures';

const TYPES = ['customer.created', 'invoice.paid', 'customer.subscription.updated'];

/** stripe-node pointed at the fake the way the service points it at STRIPE_API_BASE. */
function client(fake: FakeStripe, key = fake.apiKey, maxNetworkRetries = 0): Stripe {
  return new Stripe(key, { host: '127.0.0.1', port: fake.port, protocol: 'http', maxNetworkRetries });
}

/** `n` events of the fixtures' shapes, one per second going back from `newest`. */
function events(n: number, newest: number, types = TYPES): StripeJson[] {
  return Array.from({ length: n }, (_, i) => {
    const type = types[i % types.length];
    // A type without a fixture of its own (one this service does not handle) borrows an envelope.
    const event = fixtureEvent(TYPES.includes(type) ? type : 'payment_intent.succeeded.plain', newWorld());
    event.type = type;
    event.created = newest - i;
    return event;
  });
}

describe('the fake Stripe API, checked against stripe-node', () => {
  let fake: FakeStripe;
  const now = Math.floor(Date.now() / 1000);

  beforeEach(async () => {
    fake = await FakeStripe.start();
  });
  afterEach(() => fake.close());

  it("keeps each connected account's events and entitlements apart, chosen by stripe-node's stripeAccount", async () => {
    const account = 'acct_1FakeConnected';
    const own = events(3, now - 10);
    const connected = events(2, now - 10).map((e): StripeJson => ({ ...e, account }));
    fake.addEvents([...own, ...connected]);
    fake.setActiveEntitlements('cus_shared', [{ lookup_key: 'platform_feature', feature: 'feat_1' }]);
    fake.setActiveEntitlements('cus_shared', [{ lookup_key: 'connected_feature', feature: 'feat_2' }], account);
    const stripe = client(fake);

    const listed = async (options?: Stripe.RequestOptions) =>
      (await stripe.events.list({ limit: 10 }, options)).data.map((e) => e.id);
    expect(await listed()).toEqual(own.map((e) => e.id));
    expect(await listed({ stripeAccount: account })).toEqual(connected.map((e) => e.id));
    expect(await listed({ stripeAccount: 'acct_1Other' })).toEqual([]);
    const entitlements = async (options?: Stripe.RequestOptions) =>
      (await stripe.entitlements.activeEntitlements.list({ customer: 'cus_shared' }, options)).data.map(
        (e) => e.lookup_key,
      );
    expect(await entitlements()).toEqual(['platform_feature']);
    expect(await entitlements({ stripeAccount: account })).toEqual(['connected_feature']);
    await expect(stripe.events.retrieve(connected[0].id as string)).rejects.toMatchObject({ statusCode: 404 });
    expect((await stripe.events.retrieve(connected[0].id as string, {}, { stripeAccount: account })).id).toBe(
      connected[0].id,
    );

    expect(fake.requests.map((r) => r.account)).toEqual([null, account, 'acct_1Other', null, account, null, account]);
    expect(fake.requests.map((r) => r.headers['stripe-account'])).toEqual([
      undefined,
      account,
      'acct_1Other',
      undefined,
      account,
      undefined,
      account,
    ]);
  });

  it("pages GET /v1/events newest first under stripe-node's own auto-pagination, filtered by created and types[]", async () => {
    const all = events(25, now - 100);
    const other = events(5, now - 103, ['charge.succeeded']);
    fake.addEvents([...all, ...other]);
    const stripe = client(fake);
    const gte = now - 100 - 19;
    const seen: string[] = [];
    for await (const event of stripe.events.list({
      limit: 3,
      types: ['customer.created', 'invoice.paid'],
      created: { gte, lte: now - 100 },
    })) {
      seen.push(event.id);
    }
    const expected = all.filter((e) => e.created >= gte && e.type !== 'customer.subscription.updated');
    expect(seen).toEqual(expected.map((e) => e.id)); // newest first, each once
    const pages = fake.requestsTo('/v1/events');
    expect(pages).toHaveLength(Math.ceil(expected.length / 3));
    expect(pages[0].query).toEqual({
      limit: '3',
      types: ['customer.created', 'invoice.paid'],
      created: { gte: String(gte), lte: String(now - 100) },
    });
    expect(pages[0].rawQuery).toContain('types[0]=customer.created&types[1]=invoice.paid');
    expect(pages[1].query.starting_after).toBe(expected[2].id);
    expect(pages.every((p) => p.headers.authorization === `Bearer ${fake.apiKey}`)).toBe(true);
    expect(pages[0].headers['stripe-version']).toBeTruthy();
  });

  it('answers a page as Stripe does: object list, has_more, url; ending_before pages backwards', async () => {
    const all = events(7, now - 10);
    fake.addEvents(all);
    const stripe = client(fake);
    const first = await stripe.events.list({ limit: 5 });
    expect(first).toMatchObject({ object: 'list', has_more: true, url: '/v1/events' });
    expect(first.data.map((e) => e.id)).toEqual(all.slice(0, 5).map((e) => e.id));
    const rest = await stripe.events.list({ limit: 5, starting_after: all[4].id });
    expect(rest.has_more).toBe(false);
    expect(rest.data.map((e) => e.id)).toEqual(all.slice(5).map((e) => e.id));
    const backwards: string[] = [];
    for await (const event of stripe.events.list({ limit: 2, ending_before: all[6].id })) {
      backwards.push(event.id);
    }
    expect(backwards).toEqual(
      all
        .slice(0, 6)
        .reverse()
        .map((e) => e.id),
    );
    expect((await stripe.events.list({ type: 'customer.*' })).data.map((e) => e.type)).toEqual(
      all.filter((e) => e.type.startsWith('customer.')).map((e) => e.type),
    );
  });

  it('keeps only 30 days of events, retrieves one by id, and gives 404 for an unknown one', async () => {
    const [recent] = events(1, now - 60);
    const [old] = events(1, now - 31 * 24 * 3600);
    fake.addEvents([recent, old]);
    const stripe = client(fake);
    expect((await stripe.events.list()).data.map((e) => e.id)).toEqual([recent.id]);
    expect(await stripe.events.retrieve(recent.id as string)).toMatchObject({ id: recent.id, type: recent.type });
    await expect(stripe.events.retrieve('evt_unknown')).rejects.toMatchObject({
      type: 'StripeInvalidRequestError',
      statusCode: 404,
      code: 'resource_missing',
    });
  });

  it('refuses bad parameters with 400 in the error JSON', async () => {
    const stripe = client(fake);
    await expect(stripe.events.list({ limit: 101 })).rejects.toMatchObject({ statusCode: 400, param: 'limit' });
    await expect(stripe.events.list({ types: Array.from({ length: 21 }, (_, i) => `t.${i}`) })).rejects.toMatchObject({
      statusCode: 400,
      param: 'types',
    });
    await expect(stripe.events.list({ starting_after: 'evt_nowhere' })).rejects.toMatchObject({
      statusCode: 400,
      code: 'resource_missing',
    });
  });

  it("raises stripe-node's error classes: 401 wrong key, 403 missing permission, 429, 500, dropped and cut-short answers", async () => {
    fake.addEvents(events(3, now - 10));
    const wrong = client(fake, 'sk_test_wrong_key_000000000000');
    const refused = await wrong.events.list().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect((refused as Error).message).not.toContain('wrong_key_0000'); // masked, as Stripe does
    const stripe = client(fake);
    fake.denyPermission('/v1/entitlements');
    await expect(stripe.entitlements.activeEntitlements.list({ customer: 'cus_1' })).rejects.toBeInstanceOf(
      Stripe.errors.StripePermissionError,
    );
    fake.heal();
    fake.fail({ failure: 429 });
    await expect(stripe.events.list()).rejects.toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    fake.fail({ failure: 500 });
    await expect(stripe.events.list()).rejects.toBeInstanceOf(Stripe.errors.StripeAPIError);
    fake.fail({ failure: 'drop', times: 2 }); // stripe-node retries a closed connection once by itself
    await expect(stripe.events.list()).rejects.toBeInstanceOf(Stripe.errors.StripeConnectionError);
    fake.fail({ failure: 'truncated' });
    await expect(stripe.events.list()).rejects.toThrow(/Invalid JSON/);
    fake.fail({ failure: 'malformed' });
    const malformed = (async () => {
      for await (const _event of stripe.events.list()) {
        // auto-pagination refuses a page without a data array
      }
    })();
    await expect(malformed).rejects.toThrow(/well-formed `data` array/);
    expect((await stripe.events.list()).data).toHaveLength(3); // the plan is spent
  });

  it('fails only the requests a rule names, after letting `skip` through; stripe-node retries 5xx itself', async () => {
    fake.addEvents(events(6, now - 10));
    fake.fail({ failure: 503, times: 2, skip: 1, when: (r) => r.query.starting_after !== undefined });
    const stripe = client(fake, fake.apiKey, 2);
    const seen: string[] = [];
    for await (const event of stripe.events.list({ limit: 2 })) {
      seen.push(event.id);
    }
    expect(seen).toHaveLength(6);
    // first page, second page, third page failing twice and then answered
    expect(fake.requestsTo('/v1/events').map((r) => r.query.starting_after ?? null)).toEqual([
      null,
      seen[1],
      seen[3],
      seen[3],
      seen[3],
    ]);
  });

  it('pages the active entitlements of a customer', async () => {
    const features = Array.from({ length: 7 }, (_, i) => ({ lookup_key: `feature_${i}`, feature: `feat_test_${i}` }));
    fake.setActiveEntitlements('cus_many', features);
    const stripe = client(fake);
    const keys: string[] = [];
    for await (const entitlement of stripe.entitlements.activeEntitlements.list({ customer: 'cus_many', limit: 3 })) {
      expect(entitlement.object).toBe('entitlements.active_entitlement');
      keys.push(entitlement.lookup_key);
    }
    expect(keys).toEqual(features.map((f) => f.lookup_key));
    expect(fake.requestsTo('/v1/entitlements/active_entitlements')).toHaveLength(3);
    expect((await stripe.entitlements.activeEntitlements.list({ customer: 'cus_none' })).data).toEqual([]);
    await expect(stripe.entitlements.activeEntitlements.list({} as { customer: string })).rejects.toMatchObject({
      statusCode: 400,
      param: 'customer',
    });
  });
});
