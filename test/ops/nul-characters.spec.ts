import { deliverAndSettle } from '../support/billing';
import { fixtureEvent, newWorld, World } from '../support/fixtures';
import { ADMIN_TOKEN, useTestApp } from '../support/test-app';

/** PostgreSQL text cannot hold NUL: a value holding one must be refused before it reaches SQL, never answer 500. */
describe('NUL characters in paths, queries and bodies', () => {
  const { db, t } = useTestApp();
  let w: World;
  const auth = { Authorization: `Bearer ${ADMIN_TOKEN}` };

  beforeAll(async () => {
    // A customer with a current billing period, so that usage requests get as far as the ledger.
    w = newWorld();
    await deliverAndSettle(t, db.pool, fixtureEvent('customer.subscription.updated', w) as { id: string });
  });

  it('answers 404 for a customer or user id holding NUL (no such id can be stored)', async () => {
    const responses = [
      await t.http.get('/v1/customers/cus_a%00b/entitlements').set(auth),
      await t.http.get('/v1/users/user_a%00b/entitlements').set(auth),
      await t.http.get('/v1/customers/cus_a%00b/wallet').set(auth),
      await t.http.get('/v1/customers/cus_a%00b/usage').set(auth),
      await t.http.post('/v1/customers/cus_a%00b/usage').set(auth).send({ quantity: 1, idempotency_key: 'k' }),
      await t.http.get('/admin/customers/cus_a%00b/events').set(auth),
    ];
    expect(responses.map((res) => [res.status, res.body.error])).toEqual(Array(6).fill([404, 'not_found']));
  });

  it('answers 400 for a dead-letter type filter holding NUL', async () => {
    const res = await t.http.get('/admin/dead-letters?event_type=a%00b').set(auth);
    expect([res.status, res.body]).toEqual([
      400,
      { statusCode: 400, error: 'invalid_request', message: 'event_type must not contain a NUL character.' },
    ]);
  });

  it('answers 400 for a usage idempotency key holding NUL, and counts nothing', async () => {
    const res = await t.http
      .post(`/v1/customers/${w.customer}/usage`)
      .set(auth)
      .send({ quantity: 3, idempotency_key: 'key\u0000one' });
    expect([res.status, res.body.error, res.body.message]).toEqual([
      400,
      'invalid_request',
      'idempotency_key must not contain a NUL character.',
    ]);
    expect((await t.http.get(`/v1/customers/${w.customer}/usage`).set(auth)).body.used).toBe(0);
  });

  it('answers 400 for a bulk replay whose event_type holds NUL, and replays nothing', async () => {
    const res = await t.http
      .post('/admin/dead-letters/replay')
      .set(auth)
      .send({ event_type: 'invoice.paid\u0000', dry_run: false });
    expect([res.status, res.body.error, res.body.message]).toEqual([
      400,
      'invalid_request',
      'event_type must not contain a NUL character.',
    ]);
    expect((await t.http.get('/admin/audit-log').set(auth)).body.items).toEqual([]);
  });

  it('answers 400 for a dead-letter id holding NUL (dead-letter ids are UUIDs)', async () => {
    const res = await t.http.get('/admin/dead-letters/00000000-0000-4000-8000-00000000000%00').set(auth);
    expect([res.status, res.body.error]).toEqual([400, 'invalid_request']);
  });
});
