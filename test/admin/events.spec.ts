import { randomId, stripeEvent } from '../support/stripe';
import { ADMIN_TOKEN, AUDITOR_TOKEN, useTestApp } from '../support/test-app';

describe('GET /admin/events/:stripeEventId', () => {
  const { t } = useTestApp();

  it('refuses a request without a token, with a malformed header, or with a wrong token (401 JSON)', async () => {
    for (const header of [
      undefined,
      'Basic abc',
      'Bearer',
      `Bearer ${ADMIN_TOKEN}x`,
      `Bearer ${ADMIN_TOKEN.slice(0, -1)}`,
    ]) {
      const req = t.http.get('/admin/events/evt_x');
      const res = await (header === undefined ? req : req.set('Authorization', header));
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ statusCode: 401, error: 'unauthorized', message: expect.any(String) });
    }
  });

  it('returns an event with the documented fields, for any configured token', async () => {
    const event = stripeEvent('some.unhandled_type', { id: randomId('obj') });
    expect((await t.deliver(event)).status).toBe(200);
    for (const token of [ADMIN_TOKEN, AUDITOR_TOKEN]) {
      const res = await t.http.get(`/admin/events/${event.id as string}`).set('Authorization', `Bearer ${token}`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        stripe_event_id: event.id,
        event_type: 'some.unhandled_type',
        status: 'ignored',
        attempts: 0,
        last_error: null,
        received_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        processed_at: expect.stringMatching(/Z$/),
      });
    }
  });

  it('answers 404 for an event never stored', async () => {
    const res = await t.http.get('/admin/events/evt_never_seen').set('Authorization', `Bearer ${ADMIN_TOKEN}`);
    expect(res.status).toBe(404);
    expect(res.body.error).toBe('not_found');
  });

  it('answers 404, not 500, for an id with a NUL character (PostgreSQL text cannot hold one, so it was never stored)', async () => {
    const auth = `Bearer ${ADMIN_TOKEN}`;
    const responses = [
      await t.http.get('/admin/events/evt_a%00b').set('Authorization', auth),
      await t.http.post('/admin/events/evt_a%00b/reprocess').set('Authorization', auth),
    ];
    expect(responses.map((res) => res.body)).toEqual([
      { statusCode: 404, error: 'not_found', message: expect.any(String) },
      { statusCode: 404, error: 'not_found', message: expect.any(String) },
    ]);
    expect(responses.map((res) => res.status)).toEqual([404, 404]);
  });

  it('treats SQL metacharacters in the id as data', async () => {
    const res = await t.http
      .get(`/admin/events/${encodeURIComponent("evt_1' OR '1'='1")}`)
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`);
    expect(res.status).toBe(404);
  });
});
