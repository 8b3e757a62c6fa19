import { SchedulerRegistry } from '@nestjs/schedule';
import { RETRY_JOB_NAME, RetryWorker } from '../../src/queue/retry-worker.service';
import type { EventHandler } from '../../src/queue/handler-registry';
import { createTestDatabase, TestDatabase } from '../support/database';
import { eventState, FAST_QUEUE } from '../support/queue';
import { randomId, stripeEvent } from '../support/stripe';
import { startTestApp, TestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

/**
 * The retry worker as it runs in production: registered from RETRY_CRON at boot and driven only by
 * its ticks (no test calls drain()). A failed attempt is not picked up by anything else, which the
 * control app (whose cron never fires) shows.
 */
describe('retry worker on RETRY_CRON', () => {
  const failures = new Map<string, number>();
  // Fails the first two attempts of each event, then succeeds.
  const flaky: EventHandler = (event) => {
    const n = (failures.get(event.id) ?? 0) + 1;
    failures.set(event.id, n);
    return n <= 2 ? Promise.reject(new Error(`transient failure ${n}`)) : Promise.resolve();
  };
  let db: TestDatabase;
  let idleDb: TestDatabase;
  let t: TestApp;
  let idle: TestApp;

  beforeAll(async () => {
    [db, idleDb] = await Promise.all([createTestDatabase(), createTestDatabase()]);
    // A 6-field expression (seconds first): a tick every second.
    t = await startTestApp(db.url, { ...FAST_QUEUE, RETRY_CRON: '* * * * * *' }, { 'test.flaky': flaky });
    idle = await startTestApp(idleDb.url, FAST_QUEUE, { 'test.flaky': flaky });
  });
  afterAll(async () => {
    await Promise.all([t.close(), idle.close()]);
    await Promise.all([db.drop(), idleDb.drop()]);
  });

  it('registers the job from the configured expression', () => {
    const job = t.app.get(SchedulerRegistry).getCronJob(RETRY_JOB_NAME);
    expect(job.cronTime.source).toBe('* * * * * *');
    expect(job.isActive).toBe(true);
    expect(idle.app.get(SchedulerRegistry).getCronJob(RETRY_JOB_NAME).cronTime.source).toBe(FAST_QUEUE.RETRY_CRON);
  });

  it('retries a failed event on its ticks until it is processed', async () => {
    const event = stripeEvent('test.flaky', { id: randomId('obj') });
    const control = stripeEvent('test.flaky', { id: randomId('obj') });
    expect((await t.deliver(event)).status).toBe(200);
    expect((await idle.deliver(control)).status).toBe(200);

    const state = await waitUntil(
      async () => {
        const s = await eventState(db.pool, event.id as string);
        return s?.status === 'processed' ? s : undefined;
      },
      15_000,
      'processed by the cron-driven retries',
    );
    expect(state).toEqual({ status: 'processed', attempts: 3, last_error: null });

    // Same handler, same due retry, but a cron that never fires: only the immediate attempt ran.
    expect(await eventState(idleDb.pool, control.id as string)).toEqual({
      status: 'pending',
      attempts: 1,
      last_error: 'Error: transient failure 1',
    });
  });

  it('never runs two drains at once on a replica: a tick during a drain joins it', async () => {
    const worker = t.app.get(RetryWorker);
    const first = worker.drain();
    expect(worker.drain()).toBe(first);
    await first;
    await worker.whenDrained();
  });
});
