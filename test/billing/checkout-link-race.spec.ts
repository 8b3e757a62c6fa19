import { BillingRepository } from '../../src/billing/billing.repository';
import { subscriptionFromStripe } from '../../src/billing/stripe-objects';
import { Database, Executor } from '../../src/database/database';
import { fixtureEvent, newWorld, World } from '../support/fixtures';
import { useTestApp } from '../support/test-app';
import { TestTransaction } from '../support/transaction';
import { waitUntil } from '../support/wait';

/**
 * A Checkout Session's user link and its subscription's first event handled at the same moment (two
 * replicas): whichever transaction writes first, the other must not miss its uncommitted row.
 */
describe('linking a checkout user while another transaction inserts the subscription', () => {
  const { db, t } = useTestApp();

  const upsertSubscription = (manager: Executor, w: World): Promise<boolean> => {
    const event = fixtureEvent('customer.subscription.updated', w);
    event.data.object.metadata = {}; // no user of its own
    return t.app
      .get(BillingRepository)
      .upsertSubscription(manager, subscriptionFromStripe(event.data.object, event.type), {
        created: new Date(event.created * 1000),
        rank: 1,
        eventId: event.id as string,
      });
  };
  const linkUser = (manager: Executor, w: World): Promise<void> =>
    t.app.get(BillingRepository).linkUser(manager, w.customer, w.subscription, 'user_from_checkout');

  /** A customer already known (as after customer.created), so that its row does not order the two. */
  const knownCustomer = async (): Promise<World> => {
    const w = newWorld();
    await db.pool.query('INSERT INTO customers (stripe_customer_id, user_id) VALUES ($1, $2)', [w.customer, w.user]);
    return w;
  };

  /** Runs `first` in a transaction left open while `second` starts, then commits both. */
  async function race(first: (m: Executor) => Promise<unknown>, second: (m: Executor) => Promise<unknown>) {
    const database = t.app.get(Database);
    const runners = [await TestTransaction.open(database), await TestTransaction.open(database)];
    try {
      await runners[0].startTransaction();
      await first(runners[0].manager); // written, not committed yet
      await runners[1].startTransaction();
      const waiting = second(runners[1].manager);
      await waitingOnLock(); // it now waits for the first
      await runners[0].commitTransaction();
      await waiting;
      await runners[1].commitTransaction();
    } finally {
      runners.forEach((r) => r.release());
    }
  }

  /** Resolves once a session of this database waits on a lock. */
  const waitingOnLock = () =>
    waitUntil(
      async () =>
        (
          await db.pool.query(
            `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
          )
        ).rowCount,
      10_000,
      'a transaction waiting on a lock',
    );

  const linkedUser = async (w: World): Promise<unknown> =>
    (await db.pool.query('SELECT user_id FROM subscriptions WHERE stripe_subscription_id = $1', [w.subscription])).rows;

  it('keeps the link when the subscription insert is still uncommitted as the checkout links', async () => {
    const w = await knownCustomer();
    await race(
      (m) => upsertSubscription(m, w),
      (m) => linkUser(m, w),
    );
    expect(await linkedUser(w)).toEqual([{ user_id: 'user_from_checkout' }]);
  });

  it('keeps the link when the checkout link is still uncommitted as the subscription is inserted', async () => {
    const w = await knownCustomer();
    await race(
      (m) => linkUser(m, w),
      (m) => upsertSubscription(m, w),
    );
    expect(await linkedUser(w)).toEqual([{ user_id: 'user_from_checkout' }]);
  });

  it('links a known subscription while its update is uncommitted, taking its row before the link row', async () => {
    const w = await knownCustomer();
    await upsertSubscription(t.app.get(Database), w); // known, with no user of its own
    const database = t.app.get(Database);
    const runners = [await TestTransaction.open(database), await TestTransaction.open(database)];
    try {
      await runners[0].startTransaction();
      const newer = fixtureEvent('customer.subscription.updated', w);
      newer.data.object.metadata = {};
      await t.app
        .get(BillingRepository)
        .upsertSubscription(runners[0].manager, subscriptionFromStripe(newer.data.object, newer.type), {
          created: new Date((newer.created + 60) * 1000),
          rank: 1,
          eventId: `${newer.id as string}_newer`,
        }); // holds the subscription row
      await runners[1].startTransaction();
      const linking = linkUser(runners[1].manager, w);
      await waitingOnLock();
      // The checkout waits for the subscription row without holding the link row: had it taken the
      // link row first, the update (which may still need it) and the checkout would deadlock.
      const probe = await db.pool.connect();
      try {
        await probe.query('BEGIN');
        await expect(
          probe.query('SELECT 1 FROM subscription_user_links WHERE stripe_subscription_id = $1 FOR UPDATE NOWAIT', [
            w.subscription,
          ]),
        ).resolves.toMatchObject({ rowCount: 1 });
      } finally {
        await probe.query('ROLLBACK');
        probe.release();
      }
      await runners[0].commitTransaction();
      await linking;
      await runners[1].commitTransaction();
    } finally {
      runners.forEach((r) => r.release());
    }
    expect(await linkedUser(w)).toEqual([{ user_id: 'user_from_checkout' }]);
  });
});
