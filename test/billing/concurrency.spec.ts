import { Dispatcher } from '../../src/queue/dispatcher.service';
import { RetryWorker } from '../../src/queue/retry-worker.service';
import { deliverAndSettle } from '../support/billing';
import { count, createTestDatabase, TestDatabase } from '../support/database';
import { fixtureEvent, newWorld, subscriptionEvent } from '../support/fixtures';
import { startTestApp, TestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

describe('billing under concurrency', () => {
  let db: TestDatabase;
  let apps: TestApp[];

  beforeAll(async () => {
    db = await createTestDatabase();
    // Two replicas that each run one attempt at a time.
    apps = [
      await startTestApp(db.url, { WORKER_CONCURRENCY: '1', RETRY_CRON: '0 0 1 1 *' }),
      await startTestApp(db.url, { WORKER_CONCURRENCY: '1', RETRY_CRON: '0 0 1 1 *' }),
    ];
  });
  afterAll(async () => {
    await Promise.all(apps.map((a) => a.close()));
    await db.drop();
  });

  it('created and updated for one subscription, handled at the same moment on two replicas: one row, newest state', async () => {
    for (let round = 0; round < 10; round++) {
      const w = newWorld();
      await deliverAndSettle(apps[0], db.pool, fixtureEvent('customer.created', w) as { id: string });
      const created = subscriptionEvent('customer.subscription.created', w, {
        status: 'incomplete',
        created: 1_767_225_601,
      });
      const updated = subscriptionEvent('customer.subscription.updated', w, {
        status: 'active',
        created: 1_767_225_660,
      });
      // Both queued, then the subscriptions table is locked so that both attempts reach their upsert
      // and wait there together; releasing the lock lets them race for the row.
      for (const event of round % 2 ? [created, updated] : [updated, created]) {
        const { rows } = await db.pool.query(
          `INSERT INTO subscription_events (stripe_event_id, event_type, payload, event_created_at)
           VALUES ($1, $2, $3, to_timestamp($4)) RETURNING id`,
          [event.id, event.type, JSON.stringify(event), event.created],
        );
        await db.pool.query(
          'INSERT INTO webhook_retry_queue (event_id, stripe_event_id, event_type) VALUES ($1, $2, $3)',
          [rows[0].id, event.id, event.type],
        );
      }
      const locker = await db.pool.connect();
      let committed = false;
      try {
        await locker.query('BEGIN');
        await locker.query('LOCK TABLE subscriptions IN EXCLUSIVE MODE');
        // As the cron would: each drain keeps going until nothing is due, so it is awaited after the race.
        const drains = apps.map((a) => a.app.get(RetryWorker).drain());
        await waitUntil(
          async () =>
            (
              await db.pool.query(
                `SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND relation = 'subscriptions'::regclass`,
              )
            ).rows[0].n === 2,
          10_000,
          'both attempts waiting on the subscription row',
        );
        await locker.query('COMMIT');
        committed = true;
        await Promise.all(drains);
      } finally {
        if (!committed) {
          await locker.query('ROLLBACK');
        }
        locker.release();
      }
      await Promise.all(apps.map((a) => a.app.get(Dispatcher).whenIdle()));
      const { rows } = await db.pool.query('SELECT status FROM subscriptions WHERE stripe_subscription_id = $1', [
        w.subscription,
      ]);
      expect(rows).toEqual([{ status: 'active' }]);
      expect(
        await count(
          db.pool,
          'subscription_events',
          `stripe_event_id = ANY($1) AND status = 'processed' AND attempts = 1`,
          [[created.id, updated.id]],
        ),
      ).toBe(2);
    }
  });
});
