import { count } from '../support/database';
import { randomId, signatureHeader, stripeEvent } from '../support/stripe';
import { startTestApp, useTestApp } from '../support/test-app';

describe('POST /webhooks/stripe: payloads and limits', () => {
  const { db, t } = useTestApp();

  async function expectInvalidPayload(body: string): Promise<void> {
    const before = await count(db.pool, 'subscription_events');
    const res = await t.deliver(body);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'invalid_payload', message: expect.any(String) });
    expect(await count(db.pool, 'subscription_events')).toBe(before);
  }

  it('refuses a signed body that is not JSON', () => expectInvalidPayload('this is not json'));
  it('refuses signed JSON that is not an object', () => expectInvalidPayload('[1,2,3]'));
  it('refuses an event without an id', () => {
    const { id: _id, ...event } = stripeEvent('customer.created', { id: 'cus_1' });
    return expectInvalidPayload(JSON.stringify(event));
  });
  it('refuses an event without a type', () => {
    const { type: _type, ...event } = stripeEvent('customer.created', { id: 'cus_1' });
    return expectInvalidPayload(JSON.stringify(event));
  });
  it('refuses an event without data.object', () =>
    expectInvalidPayload(
      JSON.stringify({ ...stripeEvent('customer.created', {}), data: { previous_attributes: {} } }),
    ));
  it('refuses an event whose data.object is not an object', () =>
    expectInvalidPayload(JSON.stringify({ ...stripeEvent('customer.created', {}), data: { object: 'cus_1' } })));
  it('refuses an event with a non-string id', () =>
    expectInvalidPayload(JSON.stringify({ ...stripeEvent('customer.created', { id: 'cus_1' }), id: 42 })));
  it('refuses \\u0000, which PostgreSQL cannot store in jsonb, instead of altering the event', () =>
    expectInvalidPayload(JSON.stringify(stripeEvent('customer.created', { id: 'cus_1', name: 'a\u0000b' }))));

  it('refuses \\u0000 in the id, which PostgreSQL cannot store in text', () =>
    expectInvalidPayload(JSON.stringify(stripeEvent('customer.created', { id: 'cus_1' }, { id: 'evt_a\u0000b' }))));
  it('refuses \\u0000 in the type, which PostgreSQL cannot store in text', () =>
    expectInvalidPayload(JSON.stringify(stripeEvent('customer.created\u0000', { id: 'cus_1' }))));

  it('refuses a created too large for a PostgreSQL timestamp', () =>
    expectInvalidPayload(JSON.stringify(stripeEvent('customer.created', { id: 'cus_1' }, { created: 1e13 }))));
  it('takes a created with a fraction as its whole second (only id, type and data.object are required)', async () => {
    const event = stripeEvent('customer.created', { id: randomId('cus') }, { created: 1_700_000_000.75 });
    expect((await t.deliver(event)).status).toBe(200);
    const { rows } = await db.pool.query(
      'SELECT extract(epoch FROM event_created_at)::numeric AS created FROM subscription_events WHERE stripe_event_id = $1',
      [event.id],
    );
    expect(rows).toEqual([{ created: '1700000000.000000' }]);
  });
  it('refuses a created that is not a number', () =>
    expectInvalidPayload(JSON.stringify(stripeEvent('customer.created', { id: 'cus_1' }, { created: '1700000000' }))));
  it('bounds created at the last second of the year 9999: stores that one, refuses the next', async () => {
    const last = stripeEvent('customer.created', { id: randomId('cus') }, { created: 253_402_300_799 });
    expect((await t.deliver(last)).status).toBe(200);
    const { rows } = await db.pool.query(
      'SELECT extract(epoch FROM event_created_at)::bigint AS created FROM subscription_events WHERE stripe_event_id = $1',
      [last.id],
    );
    expect(rows[0].created).toBe('253402300799');
    await expectInvalidPayload(
      JSON.stringify(stripeEvent('customer.created', { id: 'cus_1' }, { created: 253_402_300_800 })),
    );
  });

  it('answers 413 payload_too_large above WEBHOOK_MAX_BODY_BYTES and stores nothing', async () => {
    const before = await count(db.pool, 'subscription_events');
    const event = stripeEvent('customer.created', { id: 'cus_big', blob: 'x'.repeat(1_100_000) });
    const res = await t.deliver(event);
    expect(res.status).toBe(413);
    expect(res.body).toEqual({ statusCode: 413, error: 'payload_too_large', message: expect.any(String) });
    expect(await count(db.pool, 'subscription_events')).toBe(before);
  });

  it('accepts a 300 KB event and stores it whole', async () => {
    const event = stripeEvent('customer.created', { id: randomId('cus'), blob: 'y'.repeat(300_000) });
    const res = await t.deliver(event);
    expect(res.status).toBe(200);
    const { rows } = await db.pool.query('SELECT payload FROM subscription_events WHERE stripe_event_id = $1', [
      event.id,
    ]);
    expect(rows[0].payload).toEqual(event);
  });

  it('keeps multi-byte UTF-8 intact (the signature is over the raw bytes)', async () => {
    const name = 'Zoë Ångström — 東京 🚀';
    const event = stripeEvent('customer.created', { id: randomId('cus'), name });
    const res = await t.deliver(event);
    expect(res.status).toBe(200);
    const { rows } = await db.pool.query(
      `SELECT payload->'data'->'object'->>'name' AS name FROM subscription_events WHERE stripe_event_id = $1`,
      [event.id],
    );
    expect(rows[0].name).toBe(name);
  });

  it('takes the body whatever the Content-Type says', async () => {
    const event = stripeEvent('customer.created', { id: randomId('cus') });
    const payload = JSON.stringify(event);
    const res = await t.http
      .post('/webhooks/stripe')
      .set('Content-Type', 'text/plain')
      .set('Stripe-Signature', signatureHeader(payload))
      .send(payload);
    expect(res.status).toBe(200);
  });

  it('honours a smaller configured limit together with the signature check', async () => {
    const small = await startTestApp(db.url, { WEBHOOK_MAX_BODY_BYTES: '2048' });
    try {
      const fits = stripeEvent('customer.created', { id: randomId('cus'), note: 'z'.repeat(1000) });
      expect((await small.deliver(fits)).status).toBe(200);
      const tooBig = stripeEvent('customer.created', { id: randomId('cus'), note: 'z'.repeat(3000) });
      expect((await small.deliver(tooBig)).status).toBe(413);
    } finally {
      await small.close();
    }
  });

  it('stores unknown event types as ignored and acknowledges them', async () => {
    const event = stripeEvent('radar.early_fraud_warning.created', { id: randomId('issfr') });
    const res = await t.deliver(event);
    expect(res.status).toBe(200);
    const { rows } = await db.pool.query(
      'SELECT status, processed_at FROM subscription_events WHERE stripe_event_id = $1',
      [event.id],
    );
    expect(rows[0].status).toBe('ignored');
    expect(rows[0].processed_at).not.toBeNull();
    expect(await count(db.pool, 'webhook_retry_queue', 'stripe_event_id = $1', [event.id])).toBe(0);
  });

  it('answers unknown routes and methods with the JSON error shape', async () => {
    const res = await t.http.get('/webhooks/stripe');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ statusCode: 404, error: 'not_found', message: expect.any(String) });
  });
});
