import { AlertReceiver } from '../support/alert-receiver';
import { deliverAndSettle, entitlementsOf } from '../support/billing';
import { count } from '../support/database';
import { fixtureEvent, newWorld, subscriptionEvent, World } from '../support/fixtures';
import { settle } from '../support/queue';
import { ADMIN_TOKEN, useTestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

describe('billing: each event type moves the state as documented', () => {
  let alerts: AlertReceiver;
  beforeAll(async () => {
    alerts = await AlertReceiver.start();
  });
  const { db, t } = useTestApp(() => ({ ALERT_WEBHOOK_URL: alerts.url }));
  afterAll(() => alerts.close()); // after the service has closed (it flushes its alerts then)

  const apply = async (name: string, world: World): Promise<void> => {
    expect(await deliverAndSettle(t, db.pool, fixtureEvent(name, world) as { id: string })).toBe('processed');
  };
  const customerView = (w: World) => entitlementsOf(t, `/v1/customers/${w.customer}/entitlements`);
  const userView = (w: World) => entitlementsOf(t, `/v1/users/${w.user}/entitlements`);

  it('walks a paid subscription from sign-up to deletion', async () => {
    const w = newWorld();
    expect((await customerView(w)).status).toBe(404);

    await apply('customer.created', w);
    const { rows: customers } = await db.pool.query(
      'SELECT email, user_id, deleted FROM customers WHERE stripe_customer_id = $1',
      [w.customer],
    );
    expect(customers).toEqual([{ email: 'ada@example.com', user_id: w.user, deleted: false }]);
    expect((await customerView(w)).body).toMatchObject({ active: false, status: null, subscription_ids: [] });

    await apply('customer.subscription.created', w);
    expect((await customerView(w)).body).toMatchObject({
      active: false,
      status: 'incomplete',
      subscription_ids: [w.subscription],
      features: [],
    });

    await apply('invoice.payment_succeeded', w);
    const { rows: firstInvoice } = await db.pool.query(
      'SELECT status, billing_reason, stripe_subscription_id, period_start, period_end FROM invoices WHERE stripe_invoice_id = $1',
      [w.firstInvoice],
    );
    expect(firstInvoice).toEqual([
      {
        status: 'paid',
        billing_reason: 'subscription_create',
        stripe_subscription_id: w.subscription,
        period_start: new Date('2026-01-01T00:00:00Z'),
        period_end: new Date('2026-02-01T00:00:00Z'),
      },
    ]);

    await apply('customer.subscription.updated', w);
    expect((await customerView(w)).body).toEqual({
      customer_id: w.customer,
      user_id: w.user,
      active: true,
      status: 'active',
      subscription_ids: [w.subscription],
      price_ids: ['price_1QProMonthly01'],
      product_ids: ['prod_ProPlan0001'],
      features: ['api_access', 'pro_monthly', 'reports'],
      current_period_end: '2026-02-01T00:00:00.000Z',
      cancel_at_period_end: false,
      updated_at: expect.stringMatching(/Z$/),
    });

    await apply('checkout.session.completed.subscription', w);
    expect((await userView(w)).body).toMatchObject({ customer_id: w.customer, user_id: w.user, active: true });

    await apply('entitlements.active_entitlement_summary.updated', w);
    expect((await customerView(w)).body.features).toEqual(['api_access', 'reports']);

    await apply('invoice.payment_failed', w);
    const failedAlert = await waitUntil(() => alerts.messages.find((m) => m.text.includes(w.renewalInvoice)), 5_000);
    expect(failedAlert.text).toContain(`customer ${w.customer}`);
    expect(failedAlert.text).toContain('attempt 1');
    const { rows: failed } = await db.pool.query(
      'SELECT status, attempt_count, payment_failed_at IS NOT NULL AS failed FROM invoices WHERE stripe_invoice_id = $1',
      [w.renewalInvoice],
    );
    expect(failed).toEqual([{ status: 'open', attempt_count: 1, failed: true }]);

    await apply('invoice.paid', w);
    const { rows: renewal } = await db.pool.query(
      'SELECT status, attempt_count, period_start, period_end, paid_at IS NOT NULL AS paid FROM invoices WHERE stripe_invoice_id = $1',
      [w.renewalInvoice],
    );
    expect(renewal).toEqual([
      {
        status: 'paid',
        attempt_count: 2,
        period_start: new Date('2026-02-01T00:00:00Z'),
        period_end: new Date('2026-03-01T00:00:00Z'),
        paid: true,
      },
    ]);

    await apply('customer.updated', w);
    const { rows: updated } = await db.pool.query('SELECT email FROM customers WHERE stripe_customer_id = $1', [
      w.customer,
    ]);
    expect(updated).toEqual([{ email: 'ada.lovelace@example.com' }]);

    await apply('customer.subscription.deleted', w);
    expect((await customerView(w)).body).toMatchObject({
      active: false,
      status: 'canceled',
      subscription_ids: [w.subscription],
    });

    await apply('customer.deleted', w);
    const { rows: gone } = await db.pool.query('SELECT deleted FROM customers WHERE stripe_customer_id = $1', [
      w.customer,
    ]);
    expect(gone).toEqual([{ deleted: true }]);
    expect((await customerView(w)).body).toMatchObject({ active: false, features: [] });
    // Exactly one alert for the one failed payment.
    expect(alerts.messages.filter((m) => m.text.includes(w.renewalInvoice))).toHaveLength(1);
  });

  it('walks a trial that pauses without a payment method and resumes', async () => {
    const w = newWorld();
    await apply('customer.subscription.trial_will_end', w);
    expect((await customerView(w)).body).toMatchObject({ active: true, status: 'trialing' });
    await apply('customer.subscription.paused', w);
    expect((await customerView(w)).body).toMatchObject({ active: false, status: 'paused', features: [] });
    await apply('customer.subscription.resumed', w);
    expect((await customerView(w)).body).toMatchObject({
      active: true,
      status: 'active',
      current_period_end: '2026-03-01T00:00:00.000Z',
    });
  });

  it('reads a legacy-version subscription (period at the top level)', async () => {
    const w = newWorld();
    await apply('customer.subscription.updated.legacy', w);
    expect((await customerView(w)).body).toMatchObject({
      active: true,
      current_period_end: '2026-02-01T00:00:00.000Z',
    });
  });

  it('applies updated(active) delivered before created(incomplete): active', async () => {
    const w = newWorld();
    await apply('customer.subscription.updated', w);
    await apply('customer.subscription.created', w);
    expect((await customerView(w)).body).toMatchObject({ active: true, status: 'active' });
  });

  it('keeps a deletion final: older and newer updates after it change nothing', async () => {
    const w = newWorld();
    const deleted = subscriptionEvent('customer.subscription.deleted', w, {
      status: 'canceled',
      created: 1_772_323_202,
    });
    await deliverAndSettle(t, db.pool, deleted as { id: string });
    for (const created of [1_767_225_660, 1_772_400_000]) {
      await deliverAndSettle(
        t,
        db.pool,
        subscriptionEvent('customer.subscription.updated', w, { status: 'active', created }) as { id: string },
      );
    }
    expect((await customerView(w)).body).toMatchObject({ active: false, status: 'canceled' });
  });

  it('applies a newer deletion after a terminal update(canceled), but no older deletion or later update', async () => {
    const w = newWorld();
    const send = (type: string, status: string, created: number) =>
      deliverAndSettle(t, db.pool, subscriptionEvent(type, w, { status, created }) as { id: string });
    const stored = async () =>
      (
        await db.pool.query('SELECT status, ended_at, deleted FROM subscriptions WHERE stripe_subscription_id = $1', [
          w.subscription,
        ])
      ).rows;
    await send('customer.subscription.updated', 'canceled', 1_772_300_000); // terminal: deleted from here on
    const deletion = subscriptionEvent('customer.subscription.deleted', w, {
      status: 'canceled',
      created: 1_772_323_202,
    });
    await deliverAndSettle(t, db.pool, deletion as { id: string });
    const newest = [{ status: 'canceled', ended_at: new Date(1_772_323_202_000), deleted: true }];
    expect(await stored()).toEqual(newest);
    await send('customer.subscription.deleted', 'canceled', 1_772_310_000); // an older deletion
    await send('customer.subscription.updated', 'active', 1_772_400_000); // a newer non-deletion
    expect(await stored()).toEqual(newest);
    expect((await customerView(w)).body).toMatchObject({ active: false, status: 'canceled' });
  });

  it('applies the current event again when an operator reprocesses it (after a handler fix)', async () => {
    const w = newWorld();
    const updated = fixtureEvent('customer.subscription.updated', w);
    await deliverAndSettle(t, db.pool, updated as { id: string });
    // What a buggy handler might have stored:
    await db.pool.query(
      `UPDATE subscriptions SET price_features = '{}', lookup_keys = '{}' WHERE stripe_subscription_id = $1`,
      [w.subscription],
    );
    const res = await t.http
      .post(`/admin/events/${updated.id as string}/reprocess`)
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`);
    expect(res.status).toBe(202);
    await settle(t, db.pool, updated.id as string);
    expect((await customerView(w)).body.features).toEqual(['api_access', 'pro_monthly', 'reports']);
  });

  it('applies a deletion even when it is older than the stored state: deletion is final', async () => {
    const w = newWorld();
    await deliverAndSettle(
      t,
      db.pool,
      subscriptionEvent('customer.subscription.updated', w, { status: 'active', created: 1_772_500_000 }) as {
        id: string;
      },
    );
    await deliverAndSettle(
      t,
      db.pool,
      subscriptionEvent('customer.subscription.deleted', w, { status: 'canceled', created: 1_772_323_202 }) as {
        id: string;
      },
    );
    expect((await customerView(w)).body).toMatchObject({ active: false, status: 'canceled' });
  });

  it('resolves events of the same second deterministically: update beats creation, deletion beats update', async () => {
    const w = newWorld();
    const second = 1_767_225_600;
    await deliverAndSettle(
      t,
      db.pool,
      subscriptionEvent('customer.subscription.updated', w, { status: 'active', created: second }) as { id: string },
    );
    await deliverAndSettle(
      t,
      db.pool,
      subscriptionEvent('customer.subscription.created', w, { status: 'incomplete', created: second }) as {
        id: string;
      },
    );
    expect((await customerView(w)).body).toMatchObject({ status: 'active' });
    const later = second + 100;
    await deliverAndSettle(
      t,
      db.pool,
      subscriptionEvent('customer.subscription.deleted', w, { status: 'canceled', created: later }) as { id: string },
    );
    await deliverAndSettle(
      t,
      db.pool,
      subscriptionEvent('customer.subscription.updated', w, { status: 'past_due', created: later }) as { id: string },
    );
    expect((await customerView(w)).body).toMatchObject({ status: 'canceled', active: false });
  });

  it('stores an invoice whose subscription and customer are not known yet, and knows the customer from it', async () => {
    const w = newWorld();
    await apply('invoice.paid', w);
    expect(await count(db.pool, 'invoices', 'stripe_invoice_id = $1', [w.renewalInvoice])).toBe(1);
    expect((await customerView(w)).body).toMatchObject({ customer_id: w.customer, active: false, status: null });
    // The subscription arrives later: the stored invoice is still there and the state is right.
    await apply('customer.subscription.updated', w);
    expect((await customerView(w)).body).toMatchObject({ active: true });
  });

  it('replaces price features with the entitlement summary; an older summary does not overwrite a newer one', async () => {
    const w = newWorld();
    await apply('customer.subscription.updated', w);
    expect((await customerView(w)).body.features).toEqual(['api_access', 'pro_monthly', 'reports']);
    const newer = fixtureEvent('entitlements.active_entitlement_summary.updated', w);
    newer.created = 1_767_700_000;
    newer.data.object.entitlements.data = [newer.data.object.entitlements.data[0]]; // only "reports"
    await deliverAndSettle(t, db.pool, newer as { id: string });
    const older = fixtureEvent('entitlements.active_entitlement_summary.updated', w); // created 1767614400
    await deliverAndSettle(t, db.pool, older as { id: string });
    expect((await customerView(w)).body.features).toEqual(['reports']);
  });

  it("knows a customer first seen in an entitlement summary, and keeps the summary's features once a subscription arrives", async () => {
    const w = newWorld();
    await apply('entitlements.active_entitlement_summary.updated', w);
    const alone = await customerView(w);
    expect(alone.status).toBe(200);
    expect(alone.body).toMatchObject({
      customer_id: w.customer,
      active: false,
      status: null,
      subscription_ids: [],
      features: ['api_access', 'reports'],
    });
    // The subscription's prices would give api_access, pro_monthly and reports: the summary wins.
    await apply('customer.subscription.updated', w);
    expect((await customerView(w)).body).toMatchObject({
      active: true,
      status: 'active',
      subscription_ids: [w.subscription],
      features: ['api_access', 'reports'],
    });
  });

  it('keeps the newer customer state when customer.created arrives after customer.updated', async () => {
    const w = newWorld();
    await apply('customer.updated', w); // created 1770717600, email ada.lovelace@example.com
    await apply('customer.created', w); // created 1767225505, email ada@example.com
    const { rows } = await db.pool.query(
      'SELECT email, user_id, deleted FROM customers WHERE stripe_customer_id = $1',
      [w.customer],
    );
    expect(rows).toEqual([{ email: 'ada.lovelace@example.com', user_id: w.user, deleted: false }]);
  });

  it('keeps a customer deletion final against older and newer customer.created/updated', async () => {
    const w = newWorld();
    await apply('customer.deleted', w); // created 1772409600
    await apply('customer.created', w);
    await apply('customer.updated', w);
    const newer = fixtureEvent('customer.updated', w);
    newer.created = 1_772_500_000;
    newer.data.object.email = 'ada.back@example.com';
    await deliverAndSettle(t, db.pool, newer as { id: string });
    const { rows } = await db.pool.query('SELECT deleted, email FROM customers WHERE stripe_customer_id = $1', [
      w.customer,
    ]);
    expect(rows).toEqual([{ deleted: true, email: 'ada.lovelace@example.com' }]);
  });

  it('answers active:false for a deleted customer whose subscription is still active', async () => {
    const w = newWorld();
    await apply('customer.subscription.updated', w);
    expect((await customerView(w)).body).toMatchObject({ active: true });
    await apply('customer.deleted', w);
    // Stripe cancels the subscriptions of a deleted customer: never 'active' next to active:false.
    const expected = { active: false, status: 'canceled', subscription_ids: [w.subscription], features: [] };
    expect((await customerView(w)).body).toMatchObject(expected);
    expect((await userView(w)).body).toMatchObject(expected);
  });

  it('links users from checkout client_reference_id, customer metadata.user_id and subscription metadata.user_id', async () => {
    // 1. Checkout: a customer created without metadata, linked by the session.
    const viaCheckout = newWorld();
    const bare = fixtureEvent('customer.created', viaCheckout);
    bare.data.object.metadata = {};
    await deliverAndSettle(t, db.pool, bare as { id: string });
    const sub1 = fixtureEvent('customer.subscription.updated', viaCheckout);
    sub1.data.object.metadata = {};
    await deliverAndSettle(t, db.pool, sub1 as { id: string });
    expect((await userView(viaCheckout)).status).toBe(404);
    await apply('checkout.session.completed.subscription', viaCheckout);
    expect((await userView(viaCheckout)).body).toMatchObject({ customer_id: viaCheckout.customer, active: true });

    // 2. Customer metadata.
    const viaCustomer = newWorld();
    await apply('customer.created', viaCustomer);
    expect((await userView(viaCustomer)).body).toMatchObject({ customer_id: viaCustomer.customer, active: false });

    // 3. Subscription metadata only (the customer was never sent).
    const viaSubscription = newWorld();
    await apply('customer.subscription.updated', viaSubscription);
    expect((await userView(viaSubscription)).body).toMatchObject({
      customer_id: viaSubscription.customer,
      user_id: viaSubscription.user,
      active: true,
    });
  });

  it('links the checkout user to the subscription whether checkout.session.completed comes before or after it', async () => {
    // The customer belongs to user A (its metadata); the Checkout Session's client_reference_id is
    // user B; the subscription carries no user. B must reach the customer through the subscription
    // in either order.
    for (const checkoutFirst of [false, true]) {
      const w = newWorld();
      const userB = `${w.user}_checkout`;
      await apply('customer.created', w); // metadata.user_id = w.user (A)
      const subscription = fixtureEvent('customer.subscription.updated', w);
      subscription.data.object.metadata = {};
      const checkout = fixtureEvent('checkout.session.completed.subscription', w);
      checkout.data.object.client_reference_id = userB;
      for (const event of checkoutFirst ? [checkout, subscription] : [subscription, checkout]) {
        expect(await deliverAndSettle(t, db.pool, event as { id: string })).toBe('processed');
      }
      const viaCheckout = await entitlementsOf(t, `/v1/users/${userB}/entitlements`);
      expect([checkoutFirst, viaCheckout.status]).toEqual([checkoutFirst, 200]);
      expect(viaCheckout.body).toMatchObject({ customer_id: w.customer, user_id: userB, active: true });
      expect((await userView(w)).body).toMatchObject({ customer_id: w.customer, user_id: w.user, active: true });
    }
  });

  /** Alerts are posted after commit: a later alert that did arrive shows that an earlier one would have. */
  const alertsAfterSentinel = async (invoice: string): Promise<Array<{ text: string }>> => {
    const sentinel = newWorld();
    await apply('invoice.payment_failed', sentinel);
    await waitUntil(() => alerts.messages.find((m) => m.text.includes(sentinel.renewalInvoice)), 5_000);
    return alerts.messages.filter((m) => m.text.includes(invoice));
  };

  it('raises no alert for a payment failure older than the payment already recorded', async () => {
    const w = newWorld();
    await apply('invoice.paid', w); // created 1770170523
    await apply('invoice.payment_failed', w); // created 1769907604: not applied
    const { rows } = await db.pool.query('SELECT status FROM invoices WHERE stripe_invoice_id = $1', [
      w.renewalInvoice,
    ]);
    expect(rows).toEqual([{ status: 'paid' }]);
    expect(await alertsAfterSentinel(w.renewalInvoice)).toEqual([]);
  });

  it('alerts once per failed payment, not again when an operator reprocesses the event', async () => {
    const w = newWorld();
    const failed = fixtureEvent('invoice.payment_failed', w);
    expect(await deliverAndSettle(t, db.pool, failed as { id: string })).toBe('processed');
    await waitUntil(() => alerts.messages.find((m) => m.text.includes(w.renewalInvoice)), 5_000);
    const res = await t.http
      .post(`/admin/events/${failed.id as string}/reprocess`)
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`);
    expect(res.status).toBe(202);
    await settle(t, db.pool, failed.id as string);
    expect(await alertsAfterSentinel(w.renewalInvoice)).toHaveLength(1);
  });

  it('protects the entitlements API with the admin tokens and validates ids', async () => {
    const w = newWorld();
    await apply('customer.created', w);
    const res = await t.http.get(`/v1/customers/${w.customer}/entitlements`);
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('unauthorized');
    expect((await entitlementsOf(t, '/v1/users/nobody_at_all/entitlements')).status).toBe(404);
    // 404 for an unknown customer or user; an id over 255 characters can never be known.
    for (const path of [`/v1/customers/${'x'.repeat(300)}/entitlements`, `/v1/users/${'u'.repeat(300)}/entitlements`]) {
      const long = await entitlementsOf(t, path);
      expect([long.status, long.body.error]).toEqual([404, 'not_found']);
    }
  });
});
