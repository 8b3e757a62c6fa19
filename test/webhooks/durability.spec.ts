import { HandlerRegistry } from '../../src/queue/handler-registry';
import { count, createTestDatabase, TestDatabase } from '../support/database';
import { randomId, signatureHeader, stripeEvent } from '../support/stripe';
import { TcpProxy } from '../support/tcp-proxy';
import { startTestApp, TestApp } from '../support/test-app';
import { Gate } from '../support/wait';

describe('POST /webhooks/stripe: durability', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let t: TestApp;
  const gate = new Gate();

  beforeAll(async () => {
    db = await createTestDatabase();
    proxy = await TcpProxy.start(db.url);
    t = await startTestApp(proxy.urlFor(db.url));
    // A handled type, so that accepted events are queued; the handler waits, so the rows stay visible.
    t.app.get(HandlerRegistry).register('test.handled', () => gate.wait());
  });
  afterAll(async () => {
    gate.open();
    await t.close();
    await proxy.close();
    await db.drop();
  });

  it('stores a handled event and its queue row together', async () => {
    const event = stripeEvent('test.handled', { id: randomId('obj') });
    expect((await t.deliver(event)).status).toBe(200);
    const { rows } = await db.pool.query(
      `SELECT e.status, q.attempts FROM subscription_events e JOIN webhook_retry_queue q ON q.event_id = e.id
        WHERE e.stripe_event_id = $1`,
      [event.id],
    );
    expect(rows).toEqual([{ status: 'pending', attempts: expect.any(Number) }]);
  });

  it('acknowledges 20 concurrent copies of one event with 200 and stores it once', async () => {
    const payload = JSON.stringify(stripeEvent('test.handled', { id: randomId('obj') }));
    const header = signatureHeader(payload);
    const responses = await Promise.all(
      Array.from({ length: 20 }, () =>
        t.http
          .post('/webhooks/stripe')
          .set('Stripe-Signature', header)
          .set('Content-Type', 'application/json')
          .send(payload),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    // Whole bodies: one first acknowledgement, 19 duplicates.
    const bodies = responses.map((r) => r.body as Record<string, unknown>);
    expect(bodies.filter((body) => !('duplicate' in body))).toEqual([{ received: true }]);
    expect(bodies.filter((body) => 'duplicate' in body)).toEqual(Array(19).fill({ received: true, duplicate: true }));
    const id = JSON.parse(payload).id as string;
    expect(await count(db.pool, 'subscription_events', 'stripe_event_id = $1', [id])).toBe(1);
    expect(await count(db.pool, 'webhook_retry_queue', 'stripe_event_id = $1', [id])).toBe(1);
  });

  it('answers 503 unavailable while the database is unreachable, then accepts the same delivery', async () => {
    const payload = JSON.stringify(stripeEvent('test.handled', { id: randomId('obj') }));
    const header = signatureHeader(payload);
    const send = () =>
      t.http
        .post('/webhooks/stripe')
        .set('Stripe-Signature', header)
        .set('Content-Type', 'application/json')
        .send(payload);

    proxy.cut();
    const refused = await send();
    expect(refused.status).toBe(503);
    expect(refused.body).toEqual({ statusCode: 503, error: 'unavailable', message: expect.any(String) });

    proxy.restore();
    const accepted = await send();
    expect(accepted.status).toBe(200);
    expect(accepted.body).toEqual({ received: true });
    expect(await count(db.pool, 'subscription_events', 'stripe_event_id = $1', [JSON.parse(payload).id])).toBe(1);
  });

  it.each([
    ['53100', 'disk_full'],
    ['57014', 'query_canceled'],
    ['55P03', 'lock_not_available'],
  ])('answers 503 when the database refuses the write (%s %s), then accepts the same delivery', async (code) => {
    const event = stripeEvent('test.handled', { id: randomId('obj') });
    // The server itself raises the error, as it would with a full disk or a lock or statement timeout.
    await db.pool.query(`
      CREATE FUNCTION test_refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'refused by the test' USING ERRCODE = '${code}'; END $$;
      CREATE TRIGGER test_refuse_event BEFORE INSERT ON subscription_events
        FOR EACH ROW EXECUTE FUNCTION test_refuse_event()`);
    try {
      const refused = await t.deliver(event);
      expect(refused.status).toBe(503);
      expect(refused.body).toEqual({ statusCode: 503, error: 'unavailable', message: expect.any(String) });
      expect(JSON.stringify(refused.body)).not.toContain('refused by the test');
    } finally {
      await db.pool.query('DROP TRIGGER test_refuse_event ON subscription_events; DROP FUNCTION test_refuse_event()');
    }
    expect(await count(db.pool, 'subscription_events', 'stripe_event_id = $1', [event.id])).toBe(0);
    expect((await t.deliver(event)).body).toEqual({ received: true });
    expect(await count(db.pool, 'webhook_retry_queue', 'stripe_event_id = $1', [event.id])).toBe(1);
  });
});
