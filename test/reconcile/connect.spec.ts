import type { Pool } from 'pg';
import { HandlerRegistry } from '../../src/queue/handler-registry';
import { AlertReceiver } from '../support/alert-receiver';
import { PermanentEventError } from '../../src/queue/permanent-event.error';
import { count, createTestDatabase, TestDatabase } from '../support/database';
import { FakeStripe, RecordedRequest } from '../support/fake-stripe';
import { StripeJson } from '../support/fixtures';
import { settle } from '../support/queue';
import { allHandled, dbNow, run, startPullingApp, stripeEvents, sweep } from '../support/reconcile';
import { stripeEvent } from '../support/stripe';
import { ADMIN_TOKEN, TestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

const A = 'acct_1ConnectAlpha';
const B = 'acct_1ConnectBeta';
const DAY = 24 * 3600;
const LOOKBACK = 3600;

/** A handled event of connected account `account` (null: the platform's own), created at `created`. */
function eventOf(account: string | null, created: number): StripeJson {
  const [event] = stripeEvents(1, created, 0);
  return account ? { ...event, account } : event;
}

async function stored(pool: Pool, ids: string[]): Promise<Array<Record<string, unknown>>> {
  const { rows } = await pool.query(
    `SELECT stripe_event_id, account_id, source FROM subscription_events
      WHERE stripe_event_id = ANY($1) ORDER BY stripe_event_id`,
    [ids],
  );
  return rows as Array<Record<string, unknown>>;
}

async function checkpoints(pool: Pool): Promise<Record<string, number | null>> {
  const { rows } = await pool.query<{ account_id: string; at: string | null }>(
    `SELECT account_id, extract(epoch FROM checkpoint_at)::bigint::text AS at FROM reconcile_checkpoints`,
  );
  return Object.fromEntries(rows.map((r) => [r.account_id, r.at === null ? null : Number(r.at)]));
}

/** The accounts the fake's event lists were asked for (null: the platform), from request `from` on. */
function listedAccounts(fake: FakeStripe, from = 0): Array<string | null> {
  const accounts = fake
    .requestsTo('/v1/events')
    .slice(from)
    .map((r) => r.account);
  return [...new Set(accounts)].sort((a, b) => (a ?? '').localeCompare(b ?? ''));
}

const byAccount = (account: string | null) => (r: RecordedRequest) => r.path === '/v1/events' && r.account === account;

describe('Connect: connected accounts', () => {
  let db: TestDatabase;
  let fake: FakeStripe;
  let t: TestApp;

  beforeEach(async () => {
    db = await createTestDatabase();
    fake = await FakeStripe.start();
  });
  afterEach(async () => {
    await t?.close();
    await fake.close();
    await db.drop();
  });

  const auth = { Authorization: `Bearer ${ADMIN_TOKEN}` };

  it("stores a Connect endpoint's event with its account; a malformed account is 400 invalid_payload and nothing is stored", async () => {
    t = await startPullingApp(db.url, fake);
    const now = await dbNow(db.pool);
    const connected = eventOf(A, now);
    const own = eventOf(null, now);
    expect((await t.deliver(connected)).status).toBe(200);
    expect((await t.deliver(own)).status).toBe(200);
    expect(await stored(db.pool, [connected.id as string])).toEqual([
      { stripe_event_id: connected.id, account_id: A, source: 'webhook' },
    ]);
    expect(await stored(db.pool, [own.id as string])).toEqual([
      { stripe_event_id: own.id, account_id: null, source: 'webhook' },
    ]);
    await allHandled(t, db.pool);

    const before = await count(db.pool, 'subscription_events');
    for (const account of ['acct_', 'cus_1Connect', 'acct_1 2', "acct_1'--", `acct_${'x'.repeat(300)}`, 42, {}, []]) {
      const res = await t.deliver({ ...eventOf(null, now), account });
      expect([account, res.status, res.body.error]).toEqual([account, 400, 'invalid_payload']);
    }
    expect(await count(db.pool, 'subscription_events')).toBe(before);
  });

  /**
   * A replica that has seen one event of each of A and B, and the fake holding one event of A, of B
   * and of the platform that were never delivered.
   */
  async function twoAccountsSeen() {
    t = await startPullingApp(db.url, fake, { RECONCILE_INITIAL_LOOKBACK_SECONDS: String(LOOKBACK) });
    const now = await dbNow(db.pool);
    const seenA = eventOf(A, now - 1000);
    const seenB = eventOf(B, now - 1000);
    const missedA = eventOf(A, now - 900);
    const missedB = eventOf(B, now - 800);
    const missedPlatform = eventOf(null, now - 700);
    fake.addEvents([seenA, seenB, missedA, missedB, missedPlatform]);
    await t.deliver(seenA);
    await t.deliver(seenB);
    return { now, missedA, missedB, missedPlatform };
  }

  it('sweeps the platform and each connected account seen, with Stripe-Account, and stores what each missed with its account', async () => {
    const { missedA, missedB, missedPlatform } = await twoAccountsSeen();
    await allHandled(t, db.pool);

    const id = (await sweep(t)) as string;
    expect(await run(db.pool, id)).toMatchObject({ status: 'succeeded', listed: 5, recovered: 3, error: null });
    expect(await stored(db.pool, [missedA.id as string])).toEqual([
      { stripe_event_id: missedA.id, account_id: A, source: 'reconcile' },
    ]);
    expect(await stored(db.pool, [missedB.id as string])).toEqual([
      { stripe_event_id: missedB.id, account_id: B, source: 'reconcile' },
    ]);
    expect(await stored(db.pool, [missedPlatform.id as string])).toEqual([
      { stripe_event_id: missedPlatform.id, account_id: null, source: 'reconcile' },
    ]);
    // Each list was asked for one account, and named it in Stripe-Account; the platform's named none.
    expect(listedAccounts(fake)).toEqual([null, A, B]);
    for (const request of fake.requestsTo('/v1/events')) {
      expect(request.headers['stripe-account']).toBe(request.account ?? undefined);
    }
    // Each account has its own checkpoint, all moved to the end of the range.
    const moved = await checkpoints(db.pool);
    const until = Number(fake.requestsTo('/v1/events')[0].query.created.lte);
    expect(moved).toEqual({ '': until, [A]: until, [B]: until });
    await allHandled(t, db.pool);
    expect(await count(db.pool, 'subscription_events', `status = 'processed' AND source = 'reconcile'`)).toBe(3);
    // A later delivery of a recovered event of an account is a duplicate.
    expect((await t.deliver(missedA)).body).toEqual({ received: true, duplicate: true });
  });

  it("one account's failure leaves its checkpoint and not the others'; the run sums their figures and names the account", async () => {
    const { now, missedA, missedB, missedPlatform } = await twoAccountsSeen();
    fake.fail({ failure: 500, times: Infinity, when: byAccount(A) });

    const failed = (await sweep(t)) as string;
    const row = await run(db.pool, failed);
    expect(row).toMatchObject({ status: 'failed', listed: 3, recovered: 2 }); // B's two and the platform's one
    expect(row.error).toMatch(new RegExp(`^${A}: StripeAPIError \\(500`));
    expect(row.error).not.toContain(B);
    const after = await checkpoints(db.pool);
    expect(after[A]).toBeNull();
    expect(after[B]).toEqual(expect.any(Number));
    expect(after['']).toEqual(expect.any(Number));
    expect(await count(db.pool, 'subscription_events', 'stripe_event_id = $1', [missedA.id])).toBe(0);
    expect(await stored(db.pool, [missedB.id as string, missedPlatform.id as string])).toHaveLength(2);

    fake.heal();
    const from = fake.requests.length;
    const next = (await sweep(t)) as string;
    expect(await run(db.pool, next)).toMatchObject({ status: 'succeeded', recovered: 1, error: null });
    expect(await stored(db.pool, [missedA.id as string])).toEqual([
      { stripe_event_id: missedA.id, account_id: A, source: 'reconcile' },
    ]);
    // A lists again from where it never got past (its first sweep's range); B from its own checkpoint.
    const [retriedA] = fake.requests.slice(from).filter(byAccount(A));
    const [nextB] = fake.requests.slice(from).filter(byAccount(B));
    expect(Number(retriedA.query.created.gte)).toBeLessThanOrEqual(now - LOOKBACK + 5);
    expect(Number(nextB.query.created.gte)).toBe((after[B] as number) - 60);
    expect((await checkpoints(db.pool))[A]).toEqual(expect.any(Number));
  });

  it("a connected account's event listed without its account is stored with it; one of another account fails the account's range", async () => {
    t = await startPullingApp(db.url, fake);
    const now = await dbNow(db.pool);
    await t.deliver(eventOf(A, now - 1000));
    const bare = eventOf(null, now - 900);
    fake.addEvents([bare], A);
    const first = (await sweep(t)) as string;
    expect(await run(db.pool, first)).toMatchObject({ status: 'succeeded', recovered: 1 });
    const { rows } = await db.pool.query(
      `SELECT account_id, payload->>'account' AS account FROM subscription_events
      WHERE stripe_event_id = $1`,
      [bare.id],
    );
    expect(rows).toEqual([{ account_id: A, account: A }]);

    const stray = eventOf(B, now - 150); // within the overlap before the checkpoint the first sweep left
    fake.addEvents([stray], A);
    const second = (await sweep(t)) as string;
    const row = await run(db.pool, second);
    expect(row).toMatchObject({ status: 'failed' });
    expect(row.error).toContain(
      `${A}: MalformedStripeResponseError: GET /v1/events for ${A} listed ${String(stray.id)}, an event of ${B}`,
    );
    expect(await count(db.pool, 'subscription_events', 'stripe_event_id = $1', [stray.id])).toBe(0);
  });

  it("alerts once per change of a connected account's sweeps, naming it; /health/webhooks reports the platform's", async () => {
    const receiver = await AlertReceiver.start();
    try {
      t = await startPullingApp(db.url, fake, { ALERT_WEBHOOK_URL: receiver.url });
      const now = await dbNow(db.pool);
      await t.deliver(eventOf(A, now - 1000));
      fake.fail({ failure: 403, times: Infinity, when: byAccount(A) });
      await sweep(t);
      await sweep(t);
      await waitUntil(() => receiver.messages.length >= 1, 5_000, 'an alert');
      expect(receiver.messages.map((m) => m.text)).toEqual([
        expect.stringContaining(`Stripe refused to list the events of connected account ${A}`),
      ]);
      const health = await t.http.get('/health/webhooks');
      expect(health.body.info.webhooks).toMatchObject({ reconcile: 'ok', last_reconcile_at: expect.any(String) });

      fake.heal();
      await sweep(t);
      await waitUntil(() => receiver.messages.length >= 2, 5_000, 'the recovery alert');
      expect(receiver.messages[1].text).toContain(`sweeps of connected account ${A} succeed again`);
    } finally {
      await receiver.close();
    }
  });

  it("a key refused for the platform's own list ends the run there: the accounts are not asked for, nor alerted about", async () => {
    const receiver = await AlertReceiver.start();
    try {
      t = await startPullingApp(db.url, fake, { ALERT_WEBHOOK_URL: receiver.url });
      const now = await dbNow(db.pool);
      await t.deliver(eventOf(A, now - 1000));
      await t.deliver(eventOf(B, now - 1000));
      fake.fail({ failure: 401, times: Infinity });
      const id = (await sweep(t)) as string;
      expect((await run(db.pool, id)).error).toMatch(/^Stripe refused STRIPE_API_KEY \(401\)/);
      expect(listedAccounts(fake)).toEqual([null]);
      await waitUntil(() => receiver.messages.length >= 1, 5_000, 'an alert');
      expect(receiver.messages.map((m) => m.text)).toEqual([expect.stringContaining('Stripe refused STRIPE_API_KEY')]);
      expect(await checkpoints(db.pool)).toEqual({ '': null });
    } finally {
      await receiver.close();
    }
  });

  it('a deauthorized account is no longer swept; an event it sends later resumes its sweeps, an older one does not', async () => {
    t = await startPullingApp(db.url, fake);
    const now = await dbNow(db.pool);
    await t.deliver(eventOf(A, now - 1000));
    await t.deliver(eventOf(B, now - 1000));
    const deauthorized = stripeEvent(
      'account.application.deauthorized',
      { id: 'ca_connect_app', object: 'application', name: 'Platform' },
      { account: A, created: now - 500 },
    );
    expect((await t.deliver(deauthorized)).status).toBe(200);
    expect(await settle(t, db.pool, deauthorized.id as string)).toMatchObject({ status: 'processed' });

    // One without an account (not from a Connect endpoint) has nothing to stop.
    const platformOwn = stripeEvent('account.application.deauthorized', { id: 'ca_other', object: 'application' });
    await t.deliver(platformOwn);
    expect(await settle(t, db.pool, platformOwn.id as string)).toMatchObject({ status: 'processed' });
    const { rows } = await db.pool.query<{ account_id: string; deauthorized_at: Date | null }>(
      `SELECT account_id, deauthorized_at FROM reconcile_checkpoints`,
    );
    expect(rows).toEqual([{ account_id: A, deauthorized_at: new Date((now - 500) * 1000) }]);

    await sweep(t);
    expect(listedAccounts(fake)).toEqual([null, B]);

    // Sent before the deauthorization, delivered after it: the account stays deauthorized.
    await t.deliver(eventOf(A, now - 600));
    let from = fake.requests.length;
    await sweep(t);
    expect(listedAccounts(fake, from)).toEqual([null, B]);

    // Authorized again: its next event is created after the deauthorization.
    const authorized = stripeEvent(
      'account.application.authorized',
      { id: 'ca_connect_app', object: 'application', name: 'Platform' },
      { account: A, created: now - 100 },
    );
    await t.deliver(authorized);
    from = fake.requests.length;
    await sweep(t);
    expect(listedAccounts(fake, from)).toEqual([null, A, B]);
  });

  it('covers only accounts with an event received in the last 30 days', async () => {
    t = await startPullingApp(db.url, fake);
    const now = await dbNow(db.pool);
    const old = eventOf(A, now - 1000);
    await t.deliver(old);
    await t.deliver(eventOf(B, now - 1000));
    await db.pool.query(
      `UPDATE subscription_events SET received_at = now() - interval '31 days' WHERE account_id = $1`,
      [A],
    );
    await sweep(t);
    expect(listedAccounts(fake)).toEqual([null, B]);
  });

  it('dry runs and admin runs over since/until cover the connected accounts too', async () => {
    t = await startPullingApp(db.url, fake);
    const now = await dbNow(db.pool);
    const seen = eventOf(A, now - 2 * DAY);
    const missed = eventOf(A, now - DAY);
    fake.addEvents([seen, missed]);
    await t.deliver(seen);
    const finished = (runId: string) =>
      waitUntil(
        async () => {
          const res = await t.http.get(`/admin/reconcile/runs/${runId}`).set(auth);
          return res.body.status === 'running' ? undefined : (res.body as Record<string, unknown>);
        },
        20_000,
        `run ${runId} finished`,
      );
    const range = { since: new Date((now - 3 * DAY) * 1000).toISOString(), until: new Date(now * 1000).toISOString() };

    const dry = await t.http
      .post('/admin/reconcile')
      .set(auth)
      .send({ ...range, dry_run: true });
    expect(dry.status).toBe(202);
    expect(await finished(dry.body.run_id as string)).toMatchObject({ status: 'succeeded', listed: 2, recovered: 1 });
    expect(await count(db.pool, 'subscription_events', 'stripe_event_id = $1', [missed.id])).toBe(0);
    const dryRequest = fake.requests.find(byAccount(A)) as RecordedRequest;
    expect(Number(dryRequest.query.created.gte)).toBe(now - 3 * DAY);

    const real = await t.http.post('/admin/reconcile').set(auth).send(range);
    expect(await finished(real.body.run_id as string)).toMatchObject({ status: 'succeeded', recovered: 1 });
    expect(await stored(db.pool, [missed.id as string])).toEqual([
      { stripe_event_id: missed.id, account_id: A, source: 'reconcile' },
    ]);
  });

  it('GET /admin/events and GET /admin/dead-letters filter by ?account=, page, and refuse a malformed account (400)', async () => {
    t = await startPullingApp(db.url, fake);
    t.app.get(HandlerRegistry).register('test.connect_fails', () => Promise.reject(new PermanentEventError('bug')));
    const now = await dbNow(db.pool);
    const failing = (account: string | null) =>
      stripeEvent('test.connect_fails', { id: 'obj_1' }, account ? { account } : {});
    const ofA = [eventOf(A, now - 30), eventOf(A, now - 20), failing(A)];
    const others = [eventOf(B, now - 10), failing(B), failing(null), eventOf(null, now)];
    for (const event of [...ofA, ...others]) {
      expect((await t.deliver(event)).status).toBe(200);
    }
    await allHandled(t, db.pool);

    const get = (path: string) => t.http.get(path).set(auth);
    const page1 = await get(`/admin/events?account=${A}&limit=2`);
    expect(page1.status).toBe(200);
    const page2 = await get(`/admin/events?account=${A}&limit=2&cursor=${page1.body.next_cursor as string}`);
    expect(page2.body.next_cursor).toBeNull();
    const items = [...page1.body.items, ...page2.body.items] as Array<Record<string, unknown>>;
    // Newest received first (they were delivered in order), each once, all of A.
    expect(items.map((i) => i.stripe_event_id)).toEqual(ofA.map((e) => e.id).reverse());
    expect(items[0]).toEqual({
      stripe_event_id: ofA[2].id,
      event_type: 'test.connect_fails',
      status: 'dead',
      attempts: 1,
      last_error: expect.stringContaining('bug'),
      account_id: A,
      source: 'webhook',
      received_at: expect.stringMatching(/Z$/),
      processed_at: null,
    });
    const all = await get('/admin/events?limit=500');
    expect(all.body.items.map((i: { stripe_event_id: string }) => i.stripe_event_id)).toEqual(
      [...ofA, ...others].map((e) => e.id).reverse(),
    );

    const deadOfA = await get(`/admin/dead-letters?account=${A}`);
    expect(deadOfA.status).toBe(200);
    expect(deadOfA.body.items.map((i: { stripe_event_id: string }) => i.stripe_event_id)).toEqual([ofA[2].id]);
    const deadOfB = await get(`/admin/dead-letters?account=${B}&event_type=test.connect_fails`);
    expect(deadOfB.body.items.map((i: { stripe_event_id: string }) => i.stripe_event_id)).toEqual([others[1].id]);
    expect((await get('/admin/dead-letters')).body.items).toHaveLength(3);
    expect((await get('/admin/dead-letters?account=acct_1Nobody')).body).toEqual({ items: [], next_cursor: null });

    for (const route of ['/admin/events', '/admin/dead-letters']) {
      for (const bad of ['cus_1', 'acct_', 'acct_1%27%20OR%20%271%27%3D%271', `acct_1&account=${B}`]) {
        const res = await get(`${route}?account=${bad}`);
        expect([route, bad, res.status, res.body]).toEqual([
          route,
          bad,
          400,
          { statusCode: 400, error: 'invalid_request', message: expect.stringContaining('account') },
        ]);
      }
    }
  });
});
