import type { Executor } from '../../src/database/database';
import { sql } from '../../src/database/sql';
import { AlertReceiver } from '../support/alert-receiver';
import { deliverAndSettle } from '../support/billing';
import { count, createTestDatabase, TestDatabase } from '../support/database';
import { fixtureEvent, newWorld, StripeJson, subscriptionEvent } from '../support/fixtures';
import { FAST_QUEUE, settle } from '../support/queue';
import { randomId, stripeEvent } from '../support/stripe';
import { ADMIN_TOKEN, AUDITOR_TOKEN, startTestApp, TestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

const auth = { Authorization: `Bearer ${ADMIN_TOKEN}` };

interface Change {
  table: string;
  key: Record<string, unknown>;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

describe('POST /admin/events/:id/reprocess?dry_run=true', () => {
  let db: TestDatabase;
  let t: TestApp;
  let alerts: AlertReceiver;

  beforeAll(async () => {
    db = await createTestDatabase();
    alerts = await AlertReceiver.start();
    t = await startTestApp(
      db.url,
      { ...FAST_QUEUE, ALERT_WEBHOOK_URL: alerts.url },
      {
        // Writes a row, then fails: a real attempt would keep nothing.
        'test.writes_then_fails': async (event, manager: Executor) => {
          await sql(manager, `INSERT INTO customers (stripe_customer_id) VALUES ($1)`, [`cus_${event.id}`]);
          throw new Error('handler bug: <b>boom</b>');
        },
      },
    );
  });
  afterAll(async () => {
    await t.close();
    await alerts.close();
    await db.drop();
  });

  /** Stores an event without queueing it, as one that died or was discarded long ago. */
  const store = async (event: StripeJson, status = 'dead'): Promise<void> => {
    await db.pool.query(
      `INSERT INTO subscription_events (stripe_event_id, event_type, status, payload, event_created_at)
       VALUES ($1, $2, $3, $4, to_timestamp($5))`,
      [event.id, event.type, status, JSON.stringify(event), event.created],
    );
  };
  const dryRun = (id: string, token = ADMIN_TOKEN) =>
    t.http
      .post(`/admin/events/${encodeURIComponent(id)}/reprocess?dry_run=true`)
      .set('Authorization', `Bearer ${token}`);
  const snapshot = async (): Promise<unknown[]> => {
    const tables = ['customers', 'subscriptions', 'wallet_ledger', 'wallet_balances', 'wallet_intent_payment_methods'];
    return Promise.all(tables.map(async (table) => (await db.pool.query(`SELECT * FROM ${table} ORDER BY 1`)).rows));
  };

  it('lists an update with its committed before and the after the handler leaves, and changes nothing', async () => {
    const w = newWorld();
    const created = subscriptionEvent('customer.subscription.created', w, { status: 'active', created: 1_800_000_000 });
    expect(await deliverAndSettle(t, db.pool, created as { id: string })).toBe('processed');
    const canceled = subscriptionEvent('customer.subscription.updated', w, {
      status: 'canceled',
      created: 1_800_000_500,
    });
    await store(canceled, 'discarded');
    const before = await snapshot();

    const res = await dryRun(canceled.id);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ changes: expect.any(Array), outcome: 'processed', error: null });
    const changes = res.body.changes as Change[];
    expect(changes.map((c) => c.table)).toEqual(['subscriptions']);
    expect(changes[0].key).toEqual({ stripe_subscription_id: w.subscription });
    expect(changes[0].before).toMatchObject({ status: 'active', last_event_id: created.id });
    expect(changes[0].after).toMatchObject({ status: 'canceled', last_event_id: canceled.id });
    expect(await snapshot()).toEqual(before);
    expect((await t.http.get(`/admin/events/${canceled.id}`).set(auth)).body.status).toBe('discarded');
  });

  it('lists inserts with before null and deletions with after null, whatever the status', async () => {
    const w = newWorld();
    const paymentIntent = randomId('pi');
    // A PaymentIntent without the top-up purpose: its payment method is remembered for its session.
    const plain = fixtureEvent('payment_intent.succeeded.plain', w);
    plain.data.object.id = paymentIntent;
    expect(await deliverAndSettle(t, db.pool, plain as { id: string })).toBe('processed');
    // Its top-up session, never processed: it would credit, and use (delete) the remembered method.
    const session = fixtureEvent('checkout.session.completed.wallet_top_up', w);
    session.data.object.payment_intent = paymentIntent;
    for (const status of ['pending', 'dead', 'discarded']) {
      const copy = { ...session, id: randomId('evt') };
      await store(copy, status);
      const before = await snapshot();
      const res = await dryRun(copy.id);
      expect(res.status).toBe(200);
      const changes = res.body.changes as Change[];
      const byTable = Object.fromEntries(changes.map((c) => [c.table, c]));
      expect(byTable.wallet_ledger).toMatchObject({
        before: null,
        after: { payment_intent_id: paymentIntent, amount: 5000, currency: 'usd', source_event_id: copy.id },
      });
      expect(byTable.wallet_balances).toMatchObject({
        key: { stripe_customer_id: w.customer, currency: 'usd' },
        before: null,
        after: { balance: 5000 },
      });
      expect(byTable.wallet_intent_payment_methods).toMatchObject({
        key: { payment_intent_id: paymentIntent },
        before: { payment_method_id: 'pm_1QaZ2wLs8Hc4Vn6Tq0Rb3Ye5' },
        after: null,
      });
      // The customer was known only from the PaymentIntent, which does not store it.
      expect(byTable.customers).toMatchObject({
        before: null,
        after: { auto_recharge_payment_method: 'pm_1QaZ2wLs8Hc4Vn6Tq0Rb3Ye5' },
      });
      expect(await snapshot()).toEqual(before);
    }
    expect(await count(db.pool, 'wallet_ledger', 'payment_intent_id = $1', [paymentIntent])).toBe(0);
  });

  it('runs no after-commit effect: a failed invoice payment alerts only when really reprocessed', async () => {
    const w = newWorld();
    const failed = fixtureEvent('invoice.payment_failed', w);
    await store(failed, 'dead');
    const res = await dryRun(failed.id);
    expect(res.status).toBe(200);
    expect((res.body.changes as Change[]).map((c) => c.table).sort()).toEqual(['customers', 'invoices']);
    // The same event handled for real (its dead letter's replay, here by hand) posts its alert…
    await db.pool.query(
      `WITH e AS (UPDATE subscription_events SET status = 'pending' WHERE stripe_event_id = $1 RETURNING id, event_type)
       INSERT INTO webhook_retry_queue (event_id, stripe_event_id, event_type) SELECT id, $1, event_type FROM e`,
      [failed.id],
    );
    expect((await settle(t, db.pool, failed.id)).status).toBe('processed');
    await waitUntil(() => alerts.messages.some((m) => m.text.includes(failed.id)), 5_000, 'the real alert');
    // …and it is the only one: the dry run sent none.
    expect(alerts.messages.filter((m) => m.text.includes(failed.id))).toHaveLength(1);
  });

  it('reports an event of a type without a handler as ignored, and a failing handler as failed, with nothing kept', async () => {
    const unknown = stripeEvent('some.unhandled_type', { id: randomId('obj') });
    expect((await t.deliver(unknown)).status).toBe(200);
    expect((await dryRun(unknown.id as string)).body).toEqual({ changes: [], outcome: 'ignored', error: null });

    const failing = stripeEvent('test.writes_then_fails', { id: randomId('obj') });
    await store(failing, 'dead');
    const res = await dryRun(failing.id as string);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ changes: [], outcome: 'failed', error: 'Error: handler bug: <b>boom</b>' });
    expect(await count(db.pool, 'customers', 'stripe_customer_id = $1', [`cus_${failing.id as string}`])).toBe(0);
  });

  it('answers 404 for an unknown event, 401 without a token, and audits every dry run with its holder', async () => {
    const missing = await dryRun('evt_never_stored');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ statusCode: 404, error: 'not_found', message: expect.any(String) });
    expect((await t.http.post('/admin/events/evt_x/reprocess?dry_run=true')).status).toBe(401);
    expect((await dryRun('evt_x', 'wrong-token-0123456789')).status).toBe(401);
    const bad = await t.http.post('/admin/events/evt_x/reprocess?dry_run=yes').set(auth);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('invalid_request');

    const unknown = stripeEvent('some.unhandled_type', { id: randomId('obj') });
    expect((await t.deliver(unknown)).status).toBe(200);
    expect((await dryRun(unknown.id as string, AUDITOR_TOKEN)).status).toBe(200);
    const log = await t.http.get('/admin/audit-log?limit=5').set(auth);
    expect(log.body.items.slice(0, 2)).toEqual([
      expect.objectContaining({
        actor: 'auditor',
        action: 'event.reprocess_dry_run',
        target: unknown.id,
        result: 'ignored',
      }),
      expect.objectContaining({
        actor: 'ops',
        action: 'event.reprocess_dry_run',
        target: 'evt_never_stored',
        result: 'not_found',
      }),
    ]);
  });

  it('commits nothing and lists only its own rows while other events are processed at the same time', async () => {
    const w = newWorld();
    const session = fixtureEvent('checkout.session.completed.wallet_top_up', w);
    session.data.object.payment_intent = randomId('pi');
    await store(session, 'dead');
    // Traffic: subscription events of other customers (writing customers and subscriptions too).
    const traffic = Array.from({ length: 30 }, () =>
      subscriptionEvent('customer.subscription.created', newWorld(), { status: 'active', created: 1_800_000_000 }),
    );
    const delivering = (async () => {
      for (const event of traffic) {
        expect((await t.deliver(event)).status).toBe(200);
      }
    })();
    const runs: Change[][] = [];
    const dryRuns = (async () => {
      for (let i = 0; i < 10; i++) {
        const res = await dryRun(session.id);
        expect(res.status).toBe(200);
        runs.push(res.body.changes as Change[]);
      }
    })();
    await Promise.all([delivering, dryRuns]);
    for (const event of traffic) {
      expect((await settle(t, db.pool, event.id)).status).toBe('processed');
    }
    // Every run saw the same rows of its own customer, none of the traffic's.
    for (const changes of runs) {
      expect(changes.map((c) => `${c.table} ${JSON.stringify(c.key)}`).sort()).toEqual([
        `customers {"stripe_customer_id":"${w.customer}"}`,
        `wallet_balances {"stripe_customer_id":"${w.customer}","currency":"usd"}`,
        `wallet_ledger {"id":"${String(changes.find((c) => c.table === 'wallet_ledger')?.key.id)}"}`,
      ]);
    }
    expect(await count(db.pool, 'customers', 'stripe_customer_id = $1', [w.customer])).toBe(0);
    expect(await count(db.pool, 'wallet_ledger', 'payment_intent_id = $1', [session.data.object.payment_intent])).toBe(
      0,
    );
    expect(
      await count(db.pool, 'subscriptions', 'stripe_subscription_id = ANY($1)', [traffic.map((e) => e.data.object.id)]),
    ).toBe(30);
    // No connection was left inside a transaction.
    expect(
      await count(db.pool, 'pg_stat_activity', "datname = current_database() AND state LIKE 'idle in transaction%'"),
    ).toBe(0);
  });
});
