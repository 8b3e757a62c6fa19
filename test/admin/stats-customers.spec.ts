import { createTestDatabase, TestDatabase } from '../support/database';
import { fixtureEvent, newWorld, subscriptionEvent } from '../support/fixtures';
import { FAST_QUEUE, settle } from '../support/queue';
import { randomId, stripeEvent } from '../support/stripe';
import { ADMIN_TOKEN, startTestApp, TestApp, useTestApp } from '../support/test-app';

const auth = { Authorization: `Bearer ${ADMIN_TOKEN}` };
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

interface Bucket {
  start: string;
  received: number;
  processed: number;
  retried: number;
  dead: number;
}

describe('GET /admin/stats', () => {
  let db: TestDatabase;
  let t: TestApp;
  let other: TestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    const handlers = {
      'test.ok': () => Promise.resolve(),
      'test.fails': () => Promise.reject(new Error('always fails')),
    };
    const env = { ...FAST_QUEUE, RETRY_MAX_ATTEMPTS: '2' };
    t = await startTestApp(db.url, env, handlers);
    other = await startTestApp(db.url, env, handlers); // a second replica on the same database
  });
  afterAll(async () => {
    await other.close();
    await t.close();
    await db.drop();
  });

  const stats = async (window?: string): Promise<Bucket[]> => {
    const res = await t.http
      .get('/admin/stats')
      .query(window ? { window } : {})
      .set(auth);
    expect(res.status).toBe(200);
    return (res.body as { buckets: Bucket[] }).buckets;
  };
  const total = (buckets: Bucket[], field: keyof Omit<Bucket, 'start'>): number =>
    buckets.reduce((sum, b) => sum + b[field], 0);

  it('answers 401 without a valid token and 400 for an unknown window', async () => {
    expect((await t.http.get('/admin/stats')).status).toBe(401);
    const bad = await t.http.get('/admin/stats?window=2h').set(auth);
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ statusCode: 400, error: 'invalid_request', message: expect.stringMatching(/window/) });
  });

  it.each([
    [undefined, 60, 60_000],
    ['1h', 60, 60_000],
    ['24h', 96, 15 * 60_000],
    ['7d', 168, 3_600_000],
  ])('window %s: %i consecutive aligned buckets, oldest first, the last holding now', async (window, n, width) => {
    const before = Date.now();
    const buckets = await stats(window);
    expect(buckets).toHaveLength(n);
    const starts = buckets.map((b) => {
      expect(b.start).toMatch(ISO);
      return Date.parse(b.start);
    });
    for (let i = 1; i < n; i++) {
      expect(starts[i] - starts[i - 1]).toBe(width);
    }
    expect(starts[n - 1] % width).toBe(0);
    // The last bucket holds the moment of the request (the clocks are those of one machine).
    expect(starts[n - 1]).toBeLessThanOrEqual(Date.now());
    expect(starts[n - 1] + width).toBeGreaterThan(before - 1_000);
  });

  it('counts received, processed, retried and dead events of every replica, from the database', async () => {
    const ok = stripeEvent('test.ok', { id: randomId('obj') });
    const fails = stripeEvent('test.fails', { id: randomId('obj') });
    const ignored = stripeEvent('some.unhandled_type', { id: randomId('obj') });
    // Each delivered to a different replica; the counts are read from the first.
    expect((await t.deliver(ok)).status).toBe(200);
    expect((await other.deliver(fails)).status).toBe(200);
    expect((await other.deliver(ignored)).status).toBe(200);
    await settle(t, db.pool, ok.id as string);
    expect((await settle(other, db.pool, fails.id as string)).status).toBe('dead');

    for (const window of ['1h', '24h', '7d']) {
      const buckets = await stats(window);
      expect({
        received: total(buckets, 'received'),
        processed: total(buckets, 'processed'),
        retried: total(buckets, 'retried'),
        dead: total(buckets, 'dead'),
      }).toEqual({ received: 3, processed: 2, retried: 1, dead: 1 });
    }
  });

  it('puts older events in older buckets, and leaves out what is older than the window', async () => {
    await db.pool.query(
      `INSERT INTO subscription_events (stripe_event_id, event_type, status, payload, received_at, processed_at)
       VALUES ($1, 'test.ok', 'processed', '{}', now() - interval '3 hours', now() - interval '3 hours'),
              ($2, 'test.ok', 'processed', '{}', now() - interval '3 days', now() - interval '3 days')`,
      [randomId('evt'), randomId('evt')],
    );
    // Their processing, counted in the minutes it happened (as webhook_count_events does).
    await db.pool.query(
      `INSERT INTO webhook_event_counts (slot, shard, minute, processed)
       SELECT (extract(epoch FROM m)::bigint / 60 % 11520)::integer, 99, m, 1
         FROM (VALUES (date_trunc('minute', now() - interval '3 hours')),
                      (date_trunc('minute', now() - interval '3 days'))) v(m)`,
    );
    const hour = await stats('1h');
    const day = await stats('24h');
    const week = await stats('7d');
    expect(total(hour, 'received')).toBe(3);
    expect(total(day, 'received')).toBe(4);
    expect(total(week, 'received')).toBe(5);
    // Three hours ago is 12 quarter-hours (or 13, across a boundary) before the current one.
    const threeHoursAgo = day.findIndex((b) => b.received === 1 && b.processed === 1);
    expect([96 - 13, 96 - 12 - 1]).toContain(threeHoursAgo);
  });

  it('counts retries per minute in a ring of slots: a slot left from 8 days ago starts again', async () => {
    // The slots of this minute and the next, in every shard, still hold the same minutes of 8 days
    // ago, 50 retries and 50 processed each.
    await db.pool.query('DELETE FROM webhook_event_counts');
    await db.pool.query(
      `INSERT INTO webhook_event_counts (slot, shard, minute, retried, processed)
       SELECT (extract(epoch FROM m)::bigint / 60 % 11520)::integer, shard, m - interval '8 days', 50, 50
         FROM (VALUES (date_trunc('minute', now())), (date_trunc('minute', now()) + interval '1 minute')) v(m),
              generate_series(0, 15) shard`,
    );
    expect(total(await stats('7d'), 'retried')).toBe(0);
    const fails = stripeEvent('test.fails', { id: randomId('obj') });
    expect((await t.deliver(fails)).status).toBe(200);
    expect((await settle(t, db.pool, fails.id as string)).status).toBe('dead');
    expect(total(await stats('7d'), 'retried')).toBe(1);
    const { rows } = await db.pool.query(
      `SELECT retried, minute > now() - interval '2 minutes' AS recent FROM webhook_event_counts WHERE retried <> 50`,
    );
    expect(rows).toEqual([{ retried: 1, recent: true }]);
  });
});

describe('GET /admin/customers/:customerId/events', () => {
  const { db, t } = useTestApp(FAST_QUEUE);

  const list = (customer: string, query: Record<string, string | number> = {}) =>
    t.http
      .get(`/admin/customers/${encodeURIComponent(customer)}/events`)
      .query(query)
      .set(auth);

  it('lists the events whose object is the customer or names it, newest created first', async () => {
    const w = newWorld();
    const created = fixtureEvent('customer.created', w);
    created.created = 1_800_000_000;
    const subscription = fixtureEvent('customer.subscription.created', w);
    subscription.created = 1_800_000_100;
    // An object whose `customer` is expanded into the customer object.
    const expanded = stripeEvent(
      'some.unhandled_type',
      { id: randomId('obj'), object: 'thing', customer: { id: w.customer, object: 'customer' } },
      { created: 1_800_000_050 },
    );
    const unrelated = stripeEvent('some.unhandled_type', { id: randomId('obj'), customer: 'cus_someone_else' });
    for (const event of [created, subscription, expanded, unrelated]) {
      expect((await t.deliver(event)).status).toBe(200);
    }
    await settle(t, db.pool, created.id);
    await settle(t, db.pool, subscription.id);

    const res = await list(w.customer);
    expect(res.status).toBe(200);
    expect(res.body.next_cursor).toBeNull();
    expect(res.body.items.map((i: { stripe_event_id: string }) => i.stripe_event_id)).toEqual([
      subscription.id,
      expanded.id,
      created.id,
    ]);
    expect(res.body.items[0]).toEqual({
      stripe_event_id: subscription.id,
      event_type: 'customer.subscription.created',
      status: 'processed',
      attempts: 1,
      created: new Date(1_800_000_100_000).toISOString(),
      received_at: expect.stringMatching(ISO),
      processed_at: expect.stringMatching(ISO),
      last_error: null,
    });
    expect(res.body.items[1]).toMatchObject({ status: 'ignored', event_type: 'some.unhandled_type' });
  });

  it('pages with next_cursor: every event once, in order, including events received without created', async () => {
    const customer = randomId('cus');
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      // Two share a created second (ordered by arrival then), one has none (ordered by receipt).
      const created = i === 3 ? undefined : 1_700_000_000 + Math.min(i, 5);
      const event = stripeEvent('some.unhandled_type', { id: randomId('obj'), customer }, { created });
      expect((await t.deliver(event)).status).toBe(200);
      ids.push(event.id as string);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await list(customer, cursor ? { limit: 3, cursor } : { limit: 3 });
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(3);
      seen.push(...res.body.items.map((i: { stripe_event_id: string }) => i.stripe_event_id));
      cursor = res.body.next_cursor as string | null;
    } while (cursor);
    // Newest first: the one without created was received now (newest), then created 5 (twice), 4, 2, 1, 0.
    expect(seen).toEqual([ids[3], ids[6], ids[5], ids[4], ids[2], ids[1], ids[0]]);
  });

  it('answers 404 for an unknown customer, 200 with no items for a known one without events', async () => {
    const missing = await list('cus_never_seen');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ statusCode: 404, error: 'not_found', message: expect.any(String) });
    expect((await list(`cus_${'x'.repeat(300)}`)).status).toBe(404);
    expect((await list("cus_1' OR '1'='1")).status).toBe(404);
    await db.pool.query(`INSERT INTO customers (stripe_customer_id) VALUES ('cus_quiet')`);
    const quiet = await list('cus_quiet');
    expect(quiet.status).toBe(200);
    expect(quiet.body).toEqual({ items: [], next_cursor: null });
  });

  it('refuses bad limits and cursors with 400, and requests without a token with 401', async () => {
    for (const query of [{ limit: 0 }, { limit: 501 }, { limit: 'ten' }, { cursor: 'not-a-cursor' }] as Array<
      Record<string, string | number>
    >) {
      const res = await list('cus_quiet', query);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_request');
    }
    const forged = Buffer.from(JSON.stringify({ t: '1; DROP TABLE customers', i: '1' })).toString('base64url');
    expect((await list('cus_quiet', { cursor: forged })).status).toBe(400);
    expect((await t.http.get('/admin/customers/cus_quiet/events')).status).toBe(401);
  });
});

describe('GET /admin/customers/:customerId/subscriptions', () => {
  const { db, t } = useTestApp(FAST_QUEUE);

  const list = (customer: string) =>
    t.http.get(`/admin/customers/${encodeURIComponent(customer)}/subscriptions`).set(auth);

  it('lists every stored subscription of the customer, whatever its status, most recently changed first', async () => {
    const w = newWorld();
    const canceled = subscriptionEvent('customer.subscription.updated', w, {
      status: 'canceled',
      created: 1_800_000_000,
    });
    const active = subscriptionEvent(
      'customer.subscription.created',
      { ...w, subscription: randomId('sub') },
      { status: 'active', created: 1_800_000_500, cancelAtPeriodEnd: true },
    );
    for (const event of [canceled, active]) {
      expect((await t.deliver(event)).status).toBe(200);
      expect((await settle(t, db.pool, event.id)).status).toBe('processed');
    }
    const res = await list(w.customer);
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(2);
    expect(res.body.items[0]).toEqual({
      stripe_subscription_id: active.data.object.id,
      status: 'active',
      deleted: false,
      price_ids: expect.any(Array),
      product_ids: expect.any(Array),
      current_period_end: expect.stringMatching(ISO),
      cancel_at_period_end: true,
      canceled_at: null,
      updated_at: expect.stringMatching(ISO),
    });
    expect(res.body.items[1]).toMatchObject({
      stripe_subscription_id: w.subscription,
      status: 'canceled',
      canceled_at: new Date(1_800_000_000_000).toISOString(),
    });
    // The entitlement answer names only the access-granting one; this list has both.
    const entitlements = await t.http.get(`/v1/customers/${w.customer}/entitlements`).set(auth);
    expect(entitlements.body.subscription_ids).toEqual([active.data.object.id]);
  });

  it('answers 404 for an unknown customer, 200 with no items for a known one, 401 without a token', async () => {
    const missing = await list('cus_never_seen');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ statusCode: 404, error: 'not_found', message: expect.any(String) });
    await db.pool.query(`INSERT INTO customers (stripe_customer_id) VALUES ('cus_no_subscription')`);
    expect((await list('cus_no_subscription')).body).toEqual({ items: [] });
    expect((await t.http.get('/admin/customers/cus_no_subscription/subscriptions')).status).toBe(401);
  });
});
