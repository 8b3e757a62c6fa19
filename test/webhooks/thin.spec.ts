import { count } from '../support/database';
import { FAST_QUEUE, settle } from '../support/queue';
import { SECOND_SECRET, signatureHeader, stripeEvent, TEST_SECRET, thinEvent } from '../support/stripe';
import { useTestApp } from '../support/test-app';

const PING = 'v2.core.event_destination.ping';

/** The value of one sample of a Prometheus counter, 0 when absent. */
function sample(metrics: string, name: string, labels: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('POST /webhooks/stripe/thin', () => {
  const { db, t } = useTestApp({
    ...FAST_QUEUE,
    STRIPE_WEBHOOK_SECRET: `${TEST_SECRET},${SECOND_SECRET}`,
    WEBHOOK_MAX_BODY_BYTES: '4096',
  });

  async function stored(id: string): Promise<Record<string, unknown> | undefined> {
    const { rows } = await db.pool.query(
      `SELECT event_type, status, source, account_id, payload FROM subscription_events WHERE stripe_event_id = $1`,
      [id],
    );
    return rows[0] as Record<string, unknown> | undefined;
  }

  async function expectRefused(
    send: () => Promise<{ status: number; body: unknown }>,
    status: number,
    code: string,
    message: RegExp = /./,
  ): Promise<void> {
    const before = await count(db.pool, 'subscription_events');
    const res = await send();
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ statusCode: status, error: code, message: expect.stringMatching(message) });
    expect(await count(db.pool, 'subscription_events')).toBe(before);
  }

  it('a ping: 200, stored with source thin, processed with no effect; again: duplicate', async () => {
    const ping = thinEvent(PING, {
      related_object: {
        id: 'ed_test_1',
        type: 'v2.core.event_destination',
        url: '/v2/core/event_destinations/ed_test_1',
      },
    });
    const res = await t.deliverThin(ping);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ received: true });
    expect(await settle(t, db.pool, ping.id as string)).toEqual({ status: 'processed', attempts: 1, last_error: null });
    expect(await stored(ping.id as string)).toEqual({
      event_type: PING,
      status: 'processed',
      source: 'thin',
      account_id: null,
      payload: ping,
    });
    const again = await t.deliverThin(ping);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ received: true, duplicate: true });
    expect(await count(db.pool, 'subscription_events', 'stripe_event_id = $1', [ping.id])).toBe(1);
  });

  it('counts deliveries in the same metrics, the thin type as event_type', async () => {
    const ping = thinEvent(PING);
    const labels = `event_type="${PING}",outcome="accepted"`;
    const before = sample((await t.http.get('/metrics')).text, 'stripe_webhook_events_received_total', labels);
    expect((await t.deliverThin(ping)).status).toBe(200);
    expect((await t.deliverThin(ping)).status).toBe(200);
    const metrics = (await t.http.get('/metrics')).text;
    expect(sample(metrics, 'stripe_webhook_events_received_total', labels)).toBe(before + 1);
    expect(
      sample(metrics, 'stripe_webhook_events_received_total', `event_type="${PING}",outcome="duplicate"`),
    ).toBeGreaterThanOrEqual(1);
  });

  it("stores a connected account's thin event with its context as account_id", async () => {
    const event = thinEvent(PING, { context: 'acct_1Nv0FGQ9RKHgCVdK' });
    expect((await t.deliverThin(event)).status).toBe(200);
    expect(await stored(event.id as string)).toMatchObject({ source: 'thin', account_id: 'acct_1Nv0FGQ9RKHgCVdK' });
  });

  it('marks a thin type with no handler ignored, and a thin copy of a classic type that has none', async () => {
    const other = thinEvent('v2.core.account.updated', { context: 'acct_123' });
    const copy = thinEvent('v1.invoice.created', { snapshot_event: 'evt_1Unhandled' });
    for (const event of [other, copy]) {
      expect((await t.deliverThin(event)).status).toBe(200);
      expect(await stored(event.id as string)).toMatchObject({ status: 'ignored', source: 'thin' });
    }
  });

  it('accepts a signature by any configured secret, and refuses one by no configured secret', async () => {
    const event = thinEvent(PING);
    expect((await t.deliverThin(event, { secret: SECOND_SECRET })).status).toBe(200);
    const body = JSON.stringify(thinEvent(PING));
    await expectRefused(
      () => t.deliverThin(body, { header: signatureHeader(body, 'whsec_not_configured_0123456789') }),
      400,
      'invalid_signature',
    );
  });

  it('refuses an unsigned body, a malformed header and a body changed after signing: 400 invalid_signature', async () => {
    const body = JSON.stringify(thinEvent(PING));
    await expectRefused(
      () => t.http.post('/webhooks/stripe/thin').set('Content-Type', 'application/json').send(body),
      400,
      'invalid_signature',
      /missing/,
    );
    await expectRefused(() => t.deliverThin(body, { header: 'v1=abc' }), 400, 'invalid_signature', /malformed/);
    const header = signatureHeader(body);
    await expectRefused(
      () => t.deliverThin(body.replace(PING, 'v2.core.event_destination.pong'), { header }),
      400,
      'invalid_signature',
    );
  });

  it('refuses a timestamp outside the tolerance in either direction', async () => {
    const body = JSON.stringify(thinEvent(PING));
    const now = Math.floor(Date.now() / 1000);
    for (const timestamp of [now - 301, now + 301]) {
      await expectRefused(
        () => t.deliverThin(body, { header: signatureHeader(body, TEST_SECRET, timestamp) }),
        400,
        'invalid_signature',
        /tolerance/,
      );
    }
    expect((await t.deliverThin(body, { header: signatureHeader(body, TEST_SECRET, now + 240) })).status).toBe(200);
  });

  it('refuses a classic event posted here, and a thin event posted to /webhooks/stripe: 400 invalid_payload', async () => {
    const classic = stripeEvent('customer.created', { id: 'cus_thin_1', object: 'customer' });
    await expectRefused(() => t.deliverThin(classic), 400, 'invalid_payload', /\/webhooks\/stripe\b/);
    await expectRefused(() => t.deliver(thinEvent(PING)), 400, 'invalid_payload', /\/webhooks\/stripe\/thin/);
  });

  it('refuses signed bodies that are not thin events: 400 invalid_payload', async () => {
    const { id: _id, ...noId } = thinEvent(PING);
    const bodies = [
      'not json',
      '[1]',
      JSON.stringify(noId),
      JSON.stringify(thinEvent(PING, { object: 'v2.core.event_destination' })),
      JSON.stringify(thinEvent(PING, { created: 1_700_000_000 })),
      JSON.stringify(thinEvent(PING, { created: 'yesterday' })),
      JSON.stringify(thinEvent(PING, { context: 42 })),
      JSON.stringify(thinEvent(PING, { snapshot_event: '' })),
      JSON.stringify(thinEvent('v2.core\u0000.ping')),
      JSON.stringify(thinEvent(PING, { nested: JSON.parse('['.repeat(70) + ']'.repeat(70)) as unknown })),
    ];
    for (const body of bodies) {
      await expectRefused(() => t.deliverThin(body), 400, 'invalid_payload');
    }
  });

  it('holds thin bodies to WEBHOOK_MAX_BODY_BYTES: 413', async () => {
    const body = JSON.stringify(thinEvent(PING, { padding: 'x'.repeat(5000) }));
    await expectRefused(() => t.deliverThin(body), 413, 'payload_too_large');
  });
});
