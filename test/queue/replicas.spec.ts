import { Client } from 'pg';
import { Database } from '../../src/database/database';
import { EventProcessor } from '../../src/queue/event-processor';
import { HandlerRegistry } from '../../src/queue/handler-registry';
import { QueueEvents } from '../../src/queue/queue-events';
import { QueueRepository } from '../../src/queue/queue.repository';
import { Dispatcher } from '../../src/queue/dispatcher.service';
import { RetryWorker } from '../../src/queue/retry-worker.service';
import { count, createTestDatabase, TestDatabase } from '../support/database';
import { eventState, FAST_QUEUE, settle } from '../support/queue';
import { startTestApp, TestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

/** Inserts `n` pending events of `type` with their queue rows, due now, as if received while no replica ran. */
async function enqueue(db: TestDatabase, type: string, n: number, prefix: string): Promise<void> {
  await db.pool.query(
    `WITH e AS (
       INSERT INTO subscription_events (stripe_event_id, event_type, payload)
       SELECT $1::text || g, $2::text, jsonb_build_object('id', $1::text || g, 'type', $2::text, 'object', 'event', 'created', 1767225600,
                                              'data', jsonb_build_object('object', jsonb_build_object('id', 'obj_' || g)))
         FROM generate_series(1, $3::int) g
       RETURNING id, stripe_event_id, event_type)
     INSERT INTO webhook_retry_queue (event_id, stripe_event_id, event_type) SELECT id, stripe_event_id, event_type FROM e`,
    [prefix, type, n],
  );
}

describe('many replicas sharing one queue', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query('CREATE TABLE test_effects (event_id text NOT NULL, replica text NOT NULL)');
  });
  afterAll(() => db.drop());

  it('three replicas drain 1,000 events: each handled once, none claimed twice (attempts = 1)', async () => {
    const apps: TestApp[] = [];
    const outcomes: string[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const app = await startTestApp(db.url, { ...FAST_QUEUE, WORKER_BATCH_SIZE: '50' });
        const replica = app.app.get(Dispatcher).replicaId;
        app.app
          .get(HandlerRegistry)
          .register('test.count', (event, manager) =>
            manager.query('INSERT INTO test_effects (event_id, replica) VALUES ($1, $2)', [event.id, replica]),
          );
        app.app.get(QueueEvents).subscribe({ attemptFinished: ({ outcome }) => outcomes.push(outcome) });
        apps.push(app);
      }
      await enqueue(db, 'test.count', 1000, 'evt_many_');
      await Promise.all(apps.map((app) => app.app.get(RetryWorker).drain()));
      await waitUntil(
        async () =>
          (await count(
            db.pool,
            'subscription_events',
            `stripe_event_id LIKE 'evt_many_%' AND status = 'processed'`,
          )) === 1000,
        60_000,
        'all 1,000 processed',
      );
      expect(await count(db.pool, 'test_effects')).toBe(1000);
      const { rows } = await db.pool.query(
        `SELECT count(DISTINCT event_id)::int AS events, count(DISTINCT replica)::int AS replicas FROM test_effects`,
      );
      expect(rows[0].events).toBe(1000);
      expect(rows[0].replicas).toBeGreaterThanOrEqual(2);
      expect(await count(db.pool, 'subscription_events', `stripe_event_id LIKE 'evt_many_%' AND attempts <> 1`)).toBe(
        0,
      );
      expect(outcomes.filter((o) => o !== 'processed')).toEqual([]);
      expect(await count(db.pool, 'webhook_retry_queue')).toBe(0);
    } finally {
      await Promise.all(apps.map((app) => app.close()));
    }
  });

  it('a replica that dies mid-handler: another takes the row once the lease runs out; the late settle changes nothing', async () => {
    const t = await startTestApp(db.url, { ...FAST_QUEUE, HANDLER_TIMEOUT_MS: '200' });
    try {
      t.app
        .get(HandlerRegistry)
        .register('test.crash', (event, manager) =>
          manager.query('INSERT INTO test_effects (event_id, replica) VALUES ($1, $2)', [event.id, 'survivor']),
        );
      await enqueue(db, 'test.crash', 1, 'evt_crash_');
      const queue = t.app.get(QueueRepository);
      const leaseMs = t.app.get(EventProcessor).leaseMs;

      // The doomed replica claims the row and starts its attempt: row deleted and an effect written, uncommitted.
      const [held] = await queue.claimDue(1, 'doomed-replica', leaseMs);
      const doomed = new Client({ connectionString: db.url });
      doomed.on('error', () => undefined);
      await doomed.connect();
      await doomed.query('BEGIN');
      await doomed.query('DELETE FROM webhook_retry_queue WHERE event_id = $1 AND lock_token = $2', [
        held.eventId,
        held.token,
      ]);
      await doomed.query(`INSERT INTO test_effects (event_id, replica) VALUES ('evt_crash_1', 'doomed')`);
      const pid = (await doomed.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      // … and dies: its connection goes away without commit (kill -9 of the process).
      await db.pool.query('SELECT pg_terminate_backend($1)', [pid]);
      await doomed.end().catch(() => undefined);

      // Within the lease nobody takes it.
      await t.app.get(RetryWorker).drain();
      await t.app.get(Dispatcher).whenIdle();
      expect(await eventState(db.pool, 'evt_crash_1')).toMatchObject({ status: 'pending', attempts: 0 });
      const { rows: leased } = await db.pool.query(
        'SELECT attempts, claims, locked_by FROM webhook_retry_queue WHERE event_id = $1',
        [held.eventId],
      );
      expect(leased).toEqual([{ attempts: 0, claims: 1, locked_by: 'doomed-replica' }]);

      // After the lease: claimed again and finished. The dead replica's run never reported a result: it
      // counts as a claim (which catches crash loops), not as an attempt.
      const state = await settle(t, db.pool, 'evt_crash_1', leaseMs + 10_000);
      expect(state).toEqual({ status: 'processed', attempts: 1, last_error: null });
      const { rows: effects } = await db.pool.query(`SELECT replica FROM test_effects WHERE event_id = 'evt_crash_1'`);
      expect(effects).toEqual([{ replica: 'survivor' }]);

      // The doomed replica's late writes, fenced on its old token, change nothing.
      expect(await t.app.get(EventProcessor).attempt(held)).toBe('lost');
      const late = {
        retry: await queue.scheduleRetry(held, 'late failure', 1),
        deadLetter: await queue.deadLetter(held, 'late death'),
        release: (await queue.release([held], true)) > 0,
      };
      expect(late).toEqual({ retry: false, deadLetter: null, release: false });
      expect(await eventState(db.pool, 'evt_crash_1')).toEqual({ status: 'processed', attempts: 1, last_error: null });
      expect(await count(db.pool, 'webhook_dead_letter_queue', `stripe_event_id = 'evt_crash_1'`)).toBe(0);
      expect(await count(db.pool, 'test_effects', `event_id = 'evt_crash_1'`)).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('a claim takes at most the rows asked for, and never one another replica holds', async () => {
    // The claim SQL alone, on a bare pool: no worker of an app claims alongside.
    const dataSource = new Database({ url: db.url, poolSize: 4, statementTimeoutMs: 10_000 });
    try {
      await enqueue(db, 'test.none', 30, 'evt_claim_');
      const queue = new QueueRepository(dataSource);
      const [a, b] = await Promise.all([queue.claimDue(10, 'a', 60_000), queue.claimDue(10, 'b', 60_000)]);
      expect(a).toHaveLength(10);
      expect(b).toHaveLength(10);
      const ids = new Set([...a, ...b].map((r) => r.eventId));
      expect(ids.size).toBe(20);
      const c = await queue.claimDue(100, 'c', 60_000);
      expect(c).toHaveLength(10);
      expect(await queue.claimDue(100, 'd', 60_000)).toEqual([]);
      await db.pool.query(`DELETE FROM webhook_retry_queue WHERE stripe_event_id LIKE 'evt_claim_%'`);
      await db.pool.query(`DELETE FROM subscription_events WHERE stripe_event_id LIKE 'evt_claim_%'`);
    } finally {
      await dataSource.end();
    }
  });
});
