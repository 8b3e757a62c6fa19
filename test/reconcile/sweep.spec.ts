import { MetricsService } from '../../src/metrics/metrics.service';
import { Reconciler } from '../../src/reconcile/reconciler.service';
import { count, createTestDatabase, TestDatabase } from '../support/database';
import { busiestWindow, FakeStripe, Failure } from '../support/fake-stripe';
import { StripeJson } from '../support/fixtures';
import { allHandled, checkpoint, dbNow, run, startPullingApp, stripeEvents, sweep } from '../support/reconcile';
import { TestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

const DAY = 24 * 3600;

/** The sum of a counter's samples in Prometheus text. */
function total(metrics: string, name: string): number {
  return metrics
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

async function storedRows(db: TestDatabase, ids: string[]): Promise<unknown[]> {
  const { rows } = await db.pool.query(
    `SELECT stripe_event_id, status, attempts, source, payload, received_at, processed_at
       FROM subscription_events WHERE stripe_event_id = ANY($1) ORDER BY stripe_event_id`,
    [ids],
  );
  return rows;
}

describe('the reconciliation sweep', () => {
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

  it('recovers 400 of 500 events over two days that were never delivered; the 100 delivered stay as they were', async () => {
    t = await startPullingApp(db.url, fake);
    const now = await dbNow(db.pool);
    const events = stripeEvents(500, now - 300, 2 * DAY);
    fake.addEvents(events);
    const delivered = events.filter((_, i) => i % 5 === 0);
    for (const event of delivered) {
      expect((await t.deliver(event)).status).toBe(200);
    }
    await allHandled(t, db.pool);

    const first = (await sweep(t)) as string;
    await allHandled(t, db.pool);
    expect(await run(db.pool, first)).toMatchObject({ status: 'succeeded', listed: 500, recovered: 400, error: null });
    const second = (await sweep(t)) as string;
    expect(await run(db.pool, second)).toMatchObject({ status: 'succeeded', recovered: 0 });
    await allHandled(t, db.pool);

    const ids = events.map((e) => e.id as string);
    const { rows } = await db.pool.query<{ source: string; status: string; attempts: number; n: number }>(
      `SELECT source, status, attempts, count(*)::int AS n FROM subscription_events
        WHERE stripe_event_id = ANY($1) GROUP BY 1, 2, 3 ORDER BY 1`,
      [ids],
    );
    // Every one processed once: the delivered ones keep their source and their single attempt.
    expect(rows).toEqual([
      { source: 'reconcile', status: 'processed', attempts: 1, n: 400 },
      { source: 'webhook', status: 'processed', attempts: 1, n: 100 },
    ]);
    expect(
      await count(db.pool, 'subscription_events', `source = 'webhook' AND stripe_event_id = ANY($1)`, [
        delivered.map((e) => e.id),
      ]),
    ).toBe(100);
    // Handled like delivered ones: their effects are there.
    const customers = events.filter((e) => e.type === 'customer.created').map((e) => e.data.object.id as string);
    expect(await count(db.pool, 'customers', 'stripe_customer_id = ANY($1)', [customers])).toBe(customers.length);

    const { body: metrics } = await t.app.get(MetricsService).render();
    expect(total(metrics, 'stripe_webhook_events_recovered_total')).toBe(400);
    expect(total(metrics, 'stripe_webhook_reconcile_runs_total')).toBe(2);

    const recovered = events.find((_, i) => i % 5 === 1) as StripeJson;
    const late = await t.deliver(recovered);
    expect(late.status).toBe(200);
    expect(late.body).toEqual({ received: true, duplicate: true });
  });

  it('sweeps from the checkpoint less 60 s to now less the grace period, for the handled types, and moves the checkpoint', async () => {
    t = await startPullingApp(db.url, fake, {
      RECONCILE_GRACE_SECONDS: '120',
      RECONCILE_INITIAL_LOOKBACK_SECONDS: '3600',
    });
    const now = await dbNow(db.pool);
    const [inside, tooOld, tooNew] = stripeEvents(3, now, 0);
    inside.created = now - 1800;
    tooOld.created = now - 3600 - 61;
    tooNew.created = now - 60; // within the grace period: normal delivery comes first
    fake.addEvents([inside, tooOld, tooNew]);
    const first = (await sweep(t)) as string;
    expect(await run(db.pool, first)).toMatchObject({ status: 'succeeded', listed: 1, recovered: 1 });
    const [request] = fake.requestsTo('/v1/events');
    expect(Number(request.query.created.gte)).toBeGreaterThanOrEqual(now - 3600);
    expect(Number(request.query.created.gte)).toBeLessThanOrEqual(now - 3600 + 5);
    expect(Number(request.query.created.lte)).toBeGreaterThanOrEqual(now - 120);
    expect(request.query.limit).toBe('100');
    expect(request.query.types).toEqual(
      expect.arrayContaining(['customer.subscription.updated', 'entitlements.active_entitlement_summary.updated']),
    );
    expect(request.query.types).not.toContain('charge.succeeded');
    const moved = (await checkpoint(db.pool)) as Date;
    expect(moved.getTime() / 1000).toBe(Number(request.query.created.lte));

    await sweep(t);
    const [, next] = fake.requestsTo('/v1/events');
    expect(Number(next.query.created.gte)).toBe(moved.getTime() / 1000 - 60);
  });

  it('does not move the checkpoint when the last page fails; the next sweep recovers what that page held', async () => {
    t = await startPullingApp(db.url, fake);
    const now = await dbNow(db.pool);
    const events = stripeEvents(250, now - 300, DAY);
    fake.addEvents(events);
    fake.fail({ failure: 500, times: Infinity, skip: 2, when: (r) => r.path === '/v1/events' });
    const failed = (await sweep(t)) as string;
    expect(await run(db.pool, failed)).toMatchObject({ status: 'failed', listed: 200, recovered: 200 });
    expect((await run(db.pool, failed)).error).toMatch(/StripeAPIError \(500/);
    expect(await checkpoint(db.pool)).toBeNull();
    const lastPage = events.slice(200).map((e) => e.id as string);
    expect(await count(db.pool, 'subscription_events', 'stripe_event_id = ANY($1)', [lastPage])).toBe(0);

    fake.heal();
    const next = (await sweep(t)) as string;
    expect(await run(db.pool, next)).toMatchObject({ status: 'succeeded', listed: 250, recovered: 50 });
    expect(await count(db.pool, 'subscription_events', 'stripe_event_id = ANY($1)', [lastPage])).toBe(50);
    expect(await checkpoint(db.pool)).not.toBeNull();
    await allHandled(t, db.pool);
    expect(await count(db.pool, 'subscription_events', `status = 'processed'`)).toBe(250);
  });

  it.each<[string, Failure]>([
    ['a wrong key (401)', 401],
    ['a 5xx storm', 503],
    ['a 429 storm', 429],
    ['a malformed page', 'malformed'],
    ['a page cut short', 'truncated'],
    ['a network drop mid-range', 'drop'],
  ])(
    '%s: the sweep fails, nothing stored changes, webhooks are still received, the next sweep completes the range',
    async (_what, failure) => {
      t = await startPullingApp(db.url, fake);
      const now = await dbNow(db.pool);
      const events = stripeEvents(150, now - 300, DAY);
      fake.addEvents(events);
      const delivered = events.slice(0, 150).filter((_, i) => i % 15 === 0);
      for (const event of delivered) {
        await t.deliver(event);
      }
      await allHandled(t, db.pool);
      const before = await storedRows(
        db,
        delivered.map((e) => e.id as string),
      );
      fake.fail({ failure, times: Infinity, skip: 1, when: (r) => r.path === '/v1/events' });

      const failed = (await sweep(t)) as string;
      expect(await run(db.pool, failed)).toMatchObject({ status: 'failed' });
      expect(await checkpoint(db.pool)).toBeNull();
      expect(
        await storedRows(
          db,
          delivered.map((e) => e.id as string),
        ),
      ).toEqual(before);
      const [fresh] = stripeEvents(1, now, 0);
      expect((await t.deliver(fresh)).status).toBe(200);

      fake.heal();
      const next = (await sweep(t)) as string;
      expect(await run(db.pool, next)).toMatchObject({ status: 'succeeded', listed: 150 });
      expect(await checkpoint(db.pool)).not.toBeNull();
      await allHandled(t, db.pool);
      expect(
        await count(db.pool, 'subscription_events', `status = 'processed' AND stripe_event_id = ANY($1)`, [
          events.map((e) => e.id),
        ]),
      ).toBe(150);
      expect(
        await storedRows(
          db,
          delivered.map((e) => e.id as string),
        ),
      ).toEqual(before);
    },
  );

  it('never sends more than STRIPE_API_MAX_RPS requests in one second (+1)', async () => {
    t = await startPullingApp(db.url, fake, { STRIPE_API_MAX_RPS: '5' });
    const now = await dbNow(db.pool);
    fake.addEvents(stripeEvents(1_100, now - 300, DAY)); // 11 pages
    fake.fail({ failure: 500, times: 2, skip: 3 }); // retries count against the budget too
    const id = (await sweep(t)) as string;
    expect(await run(db.pool, id)).toMatchObject({ status: 'succeeded', listed: 1_100 });
    const times = fake.requests.map((r) => r.time);
    expect(times).toHaveLength(13);
    expect(busiestWindow(times)).toBeLessThanOrEqual(5 + 1);
  });

  it('two replicas on the same schedule list each page once per sweep', async () => {
    t = await startPullingApp(db.url, fake);
    const other = await startPullingApp(db.url, fake);
    try {
      const now = await dbNow(db.pool);
      fake.addEvents(stripeEvents(350, now - 300, DAY)); // 4 pages
      for (const tick of [new Date('2031-01-01T00:00:00Z'), new Date('2031-01-01T00:10:00Z')]) {
        const before = fake.requestsTo('/v1/events').length;
        const runs = await Promise.all([sweep(t, tick), sweep(other, tick)]);
        expect(runs.filter((id) => id !== null)).toHaveLength(1);
        // …and a replica whose timer fires once the first has finished finds the tick swept.
        expect(await sweep(other, tick)).toBeNull();
        const pages = fake.requestsTo('/v1/events').slice(before);
        const cursors = pages.map((p) => (p.query.starting_after as string | undefined) ?? 'first');
        expect(new Set(cursors).size).toBe(cursors.length);
      }
      expect(await count(db.pool, 'reconcile_runs')).toBe(2);
      expect(fake.requestsTo('/v1/events')).toHaveLength(4 + 1); // the second sweep lists from the checkpoint
    } finally {
      await other.close();
    }
  });

  it('a replica stopping mid-sweep records its run failed and leaves the checkpoint; a run left running by a dead replica is marked failed', async () => {
    t = await startPullingApp(db.url, fake);
    const now = await dbNow(db.pool);
    const events = stripeEvents(250, now - 300, DAY);
    fake.addEvents(events);
    const held = fake.hold();
    const interrupted = t.app.get(Reconciler).runScheduled(new Date('2033-01-01T00:00:00Z'));
    await waitUntil(() => fake.requests.length === 1, 5_000, 'the first page asked for');
    const closing = t.close();
    held.release();
    await closing;
    const stopped = (await interrupted) as string;
    expect(await run(db.pool, stopped)).toMatchObject({
      status: 'failed',
      error: 'Error: the replica is shutting down',
    });
    expect(await checkpoint(db.pool)).toBeNull();

    await db.pool.query(`INSERT INTO reconcile_runs (trigger, since, until) VALUES ('admin', now(), now())`);
    t = await startPullingApp(db.url, fake);
    const next = (await sweep(t)) as string;
    expect(await run(db.pool, next)).toMatchObject({ status: 'succeeded', listed: 250 });
    expect(await count(db.pool, 'reconcile_runs', `status = 'running'`)).toBe(0);
    expect(await count(db.pool, 'reconcile_runs', `error LIKE 'interrupted%'`)).toBe(1);
    await allHandled(t, db.pool);
    expect(await count(db.pool, 'subscription_events', `status = 'processed'`)).toBe(250);
  });

  it('skips (and logs) an event PostgreSQL cannot store, instead of failing every sweep on it', async () => {
    t = await startPullingApp(db.url, fake);
    const now = await dbNow(db.pool);
    const events = stripeEvents(5, now - 300, 60);
    events[2].data.object.metadata = { note: 'nul \u0000 here' }; // jsonb refuses \u0000
    fake.addEvents(events);
    const id = (await sweep(t)) as string;
    expect(await run(db.pool, id)).toMatchObject({ status: 'succeeded', listed: 5, recovered: 4 });
    expect(await count(db.pool, 'subscription_events', 'stripe_event_id = $1', [events[2].id])).toBe(0);
    expect(await checkpoint(db.pool)).not.toBeNull();
  });

  it('without a key nothing calls Stripe and the service runs as today', async () => {
    t = await startPullingApp(db.url, fake, { STRIPE_API_KEY: '' });
    fake.addEvents(stripeEvents(3, (await dbNow(db.pool)) - 300, 100));
    expect(await sweep(t)).toBeNull();
    const [event] = stripeEvents(1, await dbNow(db.pool), 0);
    expect((await t.deliver(event)).status).toBe(200);
    await allHandled(t, db.pool);
    expect(fake.requests).toHaveLength(0);
    expect(await count(db.pool, 'reconcile_runs')).toBe(0);
  });
});
