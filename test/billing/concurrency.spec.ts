import { Dispatcher } from '../../src/queue/dispatcher.service';
import { RetryWorker } from '../../src/queue/retry-worker.service';
import { deliverAndSettle } from '../support/billing';
import { count, createTestDatabase, TestDatabase } from '../support/database';
import { fixtureEvent, newWorld, subscriptionEvent } from '../support/fixtures';
import { enqueueEvents, raceOnTableLock } from '../support/queue';
import { startTestApp, TestApp } from '../support/test-app';

describe('billing under concurrency', () => {
  let db: TestDatabase;
  let apps: TestApp[];

  beforeAll(async () => {
    db = await createTestDatabase();
    // Two replicas that each hold and run one event at a time.
    const oneAtATime = { WORKER_CONCURRENCY: '1', WORKER_BATCH_SIZE: '1', RETRY_CRON: '0 0 1 1 *' };
    apps = [await startTestApp(db.url, oneAtATime), await startTestApp(db.url, oneAtATime)];
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
      // Both queued, then the two replicas are made to reach the subscription row together.
      await enqueueEvents(db.pool, round % 2 ? [created, updated] : [updated, created]);
      await raceOnTableLock(db.pool, 'subscriptions', 2, () => apps.map((a) => a.app.get(RetryWorker).drain()));
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
