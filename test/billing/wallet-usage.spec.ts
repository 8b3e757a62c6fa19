import { Dispatcher } from '../../src/queue/dispatcher.service';
import { RetryWorker } from '../../src/queue/retry-worker.service';
import { AlertReceiver } from '../support/alert-receiver';
import { deliverAndSettle } from '../support/billing';
import { count, createTestDatabase } from '../support/database';
import { fixtureEvent, newWorld, StripeJson, subscriptionEvent, World } from '../support/fixtures';
import { enqueueEvents, raceOnTableLock, settle } from '../support/queue';
import { ADMIN_TOKEN, startTestApp, useTestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

const auth = { Authorization: `Bearer ${ADMIN_TOKEN}` };

describe('wallet top-ups', () => {
  let alerts: AlertReceiver;
  beforeAll(async () => {
    alerts = await AlertReceiver.start();
  });
  const { db, t } = useTestApp(() => ({ ALERT_WEBHOOK_URL: alerts.url }));
  afterAll(() => alerts.close()); // after the service has closed (it flushes its alerts then)

  const session = (w: World) => fixtureEvent('checkout.session.completed.wallet_top_up', w);
  const intent = (w: World) => fixtureEvent('payment_intent.succeeded.wallet_top_up', w);
  const wallet = async (w: World) => (await t.http.get(`/v1/customers/${w.customer}/wallet`).set(auth)).body;
  const deliver = async (...events: StripeJson[]) => {
    for (const event of events) {
      expect(await deliverAndSettle(t, db.pool, event as { id: string })).toBe('processed');
    }
  };

  it.each([
    ['session first, then the intent', (w: World) => [session(w), intent(w)]],
    ['intent first, then the session', (w: World) => [intent(w), session(w)]],
  ])('credits once: %s, each delivered twice, plus a second event for the same intent', async (_name, order) => {
    const w = newWorld();
    const [first, second] = order(w);
    for (const event of [first, first, second, second]) {
      expect((await t.deliver(event)).status).toBe(200);
    }
    await deliver(intent(w)); // another event id, same PaymentIntent
    await t.app.get(Dispatcher).whenIdle();
    const body = await wallet(w);
    expect(body).toEqual({
      customer_id: w.customer,
      balances: { usd: 5000 },
      auto_recharge_payment_method: 'pm_1TopUpCard0001',
      entries: [
        {
          id: expect.any(String),
          amount: 5000,
          currency: 'usd',
          payment_intent: w.topUp,
          source_event_id: first.id,
          created_at: expect.stringMatching(/Z$/),
        },
      ],
    });
  });

  /** The PaymentIntent of a session created without payment_intent_data.metadata: no purpose on it. */
  const bareIntent = (w: World) => {
    const event = intent(w);
    event.data.object.metadata = {};
    return event;
  };

  it.each([
    ['session first, then the intent', (w: World) => [session(w), bareIntent(w)]],
    ['intent first, then the session', (w: World) => [bareIntent(w), session(w)]],
  ])(
    'saves the payment method of a top-up whose PaymentIntent lacks the purpose, credited once: %s',
    async (_name, order) => {
      const w = newWorld();
      const [first, second] = order(w);
      await deliver(first, first, second, second);
      const completed = [first, second].find((e) => e.type === 'checkout.session.completed') as StripeJson;
      expect(await wallet(w)).toEqual({
        customer_id: w.customer,
        balances: { usd: 5000 },
        auto_recharge_payment_method: 'pm_1TopUpCard0001',
        entries: [expect.objectContaining({ amount: 5000, payment_intent: w.topUp, source_event_id: completed.id })],
      });
    },
  );

  it('credits a session alone and leaves the method unknown (a webhook session names no payment method)', async () => {
    const w = newWorld();
    const completed = session(w);
    await deliver(completed);
    const body = await wallet(w);
    expect(body.balances).toEqual({ usd: 5000 });
    expect(body.auto_recharge_payment_method).toBeNull();
    expect(body.entries).toEqual([expect.objectContaining({ payment_intent: w.topUp, source_event_id: completed.id })]);
  });

  it('remembers the method of a PaymentIntent not known as a top-up for 30 days, pruning older ones', async () => {
    const w = newWorld();
    await db.pool.query(
      `INSERT INTO wallet_intent_payment_methods (payment_intent_id, payment_method_id, event_created, created_at)
       VALUES ($1, 'pm_old', now(), now() - interval '31 days'), ($2, 'pm_recent', now(), now() - interval '29 days')`,
      [`${w.topUp}_old`, `${w.topUp}_recent`],
    );
    const plain = fixtureEvent('payment_intent.succeeded.plain', w);
    plain.data.object.id = `${w.topUp}_plain`;
    await deliver(plain);
    const { rows } = await db.pool.query<{ payment_intent_id: string }>(
      'SELECT payment_intent_id FROM wallet_intent_payment_methods WHERE payment_intent_id LIKE $1 ORDER BY 1',
      [`${w.topUp}%`],
    );
    expect(rows.map((r) => r.payment_intent_id)).toEqual([`${w.topUp}_plain`, `${w.topUp}_recent`]);
    expect(await count(db.pool, 'wallet_ledger', 'stripe_customer_id = $1', [w.customer])).toBe(0);
  });

  it('adds different top-ups up, keeps currencies apart, and credits nothing for other payments', async () => {
    const w = newWorld();
    await deliver(intent(w));
    const second = intent(w);
    second.data.object.id = `${w.topUp}_second`;
    second.data.object.amount_received = 2500;
    const euros = intent(w);
    euros.data.object.id = `${w.topUp}_eur`;
    euros.data.object.currency = 'eur';
    euros.data.object.amount_received = 1000;
    const plain = fixtureEvent('payment_intent.succeeded.plain', w);
    await deliver(second, euros, plain, fixtureEvent('checkout.session.completed.subscription', w));
    const body = await wallet(w);
    expect(body.balances).toEqual({ eur: 1000, usd: 7500 });
    expect(body.entries).toHaveLength(3);
    expect(body.entries.map((e: { payment_intent: string }) => e.payment_intent)).not.toContain(plain.data.object.id);
  });

  it('records a failed top-up and raises an alert', async () => {
    const w = newWorld();
    const failed = fixtureEvent('payment_intent.payment_failed.wallet_top_up', w);
    await deliver(failed);
    const { rows } = await db.pool.query(
      'SELECT stripe_customer_id, failure_code, decline_code, failure_message FROM wallet_failed_top_ups WHERE payment_intent_id = $1',
      [w.failedTopUp],
    );
    expect(rows).toEqual([
      {
        stripe_customer_id: w.customer,
        failure_code: 'card_declined',
        decline_code: 'insufficient_funds',
        failure_message: 'Your card has insufficient funds.',
      },
    ]);
    const alert = await waitUntil(() => alerts.messages.find((m) => m.text.includes(w.failedTopUp)), 5_000);
    expect(alert.text).toContain('card_declined (insufficient_funds)');
    expect((await wallet(w)).balances).toEqual({});
  });

  it('records nothing and alerts nobody for a failed PaymentIntent that is not a top-up', async () => {
    const w = newWorld();
    const plain = fixtureEvent('payment_intent.payment_failed.wallet_top_up', w);
    plain.data.object.id = `${w.failedTopUp}_plain`;
    plain.data.object.metadata = {};
    await deliver(plain);
    // A top-up failure delivered after it: once its alert is in, one for the first would be too.
    const topUp = fixtureEvent('payment_intent.payment_failed.wallet_top_up', w);
    await deliver(topUp);
    await waitUntil(() => alerts.messages.find((m) => m.text.includes(`${w.failedTopUp} `)), 5_000);
    expect(alerts.messages.filter((m) => m.text.includes(`${w.failedTopUp}_plain`))).toEqual([]);
    expect(await count(db.pool, 'wallet_failed_top_ups', 'payment_intent_id = $1', [`${w.failedTopUp}_plain`])).toBe(0);
  });

  it('credits nothing for a paid one-time session without the top-up purpose', async () => {
    const w = newWorld();
    const purchase = session(w);
    purchase.data.object.metadata = {};
    await deliver(purchase);
    expect(await wallet(w)).toEqual({
      customer_id: w.customer,
      balances: {},
      auto_recharge_payment_method: null,
      entries: [],
    });
  });

  it('lists the newest 50 entries, newest first', async () => {
    const w = newWorld();
    await deliver(intent(w));
    // 51 more, an hour apart, all older than the one just credited.
    await db.pool.query(
      `INSERT INTO wallet_ledger (stripe_customer_id, payment_intent_id, amount, currency, source_event_id,
                                  source_event_type, created_at)
       SELECT $1, $2 || '_' || n, n, 'usd', 'evt_seeded', 'payment_intent.succeeded', now() - n * interval '1 hour'
         FROM generate_series(1, 51) AS n`,
      [w.customer, w.topUp],
    );
    const entries = (await wallet(w)).entries as Array<{ payment_intent: string; created_at: string }>;
    expect(entries.map((e) => e.payment_intent)).toEqual([
      w.topUp,
      ...Array.from({ length: 49 }, (_, i) => `${w.topUp}_${i + 1}`),
    ]);
    const times = entries.map((e) => e.created_at);
    expect([...times].sort().reverse()).toEqual(times);
  });

  it('alerts when a paid top-up cannot be credited (no customer on the session or the intent)', async () => {
    const w = newWorld();
    const guest = intent(w);
    guest.data.object.customer = null;
    await deliver(guest);
    const alert = await waitUntil(() => alerts.messages.find((m) => m.text.includes(w.topUp)), 5_000);
    expect(alert.text).toContain('cannot be credited');
    expect(await count(db.pool, 'wallet_ledger', 'payment_intent_id = $1', [w.topUp])).toBe(0);
  });

  it('raises no alert for a customer-less intent whose session already credited it', async () => {
    const w = newWorld();
    const guest = intent(w);
    guest.data.object.customer = null;
    await deliver(session(w), guest);
    // Another top-up that cannot be credited, delivered after it: once its alert is in, one for the
    // first would be too.
    const other = newWorld();
    const orphan = intent(other);
    orphan.data.object.customer = null;
    await deliver(orphan);
    await waitUntil(() => alerts.messages.find((m) => m.text.includes(other.topUp)), 5_000);
    expect(alerts.messages.filter((m) => m.text.includes(w.topUp))).toEqual([]);
    expect((await wallet(w)).balances).toEqual({ usd: expect.any(Number) });
    expect(await count(db.pool, 'wallet_ledger', 'payment_intent_id = $1', [w.topUp])).toBe(1);
  });

  it('answers 404 for an unknown customer and 401 without a token', async () => {
    expect((await t.http.get('/v1/customers/cus_nobody/wallet').set(auth)).status).toBe(404);
    expect((await t.http.get('/v1/customers/cus_nobody/wallet')).status).toBe(401);
  });
});

describe('wallet top-ups under concurrency', () => {
  it('the session and intent events of one top-up, handled at the same moment on two replicas: one credit', async () => {
    const db = await createTestDatabase();
    const apps = [
      await startTestApp(db.url, { WORKER_CONCURRENCY: '1', WORKER_BATCH_SIZE: '1', RETRY_CRON: '0 0 1 1 *' }),
      await startTestApp(db.url, { WORKER_CONCURRENCY: '1', WORKER_BATCH_SIZE: '1', RETRY_CRON: '0 0 1 1 *' }),
    ];
    try {
      for (let round = 0; round < 8; round++) {
        const w = newWorld();
        const events = [
          fixtureEvent('checkout.session.completed.wallet_top_up', w),
          fixtureEvent('payment_intent.succeeded.wallet_top_up', w),
        ];
        // Neither handler touches the customer row (already linked; no payment method to save), so
        // both reach the ledger together: the race its unique PaymentIntent id must settle.
        events[1].data.object.payment_method = null;
        await db.pool.query(
          `INSERT INTO customers (stripe_customer_id, user_id, email) VALUES ($1, $2, 'ada@example.com')`,
          [w.customer, w.user],
        );
        await enqueueEvents(db.pool, round % 2 ? events : [...events].reverse());
        await raceOnTableLock(db.pool, 'wallet_ledger', 2, () => apps.map((a) => a.app.get(RetryWorker).drain()));
        for (const event of events) {
          expect(await settle(apps[0], db.pool, event.id as string)).toMatchObject({
            status: 'processed',
            attempts: 1,
          });
        }
        expect(await count(db.pool, 'wallet_ledger', 'payment_intent_id = $1', [w.topUp])).toBe(1);
        const { rows } = await db.pool.query('SELECT balance FROM wallet_balances WHERE stripe_customer_id = $1', [
          w.customer,
        ]);
        expect(rows).toEqual([{ balance: '5000' }]);
      }
    } finally {
      await Promise.all(apps.map((a) => a.close()));
      await db.drop();
    }
  });
});

describe('the payment method of a top-up whose PaymentIntent lacks the purpose, under concurrency', () => {
  it('the session and the intent, each past its check of the other, on two replicas: the method is saved', async () => {
    const db = await createTestDatabase();
    const apps = [
      await startTestApp(db.url, { WORKER_CONCURRENCY: '1', WORKER_BATCH_SIZE: '1', RETRY_CRON: '0 0 1 1 *' }),
      await startTestApp(db.url, { WORKER_CONCURRENCY: '1', WORKER_BATCH_SIZE: '1', RETRY_CRON: '0 0 1 1 *' }),
    ];
    try {
      for (let round = 0; round < 4; round++) {
        const w = newWorld();
        const bare = fixtureEvent('payment_intent.succeeded.wallet_top_up', w);
        bare.data.object.metadata = {};
        const events = [fixtureEvent('checkout.session.completed.wallet_top_up', w), bare];
        await enqueueEvents(db.pool, round % 2 ? events : [...events].reverse());
        // Both events stop at the table of remembered methods (the session to claim one, the intent
        // to add one), unless one waits for the other before looking: two waits in either case.
        await raceOnTableLock(
          db.pool,
          'wallet_intent_payment_methods',
          2,
          () => apps.map((a) => a.app.get(RetryWorker).drain()),
          { anyLock: true },
        );
        for (const event of events) {
          expect(await settle(apps[0], db.pool, event.id as string)).toMatchObject({
            status: 'processed',
            attempts: 1,
          });
        }
        const { rows } = await db.pool.query(
          'SELECT auto_recharge_payment_method FROM customers WHERE stripe_customer_id = $1',
          [w.customer],
        );
        expect(rows).toEqual([{ auto_recharge_payment_method: 'pm_1TopUpCard0001' }]);
        expect(await count(db.pool, 'wallet_ledger', 'payment_intent_id = $1', [w.topUp])).toBe(1);
      }
    } finally {
      await Promise.all(apps.map((a) => a.close()));
      await db.drop();
    }
  });
});

describe('wallet top-ups racing with the user link', () => {
  it('the session (which links the user) and the intent, run at once on two replicas, never deadlock', async () => {
    const db = await createTestDatabase();
    const apps = [
      await startTestApp(db.url, {
        WORKER_CONCURRENCY: '1',
        WORKER_BATCH_SIZE: '1',
        RETRY_CRON: '0 0 1 1 *',
        RETRY_BASE_DELAY_SECONDS: '0.05',
      }),
      await startTestApp(db.url, {
        WORKER_CONCURRENCY: '1',
        WORKER_BATCH_SIZE: '1',
        RETRY_CRON: '0 0 1 1 *',
        RETRY_BASE_DELAY_SECONDS: '0.05',
      }),
    ];
    try {
      for (let round = 0; round < 12; round++) {
        const w = newWorld();
        // Known, but not linked to the user yet: the session's handler updates the customer row.
        await db.pool.query('INSERT INTO customers (stripe_customer_id) VALUES ($1)', [w.customer]);
        const events = [
          fixtureEvent('checkout.session.completed.wallet_top_up', w),
          fixtureEvent('payment_intent.succeeded.wallet_top_up', w),
        ];
        await enqueueEvents(db.pool, round % 2 ? events : [...events].reverse());
        await Promise.all(apps.map((a) => a.app.get(RetryWorker).drain()));
        for (const event of events) {
          // A deadlock would fail one attempt: it would end processed only on attempt 2.
          expect(await settle(apps[0], db.pool, event.id as string)).toMatchObject({
            status: 'processed',
            attempts: 1,
          });
        }
        expect(await count(db.pool, 'wallet_ledger', 'payment_intent_id = $1', [w.topUp])).toBe(1);
      }
    } finally {
      await Promise.all(apps.map((a) => a.close()));
      await db.drop();
    }
  });
});

describe('usage per billing period', () => {
  const { db, t } = useTestApp();

  const post = (w: World, body: unknown) =>
    t.http
      .post(`/v1/customers/${w.customer}/usage`)
      .set(auth)
      .send(body as object);
  const current = async (w: World) => (await t.http.get(`/v1/customers/${w.customer}/usage`).set(auth)).body;
  const JANUARY = { period_start: '2026-01-01T00:00:00.000Z', period_end: '2026-02-01T00:00:00.000Z' };
  const FEBRUARY = { period_start: '2026-02-01T00:00:00.000Z', period_end: '2026-03-01T00:00:00.000Z' };
  /** The subscription update that moves the period to February (as Stripe sends at renewal). */
  const movedToFebruary = (w: World): StripeJson => {
    const event = fixtureEvent('customer.subscription.updated', w);
    event.created = 1_769_904_100;
    for (const item of event.data.object.items.data) {
      item.current_period_start = 1_769_904_000;
      item.current_period_end = 1_772_323_200;
    }
    return event;
  };
  const subscribed = async (): Promise<World> => {
    const w = newWorld();
    await deliverAndSettle(t, db.pool, fixtureEvent('customer.subscription.updated', w) as { id: string });
    return w;
  };

  it('counts a repeated idempotency key once, and refuses the key with another quantity', async () => {
    const w = await subscribed();
    expect((await post(w, { quantity: 5, idempotency_key: 'k1' })).body).toEqual({ ...JANUARY, used: 5 });
    const again = await post(w, { quantity: 5, idempotency_key: 'k1' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ...JANUARY, used: 5 });
    expect((await post(w, { quantity: 2, idempotency_key: 'k2' })).body.used).toBe(7);
    const reused = await post(w, { quantity: 9, idempotency_key: 'k1' });
    expect(reused.status).toBe(409);
    expect(await current(w)).toEqual({ ...JANUARY, used: 7 });
  });

  it('sums 50 concurrent increments exactly', async () => {
    const w = await subscribed();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => post(w, { quantity: i + 1, idempotency_key: `concurrent-${i}` })),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect((await current(w)).used).toBe((50 * 51) / 2);
  });

  it('starts at zero when the renewal invoice is paid, once, also when replayed or after the subscription update', async () => {
    const w = await subscribed();
    await post(w, { quantity: 10, idempotency_key: 'jan' });
    const renewal = fixtureEvent('invoice.paid', w);
    await deliverAndSettle(t, db.pool, renewal as { id: string });
    expect(await current(w)).toEqual({ ...FEBRUARY, used: 0 });
    await post(w, { quantity: 3, idempotency_key: 'feb' });

    // The same invoice again: a redelivery under another event id, and an operator's reprocess.
    const redelivered = fixtureEvent('invoice.paid', w);
    await deliverAndSettle(t, db.pool, redelivered as { id: string });
    expect((await t.http.post(`/admin/events/${renewal.id as string}/reprocess`).set(auth)).status).toBe(202);
    await settle(t, db.pool, renewal.id as string);
    // The subscription update that moves the period arrives last.
    await deliverAndSettle(t, db.pool, movedToFebruary(w) as { id: string });
    expect(await current(w)).toEqual({ ...FEBRUARY, used: 3 });
  });

  it('starts at zero once when the subscription update comes before the paid renewal invoice', async () => {
    const w = await subscribed();
    await post(w, { quantity: 10, idempotency_key: 'jan' });
    await deliverAndSettle(t, db.pool, movedToFebruary(w) as { id: string });
    expect(await current(w)).toEqual({ ...FEBRUARY, used: 0 });
    await post(w, { quantity: 4, idempotency_key: 'feb' });
    await deliverAndSettle(t, db.pool, fixtureEvent('invoice.paid', w) as { id: string });
    await deliverAndSettle(t, db.pool, fixtureEvent('invoice.paid.legacy', w) as { id: string });
    expect(await current(w)).toEqual({ ...FEBRUARY, used: 4 });
  });

  it('has no current period once the subscription is deleted, also after a paid renewal: 409 conflict', async () => {
    const w = await subscribed();
    await post(w, { quantity: 10, idempotency_key: 'jan' });
    await deliverAndSettle(t, db.pool, fixtureEvent('invoice.paid', w) as { id: string });
    expect(await current(w)).toEqual({ ...FEBRUARY, used: 0 });
    await deliverAndSettle(t, db.pool, fixtureEvent('customer.subscription.deleted', w) as { id: string });
    const posted = await post(w, { quantity: 1, idempotency_key: 'after-end' });
    expect([posted.status, posted.body.error]).toEqual([409, 'conflict']);
    const got = await t.http.get(`/v1/customers/${w.customer}/usage`).set(auth);
    expect([got.status, got.body.error]).toEqual([409, 'conflict']);
    expect(await count(db.pool, 'usage_records', 'stripe_customer_id = $1', [w.customer])).toBe(1);
  });

  it('counts only under a subscription whose status grants access (ACCESS_STATUSES)', async () => {
    const w = newWorld();
    const incomplete = subscriptionEvent('customer.subscription.created', w, {
      status: 'incomplete',
      created: 1_767_225_601,
    });
    await deliverAndSettle(t, db.pool, incomplete as { id: string });
    const refused = await post(w, { quantity: 1, idempotency_key: 'too-early' });
    expect([refused.status, refused.body.error]).toEqual([409, 'conflict']);
    const pastDue = subscriptionEvent('customer.subscription.updated', w, {
      status: 'past_due',
      created: 1_767_225_700,
    });
    await deliverAndSettle(t, db.pool, pastDue as { id: string });
    expect((await post(w, { quantity: 2, idempotency_key: 'granted' })).body).toEqual({ ...JANUARY, used: 2 });
  });

  it('refuses invalid bodies with 400 invalid_request', async () => {
    const w = await subscribed();
    for (const body of [
      { quantity: 0, idempotency_key: 'a' },
      { quantity: -1, idempotency_key: 'a' },
      { quantity: 1.5, idempotency_key: 'a' },
      { quantity: '5', idempotency_key: 'a' },
      { quantity: 1e12, idempotency_key: 'a' },
      { quantity: 1 },
      { quantity: 1, idempotency_key: '' },
      { quantity: 1, idempotency_key: 'x'.repeat(256) },
      { quantity: 1, idempotency_key: 'a', extra: true },
    ]) {
      const res = await post(w, body);
      expect([body, res.status, res.body.error]).toEqual([body, 400, 'invalid_request']);
    }
    const malformed = await t.http
      .post(`/v1/customers/${w.customer}/usage`)
      .set(auth)
      .set('Content-Type', 'application/json')
      .send('{"quantity":');
    expect([malformed.status, malformed.body.error]).toEqual([400, 'invalid_request']);
    expect((await current(w)).used).toBe(0);
  });

  it('refuses both routes without a bearer token (401) and POST for an unknown customer (404)', async () => {
    const w = await subscribed();
    const anonymousPost = await t.http
      .post(`/v1/customers/${w.customer}/usage`)
      .send({ quantity: 1, idempotency_key: 'a' });
    expect(anonymousPost.status).toBe(401);
    expect((await t.http.get(`/v1/customers/${w.customer}/usage`)).status).toBe(401);
    const wrongToken = await t.http.get(`/v1/customers/${w.customer}/usage`).set('Authorization', 'Bearer wrong');
    expect(wrongToken.status).toBe(401);
    const unknown = await t.http
      .post('/v1/customers/cus_nobody/usage')
      .set(auth)
      .send({ quantity: 1, idempotency_key: 'a' });
    expect([unknown.status, unknown.body.error]).toEqual([404, 'not_found']);
    expect(await current(w)).toEqual({ ...JANUARY, used: 0 });
  });

  it('starts at zero when the renewal arrives as invoice.payment_succeeded (billing_reason subscription_cycle)', async () => {
    const w = await subscribed();
    await post(w, { quantity: 6, idempotency_key: 'jan' });
    const renewal = fixtureEvent('invoice.paid', w);
    renewal.type = 'invoice.payment_succeeded';
    expect(renewal.data.object.billing_reason).toBe('subscription_cycle');
    await deliverAndSettle(t, db.pool, renewal as { id: string });
    expect(await current(w)).toEqual({ ...FEBRUARY, used: 0 });
  });

  it('answers 404 for an unknown customer and 409 for a customer without a billing period', async () => {
    expect((await t.http.get('/v1/customers/cus_nobody/usage').set(auth)).status).toBe(404);
    const w = newWorld();
    await deliverAndSettle(t, db.pool, fixtureEvent('customer.created', w) as { id: string });
    const res = await post(w, { quantity: 1, idempotency_key: 'x' });
    expect([res.status, res.body.error]).toEqual([409, 'conflict']);
  });
});
