import type { Executor } from '../../src/database/database';
import { Dispatcher } from '../../src/queue/dispatcher.service';
import { HandlerRegistry } from '../../src/queue/handler-registry';
import { RetentionService } from '../../src/queue/retention.service';
import { RetryWorker } from '../../src/queue/retry-worker.service';
import { count, createTestDatabase, TestDatabase } from '../support/database';
import { enqueueEvents, eventState, FAST_QUEUE, settle } from '../support/queue';
import { randomId, stripeEvent } from '../support/stripe';
import { startTestApp, TestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `n` queued events of `type` (see enqueueEvents). */
function enqueue(
  db: TestDatabase,
  type: string,
  n: number,
  options: { attempts?: number; claims?: number; dueInSeconds?: number } = {},
): Promise<string[]> {
  const events = Array.from({ length: n }, () => stripeEvent(type, { id: randomId('obj') }));
  return enqueueEvents(db.pool, events, options);
}

describe('failure modes of the processing engine', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query('CREATE TABLE test_effects (event_id text NOT NULL, note text)');
  });
  afterAll(() => db.drop());

  describe('with one app', () => {
    let t: TestApp;
    let registry: HandlerRegistry;
    beforeAll(async () => {
      t = await startTestApp(db.url, { ...FAST_QUEUE, RETRY_MAX_ATTEMPTS: '3', HANDLER_TIMEOUT_MS: '800' });
      registry = t.app.get(HandlerRegistry);
    });
    afterAll(() => t.close());

    it.each([
      [
        'an error that merely mentions a lost connection',
        () => Promise.reject(new Error('Connection terminated unexpectedly')),
      ],
      [
        'a network error of an HTTP call the handler made',
        () =>
          Promise.reject(
            Object.assign(new Error('fetch failed'), {
              cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }),
            }),
          ),
      ],
      [
        'a protocol error from a bad query (SQLSTATE 08P01)',
        (_e: unknown, m: Executor) => m.query('SELECT $1::int + $2::int', [1]),
      ],
    ])(
      'counts %s as a failed attempt while the database answers: it ends dead, not retried forever',
      async (_name, handler) => {
        const type = `test.misclassified.${randomId('t')}`;
        registry.register(type, handler);
        const event = stripeEvent(type, { id: randomId('obj') });
        await t.deliver(event);
        expect(await settle(t, db.pool, event.id as string, 10_000)).toMatchObject({ status: 'dead', attempts: 3 });
      },
    );

    it('an attempt that loses to a concurrent transaction (deadlock, serialization failure) runs again at once, uncounted', async () => {
      const runs = new Map<string, number>();
      // A real PostgreSQL error with the SQLSTATE a deadlock victim gets, on the first two runs.
      registry.register('test.conflict', async (event, manager) => {
        const n = (runs.get(event.id) ?? 0) + 1;
        runs.set(event.id, n);
        if (n <= 2) {
          await manager.query(`DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END $$`);
        }
        await manager.query('INSERT INTO test_effects (event_id) VALUES ($1)', [event.id]);
      });
      const event = stripeEvent('test.conflict', { id: randomId('obj') });
      await t.deliver(event);
      expect(await settle(t, db.pool, event.id as string)).toEqual({
        status: 'processed',
        attempts: 1,
        last_error: null,
      });
      expect(runs.get(event.id as string)).toBe(3);
      expect(await count(db.pool, 'test_effects', 'event_id = $1', [event.id])).toBe(1);

      // One that keeps losing is a failed attempt after its retries, retried later like any failure.
      registry.register('test.always_conflicts', (_event, manager) =>
        manager.query(`DO $$ BEGIN RAISE EXCEPTION 'could not serialize' USING ERRCODE = '40001'; END $$`),
      );
      const stuck = stripeEvent('test.always_conflicts', { id: randomId('obj') });
      await t.deliver(stuck);
      const failed = await waitUntil(async () => {
        const state = await eventState(db.pool, stuck.id as string);
        return state && state.attempts >= 1 ? state : undefined;
      }, 10_000);
      expect(failed.last_error).toContain('could not serialize');
    });

    it('a handler that throws synchronously leaves no timer behind to kill a later attempt on the same connection', async () => {
      // Two connections: the attempt after the thrower's reuses its connection when the old timer would fire.
      const small = await startTestApp(db.url, {
        ...FAST_QUEUE,
        DB_POOL_SIZE: '2',
        WORKER_CONCURRENCY: '1',
        HANDLER_TIMEOUT_MS: '800',
      });
      try {
        const handlers = small.app.get(HandlerRegistry);
        handlers.register('test.sync_throw', () => {
          throw new TypeError("Cannot read properties of undefined (reading 'x')");
        });
        handlers.register('test.long_ok', async (event, manager) => {
          await sleep(600);
          await manager.query('INSERT INTO test_effects (event_id) VALUES ($1)', [event.id]);
        });
        await small.deliver(stripeEvent('test.sync_throw', { id: randomId('obj') }));
        await small.app.get(Dispatcher).whenIdle();
        await sleep(300);
        const later = stripeEvent('test.long_ok', { id: randomId('obj') });
        await small.deliver(later); // runs from ~300 ms to ~900 ms; the thrower's timer was due at 800 ms
        expect(await settle(small, db.pool, later.id as string)).toEqual({
          status: 'processed',
          attempts: 1,
          last_error: null,
        });
      } finally {
        await small.close();
      }
    });

    it('a failed attempt commits nothing, even writes its handler issues after the failure', async () => {
      const seen = new Set<string>();
      registry.register('test.branches', async (event, manager) => {
        const first = !seen.has(event.id);
        seen.add(event.id);
        await Promise.all([
          (async () => {
            await sleep(10);
            if (first) {
              throw new Error('branch a failed');
            }
          })(),
          (async () => {
            // Still running when branch a fails: its next statement is issued after the attempt gave up.
            await manager.query('SELECT pg_sleep(0.05)');
            await manager.query('INSERT INTO test_effects (event_id, note) VALUES ($1, $2)', [
              event.id,
              first ? 'late write' : 'retry',
            ]);
          })(),
        ]);
      });
      const event = stripeEvent('test.branches', { id: randomId('obj') });
      await t.deliver(event);
      await sleep(300);
      expect(await count(db.pool, 'test_effects', `event_id = $1 AND note = 'late write'`, [event.id])).toBe(0);
      expect(await settle(t, db.pool, event.id as string)).toMatchObject({ status: 'processed', attempts: 2 });
      expect(await count(db.pool, 'test_effects', 'event_id = $1', [event.id])).toBe(1);
    });

    it('dead-letters a row claimed again after its last attempt never reported back (a crash loop), without running it', async () => {
      let ran = 0;
      registry.register('test.crash_loop', () => {
        ran++;
        return Promise.resolve();
      });
      const [id] = await enqueue(db, 'test.crash_loop', 1, { claims: 3 }); // claimed three times, never settled
      const state = await settle(t, db.pool, id);
      expect(state.status).toBe('dead');
      expect(state.last_error).toMatch(/RETRY_MAX_ATTEMPTS/);
      expect(ran).toBe(0);
    });

    it('never runs more than WORKER_CONCURRENCY attempts at once, whatever mix of claims and deliveries', async () => {
      const narrow = await startTestApp(db.url, { ...FAST_QUEUE, WORKER_CONCURRENCY: '2' });
      try {
        let running = 0;
        let peak = 0;
        narrow.app.get(HandlerRegistry).register('test.peak', async () => {
          running++;
          peak = Math.max(peak, running);
          await sleep(30);
          running--;
        });
        const ids: string[] = [];
        for (let round = 0; round < 15; round++) {
          ids.push(...(await enqueue(db, 'test.peak', 3)));
          const drain = narrow.app.get(RetryWorker).drain();
          const deliveries = Array.from({ length: 3 }, () => stripeEvent('test.peak', { id: randomId('obj') }));
          ids.push(...deliveries.map((e) => e.id as string));
          await Promise.all([drain, ...deliveries.map((e) => narrow.deliver(e))]);
        }
        for (const id of ids) {
          expect(await settle(narrow, db.pool, id)).toMatchObject({ status: 'processed' });
        }
        expect(peak).toBeLessThanOrEqual(2);
      } finally {
        await narrow.close();
      }
    });

    it('never loses a wake-up: with no cron, 150 deliveries at concurrency 1 are all handled', async () => {
      const single = await startTestApp(db.url, { ...FAST_QUEUE, WORKER_CONCURRENCY: '1' });
      try {
        single.app.get(HandlerRegistry).register('test.quick', () => sleep(1));
        const events = Array.from({ length: 150 }, () => stripeEvent('test.quick', { id: randomId('obj') }));
        await Promise.all(events.map((e) => single.deliver(e)));
        await waitUntil(
          async () =>
            (await count(db.pool, 'subscription_events', `event_type = 'test.quick' AND status = 'processed'`)) === 150,
          20_000,
          'all handled without the cron',
        );
      } finally {
        await single.close();
      }
    });
  });

  it('shutdown while a claim is in flight: the claimed rows are given back uncounted, not started', async () => {
    const t = await startTestApp(db.url, FAST_QUEUE);
    let ranAfterClose = 0;
    let closing = false;
    t.app.get(HandlerRegistry).register('test.after_close', () => {
      if (closing) {
        ranAfterClose++;
      }
      return Promise.resolve();
    });
    // Not due yet, so that no drain of the app's own (at boot, say) takes them before the lock.
    const ids = await enqueue(db, 'test.after_close', 3);
    await db.pool.query(
      `UPDATE webhook_retry_queue SET next_retry_at = now() + interval '1 day' WHERE stripe_event_id = ANY($1)`,
      [ids],
    );
    const locker = await db.pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE webhook_retry_queue IN EXCLUSIVE MODE');
      await locker.query(
        `UPDATE webhook_retry_queue SET next_retry_at = now() - interval '1 hour' WHERE stripe_event_id = ANY($1)`,
        [ids],
      );
      void t.app.get(RetryWorker).drain(); // its claim now waits on the lock
      await sleep(200);
      closing = true;
      const closed = t.close();
      await sleep(200);
      await locker.query('COMMIT');
      await closed;
    } finally {
      locker.release();
    }
    expect(ranAfterClose).toBe(0);
    const { rows } = await db.pool.query(
      'SELECT attempts, lock_token, next_retry_at <= now() AS due FROM webhook_retry_queue WHERE stripe_event_id = ANY($1)',
      [ids],
    );
    expect(rows).toEqual(Array(3).fill({ attempts: 0, lock_token: null, due: true }));
  });

  it('retention never deletes an event that is queued again while it runs', async () => {
    const t = await startTestApp(db.url, { EVENT_RETENTION_DAYS: '30' });
    try {
      const { rows } = await db.pool.query(
        `INSERT INTO subscription_events (stripe_event_id, event_type, status, payload, processed_at)
         VALUES ('evt_requeued_old', 'x', 'processed', '{}', now() - interval '40 days') RETURNING id`,
      );
      // An operator reprocesses it: the event row is locked by that transaction when retention reaches it.
      const reprocess = await db.pool.connect();
      try {
        await reprocess.query('BEGIN');
        await reprocess.query(`UPDATE subscription_events SET status = 'pending', processed_at = NULL WHERE id = $1`, [
          rows[0].id,
        ]);
        await reprocess.query(
          `INSERT INTO webhook_retry_queue (event_id, stripe_event_id, event_type) VALUES ($1, 'evt_requeued_old', 'x')`,
          [rows[0].id],
        );
        const pruning = t.app.get(RetentionService).prune();
        await sleep(300);
        await reprocess.query('COMMIT');
        await pruning;
      } finally {
        reprocess.release();
      }
      expect(await eventState(db.pool, 'evt_requeued_old')).toMatchObject({ status: 'pending' });
      expect(await count(db.pool, 'webhook_retry_queue', `stripe_event_id = 'evt_requeued_old'`)).toBe(1);
    } finally {
      await t.close();
    }
  });
});
