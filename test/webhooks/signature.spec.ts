import { createHmac } from 'node:crypto';
import { count } from '../support/database';
import { randomId, SECOND_SECRET, signatureHeader, stripeEvent, TEST_SECRET } from '../support/stripe';
import { useTestApp } from '../support/test-app';

/** What stripe-node would compute: HMAC-SHA256 over "<t>.<payload>". */
function v1(payload: string, secret: string, timestamp: number): string {
  return createHmac('sha256', secret).update(`${timestamp}.${payload}`, 'utf8').digest('hex');
}
const now = (): number => Math.floor(Date.now() / 1000);

describe('POST /webhooks/stripe: signature check', () => {
  const { db, t } = useTestApp({ STRIPE_WEBHOOK_SECRET: `${TEST_SECRET},${SECOND_SECRET}` });

  const payload = (): string =>
    JSON.stringify(stripeEvent('customer.created', { id: randomId('cus'), object: 'customer' }));

  async function expectRefused(body: string, header: string | undefined): Promise<void> {
    const id = (JSON.parse(body.startsWith('{') && body.includes('"id"') ? body : '{"id":"none"}') as { id: string })
      .id;
    const before = await count(db.pool, 'subscription_events');
    let req = t.http.post('/webhooks/stripe').set('Content-Type', 'application/json');
    if (header !== undefined) {
      req = req.set('Stripe-Signature', header);
    }
    const res = await req.send(body);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'invalid_signature', message: expect.any(String) });
    expect(await count(db.pool, 'subscription_events')).toBe(before);
    expect(await count(db.pool, 'webhook_retry_queue', 'stripe_event_id = $1', [id])).toBe(0);
  }

  it('accepts a valid signature and stores the event', async () => {
    const body = payload();
    const res = await t.deliver(body);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ received: true });
    const { rows } = await db.pool.query('SELECT payload FROM subscription_events WHERE stripe_event_id = $1', [
      JSON.parse(body).id,
    ]);
    expect(rows[0].payload).toEqual(JSON.parse(body));
  });

  it('refuses a missing header', () => expectRefused(payload(), undefined));
  it('refuses an empty header', () => expectRefused(payload(), ''));
  it('refuses a garbage header', () => expectRefused(payload(), 'not a signature at all'));
  it('refuses a header with a non-numeric timestamp', () => {
    const body = payload();
    return expectRefused(body, `t=abc,v1=${v1(body, TEST_SECRET, now())}`);
  });

  it('refuses a signature made with another secret', () => {
    const body = payload();
    return expectRefused(body, signatureHeader(body, 'whsec_someone_else_entirely'));
  });

  it('refuses a tampered body', () => {
    const body = payload();
    const header = signatureHeader(body);
    return expectRefused(body.replace('customer.created', 'customer.deleted'), header);
  });

  it('refuses a re-serialised body (same JSON, different bytes)', () => {
    const body = payload();
    const header = signatureHeader(body);
    return expectRefused(JSON.stringify(JSON.parse(body), null, 2), header);
  });

  it('refuses a header with only a v0 signature', () => {
    const body = payload();
    const t0 = now();
    return expectRefused(body, `t=${t0},v0=${v1(body, TEST_SECRET, t0)}`);
  });

  it('refuses a stale timestamp (now − 400 s, tolerance 300 s)', () => {
    const body = payload();
    return expectRefused(body, signatureHeader(body, TEST_SECRET, now() - 400));
  });

  it('refuses a future timestamp (now + 600 s)', () => {
    const body = payload();
    return expectRefused(body, signatureHeader(body, TEST_SECRET, now() + 600));
  });

  it('accepts timestamps just inside the tolerance, in both directions', async () => {
    for (const offset of [-290, 290]) {
      const body = payload();
      const res = await t.deliver(body, { header: signatureHeader(body, TEST_SECRET, now() + offset) });
      expect(res.status).toBe(200);
    }
  });

  it('accepts a signature made with the second configured secret (rotation)', async () => {
    const body = payload();
    const res = await t.deliver(body, { secret: SECOND_SECRET });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ received: true });
  });

  it('accepts a valid v1 beside a dummy v1 (as Stripe sends during secret rotation)', async () => {
    const body = payload();
    const t0 = now();
    const header = `t=${t0},v1=${'0'.repeat(64)},v1=${v1(body, TEST_SECRET, t0)}`;
    const res = await t.deliver(body, { header });
    expect(res.status).toBe(200);
  });

  it('refuses two dummy v1 signatures', () => {
    const body = payload();
    return expectRefused(body, `t=${now()},v1=${'0'.repeat(64)},v1=${'f'.repeat(64)}`);
  });

  it('checks the signature before anything looks at the body: unsigned non-JSON is invalid_signature', () =>
    expectRefused('{not json', undefined));

  it('never shows a secret or the signature in the error', async () => {
    const body = payload();
    const res = await t.http
      .post('/webhooks/stripe')
      .set('Stripe-Signature', signatureHeader(body, 'whsec_wrong_secret_value'))
      .send(body);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).not.toContain('whsec_');
    expect(JSON.stringify(res.body)).not.toMatch(/[0-9a-f]{64}/);
  });
});
