import { MetricsService } from '../../src/metrics/metrics.service';
import { ReconcileStatus } from '../../src/reconcile/reconcile-status.service';
import { AlertReceiver } from '../support/alert-receiver';
import { createTestDatabase, TestDatabase } from '../support/database';
import { FakeStripe } from '../support/fake-stripe';
import { allHandled, dbNow, startPullingApp, stripeEvents, sweep } from '../support/reconcile';
import { ADMIN_TOKEN, TestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

/** One sample's value from Prometheus text. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('reconciliation seen from outside: health, metrics, alerts', () => {
  let db: TestDatabase;
  let fake: FakeStripe;
  let receiver: AlertReceiver;
  let t: TestApp;

  beforeEach(async () => {
    db = await createTestDatabase();
    fake = await FakeStripe.start();
    receiver = await AlertReceiver.start();
    t = await startPullingApp(db.url, fake, { ALERT_WEBHOOK_URL: receiver.url });
  });
  afterEach(async () => {
    await t.close();
    await receiver.close();
    await fake.close();
    await db.drop();
  });

  const webhooksInfo = async (app = t) => {
    const res = await app.http.get('/health/webhooks');
    expect(res.status).toBe(200); // how sweeps go never fails the check
    return res.body.info.webhooks as Record<string, unknown>;
  };

  it('reports reconcile ok or failing and the last successful sweep in /health/webhooks, on every replica', async () => {
    expect(await webhooksInfo()).toMatchObject({ reconcile: 'ok', last_reconcile_at: null });
    await sweep(t);
    const { rows } = await db.pool.query(`SELECT last_success_at FROM reconcile_checkpoints`);
    const lastSuccess = (rows[0].last_success_at as Date).toISOString();
    expect(await webhooksInfo()).toMatchObject({ reconcile: 'ok', last_reconcile_at: lastSuccess });

    fake.fail({ failure: 'malformed' });
    await sweep(t);
    expect(await webhooksInfo()).toMatchObject({ reconcile: 'failing', last_reconcile_at: lastSuccess });
    const other = await startPullingApp(db.url, fake);
    try {
      await other.app.get(ReconcileStatus).refresh();
      expect(await webhooksInfo(other)).toMatchObject({ reconcile: 'failing', last_reconcile_at: lastSuccess });
    } finally {
      await other.close();
    }
    await sweep(t);
    expect(await webhooksInfo()).toMatchObject({ reconcile: 'ok' });

    const keyless = await startPullingApp(db.url, fake, { STRIPE_API_KEY: '' });
    try {
      expect(await webhooksInfo(keyless)).toMatchObject({ reconcile: 'disabled', last_reconcile_at: null });
    } finally {
      await keyless.close();
    }
  });

  it('exports the three metric families', async () => {
    const now = await dbNow(db.pool);
    fake.addEvents(stripeEvents(3, now - 600, 60));
    await sweep(t);
    fake.fail({ failure: 'malformed' });
    await sweep(t);
    const { body } = await t.app.get(MetricsService).render();
    expect(sample(body, 'stripe_webhook_reconcile_runs_total', '{outcome="succeeded"}')).toBe(1);
    expect(sample(body, 'stripe_webhook_reconcile_runs_total', '{outcome="failed"}')).toBe(1);
    const types = stripeEvents(3, 0, 0).map((e) => e.type as string);
    for (const type of types) {
      expect(sample(body, 'stripe_webhook_events_recovered_total', `{event_type="${type}"}`)).toBe(1);
    }
    const { rows } = await db.pool.query(`SELECT last_success_at FROM reconcile_checkpoints`);
    expect(sample(body, 'stripe_webhook_reconcile_last_success_timestamp_seconds')).toBeCloseTo(
      (rows[0].last_success_at as Date).getTime() / 1000,
      3,
    );
    expect((await t.http.get('/metrics')).text).toContain('stripe_webhook_reconcile_last_success_timestamp_seconds');
  });

  it('alerts when a sweep recovers events (how many, which types), and not when it recovers none', async () => {
    const now = await dbNow(db.pool);
    const events = stripeEvents(12, now - 600, 600); // 9 types, the first three twice
    fake.addEvents(events);
    await t.deliver(events[11]);
    await allHandled(t, db.pool);
    const runId = (await sweep(t)) as string;
    const alert = await waitUntil(() => receiver.messages[0], 5_000, 'recovery alert');
    expect(alert.text).toContain('recovered 11 Stripe events');
    expect(alert.text).toContain(`2 ${events[0].type as string}`);
    expect(alert.text).toContain(`1 ${events[5].type as string}`);
    expect(alert.text).toContain(`1 ${events[2].type as string}`); // the other one of its type was delivered
    expect(alert.text).toContain(runId);
    await sweep(t);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.messages).toHaveLength(1);
  });

  it('alerts once per change: failing, then the key refused, then working again, whichever replica sweeps', async () => {
    const other = await startPullingApp(db.url, fake, { ALERT_WEBHOOK_URL: receiver.url });
    const texts = () => receiver.messages.map((m) => m.text);
    try {
      await sweep(t);
      fake.fail({ failure: 'malformed', times: 2 });
      await sweep(t);
      await waitUntil(() => receiver.messages.length === 1, 5_000, 'failing alert');
      await sweep(other); // still failing, seen by another replica: no second alert
      fake.fail({ failure: 401, times: 2 });
      await sweep(t);
      await waitUntil(() => receiver.messages.length === 2, 5_000, 'key alert');
      await sweep(other);
      await sweep(t);
      await waitUntil(() => receiver.messages.length === 3, 5_000, 'recovery alert');
      await sweep(other);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(texts()).toEqual([
        expect.stringMatching(/^:warning: Reconciliation sweeps are failing: MalformedStripeResponseError/),
        expect.stringMatching(/^:no_entry: Stripe refused STRIPE_API_KEY/),
        expect.stringMatching(/^:white_check_mark: Reconciliation sweeps succeed again/),
      ]);
    } finally {
      await other.close();
    }
    const runs = await t.http.get('/admin/reconcile/runs').set({ Authorization: `Bearer ${ADMIN_TOKEN}` });
    const shown = JSON.stringify(runs.body) + texts().join('\n');
    expect(shown).toContain('Stripe refused STRIPE_API_KEY (401)');
    expect(shown).not.toContain(fake.apiKey);
    expect(shown).not.toContain(fake.apiKey.slice(-4));
  });
});
