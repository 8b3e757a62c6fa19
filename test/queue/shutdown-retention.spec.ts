import { HandlerRegistry } from '../../src/queue/handler-registry';
import { RetentionService } from '../../src/queue/retention.service';
import { count, createTestDatabase, TestDatabase } from '../support/database';
import { FAST_QUEUE, settle } from '../support/queue';
import { randomId, stripeEvent } from '../support/stripe';
import { startTestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

describe('shutdown', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query('CREATE TABLE test_effects (event_id text NOT NULL)');
  });
  afterAll(() => db.drop());

  it('closing under load finishes what runs and loses nothing: a new replica handles the rest', async () => {
    const slowHandler =
      (ms: number) =>
      async (event: { id: string }, manager: { query: (q: string, p: unknown[]) => Promise<unknown> }) => {
        await new Promise((resolve) => setTimeout(resolve, ms));
        await manager.query('INSERT INTO test_effects VALUES ($1)', [event.id]);
      };
    const first = await startTestApp(db.url, FAST_QUEUE);
    first.app.get(HandlerRegistry).register('test.slow', slowHandler(150));
    const events = Array.from({ length: 40 }, () => stripeEvent('test.slow', { id: randomId('obj') }));
    const acks = await Promise.all(events.map((e) => first.deliver(e)));
    expect(acks.every((r) => r.status === 200)).toBe(true);
    await first.close(); // while most are still queued or running

    // Nothing left held by the closed replica: every row is either done or free to take.
    expect(await count(db.pool, 'webhook_retry_queue', 'lock_token IS NOT NULL AND next_retry_at > now()')).toBe(0);
    const doneByFirst = await count(db.pool, 'subscription_events', `status = 'processed'`);
    expect(doneByFirst).toBeGreaterThan(0);

    const second = await startTestApp(db.url, FAST_QUEUE, { 'test.slow': slowHandler(1) });
    try {
      for (const event of events) {
        expect(await settle(second, db.pool, event.id as string)).toMatchObject({ status: 'processed' });
      }
      expect(await count(db.pool, 'test_effects')).toBe(40);
      expect(await count(db.pool, 'subscription_events', 'attempts <> 1')).toBe(0);
    } finally {
      await second.close();
    }
  });
});

describe('retention', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  it('prunes processed and ignored events older than EVENT_RETENTION_DAYS, never pending, dead or discarded', async () => {
    const insert = (id: string, status: string, processedDaysAgo: number | null) =>
      db.pool.query(
        `INSERT INTO subscription_events (stripe_event_id, event_type, status, payload, received_at, processed_at)
         VALUES ($1, 'x', $2, '{}', now() - interval '40 days',
                 CASE WHEN $3::int IS NULL THEN NULL ELSE now() - $3::int * interval '1 day' END)`,
        [id, status, processedDaysAgo],
      );
    await insert('old_processed', 'processed', 31);
    await insert('old_ignored', 'ignored', 40);
    await insert('recent_processed', 'processed', 29);
    await insert('old_pending', 'pending', null);
    await insert('old_dead', 'dead', null);
    await insert('old_discarded', 'discarded', null);
    for (let i = 0; i < 12_000; i++) {
      if (i % 4000 === 0) {
        await db.pool.query(
          `INSERT INTO subscription_events (stripe_event_id, event_type, status, payload, processed_at)
           SELECT 'bulk_' || g, 'x', 'processed', '{}', now() - interval '60 days' FROM generate_series($1::int, $1::int + 3999) g`,
          [i],
        );
      }
    }
    const t = await startTestApp(db.url, { EVENT_RETENTION_DAYS: '30' });
    try {
      const retention = t.app.get(RetentionService);
      // Two replicas at once: one prunes, the other sees the lock taken and skips.
      const results = await Promise.all([retention.prune(), retention.prune()]);
      expect(results).toContainEqual(12_002);
      expect(results.filter((r) => r === null).length + results.filter((r) => r === 0).length).toBe(1);
      const { rows } = await db.pool.query<{ stripe_event_id: string }>(
        'SELECT stripe_event_id FROM subscription_events ORDER BY 1',
      );
      expect(rows.map((r) => r.stripe_event_id)).toEqual([
        'old_dead',
        'old_discarded',
        'old_pending',
        'recent_processed',
      ]);
      expect(await retention.prune()).toBe(0);
    } finally {
      await t.close();
    }
  });

  it('prunes on RETENTION_CRON by itself', async () => {
    await db.pool.query(
      `INSERT INTO subscription_events (stripe_event_id, event_type, status, payload, processed_at)
       VALUES ('cron_old', 'x', 'processed', '{}', now() - interval '40 days')`,
    );
    const t = await startTestApp(db.url, { EVENT_RETENTION_DAYS: '30', RETENTION_CRON: '* * * * * *' });
    try {
      await waitUntil(
        async () => (await count(db.pool, 'subscription_events', `stripe_event_id = 'cron_old'`)) === 0,
        5_000,
        'pruned by the schedule',
      );
    } finally {
      await t.close();
    }
  });

  it('a shutdown stops a pruning run between batches, and the next run deletes the rest', async () => {
    const old = `stripe_event_id LIKE 'stop_%'`;
    await db.pool.query(
      `INSERT INTO subscription_events (stripe_event_id, event_type, status, payload, processed_at)
       SELECT 'stop_' || g, 'x', 'processed', '{}', now() - interval '60 days' FROM generate_series(1, 50000) g`,
    );
    const first = await startTestApp(db.url, { EVENT_RETENTION_DAYS: '30' });
    let stopped: number | null;
    try {
      const run = first.app.get(RetentionService).prune();
      await waitUntil(async () => (await count(db.pool, 'subscription_events', old)) < 50_000, 5_000, 'a first batch');
      await first.close();
      stopped = await run;
    } catch (error) {
      await first.close();
      throw error;
    }
    expect(stopped).toBeGreaterThan(0);
    expect(stopped).toBeLessThan(50_000);
    expect(await count(db.pool, 'subscription_events', old)).toBe(50_000 - (stopped ?? 0));

    const next = await startTestApp(db.url, { EVENT_RETENTION_DAYS: '30' });
    try {
      expect(await next.app.get(RetentionService).prune()).toBe(50_000 - (stopped ?? 0));
      expect(await count(db.pool, 'subscription_events', old)).toBe(0);
    } finally {
      await next.close();
    }
  });
});
