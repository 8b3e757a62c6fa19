import type { Pool } from 'pg';
import { Reconciler } from '../../src/reconcile/reconciler.service';
import { AlertReceiver } from '../support/alert-receiver';
import { entitlementsOf } from '../support/billing';
import { count, createTestDatabase, TestDatabase } from '../support/database';
import { FakeStripe } from '../support/fake-stripe';
import { newWorld, StripeJson, subscriptionEvent, World } from '../support/fixtures';
import { eventState, FAST_QUEUE, settle } from '../support/queue';
import { allHandled, dbNow, startPullingApp, stripeEvents, sweep } from '../support/reconcile';
import { randomId, thinCopyOf, thinEvent } from '../support/stripe';
import { ADMIN_TOKEN, startTestApp, TestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

const DAY = 24 * 3600;
const GENERATION_FAILURE = 'v2.core.health.event_generation_failure.resolved';
/** Long enough for stripe-node's own retries of a 5xx and for a fetch held by the fake. */
const QUEUE = { ...FAST_QUEUE, HANDLER_TIMEOUT_MS: '15000', RETRY_MAX_ATTEMPTS: '10' };

async function storedEvent(pool: Pool, id: string): Promise<Record<string, unknown> | undefined> {
  const { rows } = await pool.query(
    `SELECT event_type, status, attempts, source, account_id, last_error FROM subscription_events
      WHERE stripe_event_id = $1`,
    [id],
  );
  return rows[0] as Record<string, unknown> | undefined;
}

/** The subscription's classic snapshot event, created `ageSeconds` ago with `status`. */
function snapshotOf(world: World, now: number, status: string, ageSeconds: number): StripeJson {
  return subscriptionEvent('customer.subscription.updated', world, { status, created: now - ageSeconds });
}

describe('thin events handled through the queue', () => {
  let db: TestDatabase;
  let fake: FakeStripe;
  const apps: TestApp[] = [];

  beforeEach(async () => {
    db = await createTestDatabase();
    fake = await FakeStripe.start();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
    await fake.close();
    await db.drop();
  });

  async function pullingApp(env: Record<string, string> = {}): Promise<TestApp> {
    const app = await startPullingApp(db.url, fake, { ...QUEUE, ...env });
    apps.push(app);
    return app;
  }

  it('a thin copy whose snapshot no sweep reaches: fetched with Stripe-Context, stored once (source thin), applied; copies are duplicates', async () => {
    const t = await pullingApp();
    const now = await dbNow(db.pool);
    const world = newWorld();
    const created = subscriptionEvent('customer.subscription.created', world, {
      status: 'incomplete',
      created: now - 6 * DAY,
    });
    expect((await t.deliver(created)).status).toBe(200);
    await allHandled(t, db.pool);
    const path = `/v1/customers/${world.customer}/entitlements`;
    expect((await entitlementsOf(t, path)).body).toMatchObject({ active: false, status: 'incomplete' });

    // Five days old: before the first sweep's three days, so only the thin event can bring it.
    // A connected account's event: held by that account at Stripe, fetched with its context.
    const snapshot: StripeJson = { ...snapshotOf(world, now, 'active', 5 * DAY), account: 'acct_1ThinContext' };
    fake.addEvents([snapshot]);
    expect(await sweep(t)).not.toBeNull();
    expect(await count(db.pool, 'subscription_events', 'stripe_event_id = $1', [snapshot.id])).toBe(0);

    const thin = thinCopyOf(snapshot, { context: 'acct_1ThinContext' });
    expect((await t.deliverThin(thin)).body).toEqual({ received: true });
    expect(await settle(t, db.pool, thin.id as string)).toEqual({ status: 'processed', attempts: 1, last_error: null });
    await allHandled(t, db.pool);

    const fetches = fake.requestsTo(`/v1/events/${snapshot.id as string}`);
    expect(fetches.map((r) => [r.method, r.stripeContext])).toEqual([['GET', 'acct_1ThinContext']]);
    expect(await storedEvent(db.pool, snapshot.id as string)).toEqual({
      event_type: 'customer.subscription.updated',
      status: 'processed',
      attempts: 1,
      source: 'thin',
      account_id: 'acct_1ThinContext',
      last_error: null,
    });
    expect((await entitlementsOf(t, path)).body).toMatchObject({ active: true, status: 'active' });

    expect((await t.deliverThin(thin)).body).toEqual({ received: true, duplicate: true });
    expect((await t.deliver(snapshot)).body).toEqual({ received: true, duplicate: true });
    await allHandled(t, db.pool);
    expect(await count(db.pool, 'subscription_events', 'stripe_event_id = ANY($1)', [[snapshot.id, thin.id]])).toBe(2);
    expect(fake.requestsTo(`/v1/events/${snapshot.id as string}`)).toHaveLength(1);
    // Sweeps list classic types only: thin types are never asked of the Events API.
    const listed = fake.requestsTo('/v1/events').filter((r) => r.path === '/v1/events');
    expect(listed.length).toBeGreaterThan(0);
    for (const request of listed) {
      expect((request.query.types as string[]).filter((type) => /^v\d\./.test(type))).toEqual([]);
      expect(request.query.types).toContain('customer.subscription.updated');
    }
  });

  it('a snapshot that is already stored is not stored again: the thin event is processed, the event untouched', async () => {
    const t = await pullingApp();
    const now = await dbNow(db.pool);
    const snapshot = snapshotOf(newWorld(), now, 'active', 60);
    fake.addEvents([snapshot]);
    expect((await t.deliver(snapshot)).status).toBe(200);
    await allHandled(t, db.pool);
    const thin = thinCopyOf(snapshot);
    expect((await t.deliverThin(thin)).status).toBe(200);
    expect((await settle(t, db.pool, thin.id as string)).status).toBe('processed');
    expect(await storedEvent(db.pool, snapshot.id as string)).toMatchObject({ source: 'webhook', attempts: 1 });
  });

  it('the same thin event on two replicas at once, and two thin events naming one snapshot: one fetch stored, applied once', async () => {
    const [a, b] = [await pullingApp(), await pullingApp()];
    const now = await dbNow(db.pool);
    const world = newWorld();
    const snapshot = snapshotOf(world, now, 'active', 2 * DAY);
    fake.addEvents([snapshot]);
    const thin = thinCopyOf(snapshot);
    const answers = await Promise.all([a.deliverThin(thin), b.deliverThin(thin)]);
    expect(answers.map((r) => r.body).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)))).toEqual([
      { received: true, duplicate: true },
      { received: true },
    ]);
    await Promise.all([allHandled(a, db.pool), allHandled(b, db.pool)]);
    expect(await storedEvent(db.pool, snapshot.id as string)).toMatchObject({ status: 'processed', attempts: 1 });

    // Two destinations' thin events for one snapshot, each run by its own replica, both fetches
    // answered together: both insert it, one stores it.
    const second = snapshotOf(world, now, 'past_due', DAY);
    fake.addEvents([second]);
    const path = `/v1/events/${second.id as string}`;
    const held = fake.hold((r) => r.path === path);
    const copies = [thinCopyOf(second), thinCopyOf(second)];
    expect((await a.deliverThin(copies[0])).status).toBe(200);
    expect((await b.deliverThin(copies[1])).status).toBe(200);
    await waitUntil(() => fake.requestsTo(path).length === 2, 10_000, 'both replicas fetching the snapshot');
    held.release();
    await Promise.all([allHandled(a, db.pool), allHandled(b, db.pool)]);
    for (const copy of copies) {
      expect(await storedEvent(db.pool, copy.id as string)).toMatchObject({ status: 'processed', attempts: 1 });
    }
    expect(await storedEvent(db.pool, second.id as string)).toMatchObject({
      status: 'processed',
      attempts: 1,
      source: 'thin',
    });
    expect(await count(db.pool, 'subscription_events', 'stripe_event_id = $1', [second.id])).toBe(1);
    expect((await entitlementsOf(a, `/v1/customers/${world.customer}/entitlements`)).body).toMatchObject({
      status: 'past_due',
    });
  });

  it('a snapshot Stripe does not know (404): dead-lettered at once with that error', async () => {
    const t = await pullingApp();
    const thin = thinEvent('v1.customer.subscription.updated', { snapshot_event: 'evt_1NeverExisted' });
    expect((await t.deliverThin(thin)).status).toBe(200);
    const state = await settle(t, db.pool, thin.id as string);
    expect(state).toEqual({
      status: 'dead',
      attempts: 1,
      last_error:
        "PermanentEventError: snapshot event evt_1NeverExisted is unknown to Stripe: StripeInvalidRequestError (404, resource_missing): No such event: 'evt_1NeverExisted'",
    });
    const { rows } = await db.pool.query('SELECT error FROM webhook_dead_letter_queue WHERE stripe_event_id = $1', [
      thin.id,
    ]);
    expect(rows).toEqual([{ error: state.last_error }]);
    expect(fake.requestsTo('/v1/events/evt_1NeverExisted')).toHaveLength(1);
  });

  it('an API outage (500 past stripe-node retries): the attempt fails and is retried, then processed once Stripe answers', async () => {
    const t = await pullingApp();
    const now = await dbNow(db.pool);
    const snapshot = snapshotOf(newWorld(), now, 'active', 3600);
    fake.addEvents([snapshot]);
    const path = `/v1/events/${snapshot.id as string}`;
    fake.fail({ failure: 500, times: 4, when: (r) => r.path === path }); // the request and its 3 retries
    const thin = thinCopyOf(snapshot);
    expect((await t.deliverThin(thin)).status).toBe(200);
    const failed = await waitUntil(
      async () => {
        const s = await eventState(db.pool, thin.id as string);
        return s && s.attempts === 1 ? s : undefined;
      },
      20_000,
      'the first attempt failed',
    );
    expect(failed).toEqual({
      status: 'pending',
      attempts: 1,
      last_error: `Error: fetching snapshot event ${snapshot.id as string} failed: StripeAPIError (500, internal): An unknown error occurred.`,
    });
    expect(await settle(t, db.pool, thin.id as string)).toEqual({ status: 'processed', attempts: 2, last_error: null });
    expect(fake.requestsTo(path)).toHaveLength(5);
    await allHandled(t, db.pool);
    expect(await storedEvent(db.pool, snapshot.id as string)).toMatchObject({ status: 'processed', source: 'thin' });
  });

  it('without STRIPE_API_KEY: every attempt fails with that error, then the dead letter is replayed once a key is set', async () => {
    const now = await dbNow(db.pool);
    const snapshot = snapshotOf(newWorld(), now, 'active', 3600);
    fake.addEvents([snapshot]);
    const thin = thinCopyOf(snapshot);
    const keyless = await startTestApp(db.url, { ...FAST_QUEUE });
    apps.push(keyless);
    expect((await keyless.deliverThin(thin)).status).toBe(200);
    expect(await settle(keyless, db.pool, thin.id as string)).toEqual({
      status: 'dead',
      attempts: 4,
      last_error: 'Error: STRIPE_API_KEY is not set',
    });
    expect(fake.requests).toHaveLength(0);
    await keyless.close();
    apps.splice(0);

    const t = await pullingApp();
    const { rows } = await db.pool.query<{ id: string }>(
      'SELECT id FROM webhook_dead_letter_queue WHERE stripe_event_id = $1',
      [thin.id],
    );
    const replay = await t.http
      .post(`/admin/dead-letters/${rows[0].id}/replay`)
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`);
    expect(replay.status).toBe(202);
    expect(await settle(t, db.pool, thin.id as string)).toEqual({ status: 'processed', attempts: 1, last_error: null });
    await allHandled(t, db.pool);
    expect(await storedEvent(db.pool, snapshot.id as string)).toMatchObject({ status: 'processed', source: 'thin' });
  });

  describe('v2.core.health.event_generation_failure.resolved', () => {
    let alerts: AlertReceiver;
    beforeEach(async () => {
      alerts = await AlertReceiver.start();
    });
    afterEach(() => alerts.close());

    function generationFailure(resolvedAt: number): Record<string, unknown> {
      return thinEvent(GENERATION_FAILURE, {
        data: {
          alert_id: 'halert_test_1',
          grouping_key: '_grouping_test_1',
          impact: { event_type: 'customer.subscription.updated', related_object_id: 'sub_1Lost', livemode: false },
          resolved_at: new Date(resolvedAt * 1000).toISOString(),
          summary: 'We have failed to create a notification for your Stripe account.',
        },
      });
    }

    it('raises an alert and starts a run over the window it names, which recovers what was missed there', async () => {
      const t = await pullingApp({ ALERT_WEBHOOK_URL: alerts.url });
      const now = await dbNow(db.pool);
      const resolvedAt = now - 10 * DAY;
      const [missed] = stripeEvents(1, resolvedAt - 3600, 0);
      fake.addEvents([missed]);
      const event = generationFailure(resolvedAt);
      expect((await t.deliverThin(event)).status).toBe(200);
      expect((await settle(t, db.pool, event.id as string)).status).toBe('processed');
      await t.app.get(Reconciler).whenIdle(); // the run it started, to its end
      await allHandled(t, db.pool);

      const { rows } = await db.pool.query(
        `SELECT trigger, actor, dry_run, status, recovered,
                extract(epoch FROM since)::bigint AS since, extract(epoch FROM until)::bigint AS until
           FROM reconcile_runs`,
      );
      expect(rows).toEqual([
        {
          trigger: 'admin',
          actor: `stripe:${event.id as string}`,
          dry_run: false,
          status: 'succeeded',
          recovered: 1,
          since: String(resolvedAt - 3 * DAY),
          until: String(resolvedAt),
        },
      ]);
      expect(await storedEvent(db.pool, missed.id as string)).toMatchObject({ source: 'reconcile' });
      await waitUntil(() => alerts.messages.some((m) => m.text.includes('failed to generate')), 5_000, 'the alert');
      const alert = alerts.messages.find((m) => m.text.includes('failed to generate'))?.text ?? '';
      expect(alert).toContain('a customer.subscription.updated event for sub_1Lost');
      expect(alert).toContain(new Date(resolvedAt * 1000).toISOString());
      expect(alert).toContain(`${new Date((resolvedAt - 3 * DAY) * 1000).toISOString()} to `);

      // A dry run of reprocessing it starts no run (its transaction is rolled back, nothing may outlive it).
      const dryRun = await t.http
        .post(`/admin/events/${event.id as string}/reprocess?dry_run=true`)
        .set('Authorization', `Bearer ${ADMIN_TOKEN}`);
      expect(dryRun.body).toMatchObject({ outcome: 'processed', changes: [] });
      expect(await count(db.pool, 'reconcile_runs')).toBe(1);
    });

    it('while another sweep runs, the attempt fails and its retry starts the run', async () => {
      const t = await pullingApp({ ALERT_WEBHOOK_URL: alerts.url });
      const now = await dbNow(db.pool);
      const held = fake.hold((r) => r.path === '/v1/events');
      const running = sweep(t);
      await waitUntil(() => fake.requestsTo('/v1/events').length === 1, 10_000, 'a sweep listing');
      const event = generationFailure(now - 60);
      expect((await t.deliverThin(event)).status).toBe(200);
      const failed = await waitUntil(
        async () => {
          const s = await eventState(db.pool, event.id as string);
          return s && s.attempts >= 1 ? s : undefined;
        },
        10_000,
        'the first attempt failed',
      );
      expect(failed.last_error).toBe(
        'Error: a reconciliation sweep is already running; retried so that this window is swept too',
      );
      held.release();
      await running;
      expect((await settle(t, db.pool, event.id as string)).status).toBe('processed');
      const { rows } = await db.pool.query(
        `SELECT extract(epoch FROM until)::bigint AS until FROM reconcile_runs WHERE actor = $1`,
        [`stripe:${event.id as string}`],
      );
      expect(rows).toEqual([{ until: String(now - 60) }]);
    });

    it("falls back to the thin event's created when it carries no data; without a key: alert only", async () => {
      const keyless = await startTestApp(db.url, { ...FAST_QUEUE, ALERT_WEBHOOK_URL: alerts.url });
      apps.push(keyless);
      const event = thinEvent(GENERATION_FAILURE, { id: randomId('evt_test'), created: '2026-11-30T12:00:00.000Z' });
      expect((await keyless.deliverThin(event)).status).toBe(200);
      expect((await settle(keyless, db.pool, event.id as string)).status).toBe('processed');
      await waitUntil(() => alerts.messages.length > 0, 5_000, 'the alert');
      expect(alerts.messages[0].text).toContain('resolved at 2026-11-30T12:00:00.000Z');
      expect(alerts.messages[0].text).toContain('No reconciliation run was started: STRIPE_API_KEY is not set.');
      expect(await count(db.pool, 'reconcile_runs')).toBe(0);
    });
  });
});
