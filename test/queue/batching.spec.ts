import { Executor } from '../../src/database/database';
import { EventHandler } from '../../src/queue/handler-registry';
import { QueueEvents } from '../../src/queue/queue-events';
import { RetryWorker } from '../../src/queue/retry-worker.service';
import { count, createTestDatabase, TestDatabase } from '../support/database';
import { enqueueEvents, eventState, FAST_QUEUE } from '../support/queue';
import { randomId, stripeEvent } from '../support/stripe';
import { TcpProxy } from '../support/tcp-proxy';
import { startTestApp, TestApp } from '../support/test-app';
import { Gate, waitUntil } from '../support/wait';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const HARD = { ...FAST_QUEUE, HANDLER_TIMEOUT_MS: '500' };
const LEASE_MS = 2_500;

/** Writes the event's effect, and notes which transaction ran it. */
function recording(runs: Array<{ id: string; xid: string }>, app = 'app'): EventHandler {
  return async (event, tx: Executor) => {
    const { rows } = await tx.query<{ xid: string }>(
      'INSERT INTO test_effects (event_id, app) VALUES ($1, $2) RETURNING txid_current()::text AS xid',
      [event.id, app],
    );
    runs.push({ id: event.id, xid: rows[0].xid });
  };
}

describe('events settled in batches', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query('CREATE TABLE test_effects (event_id text NOT NULL, app text NOT NULL)');
  });
  afterAll(() => db.drop());

  const queued = (type: string, n: number) =>
    enqueueEvents(
      db.pool,
      Array.from({ length: n }, () => stripeEvent(type, { id: randomId('obj') })),
    );
  const effectsOf = (ids: string[]) => count(db.pool, 'test_effects', 'event_id = ANY($1)', [ids]);

  it('runs queued events together in one transaction, each applied once', async () => {
    const runs: Array<{ id: string; xid: string }> = [];
    const t = await startTestApp(db.url, HARD, { 'test.together': recording(runs) });
    try {
      const ids = await queued('test.together', 20);
      await t.app.get(RetryWorker).drain();
      await waitUntil(async () => (await effectsOf(ids)) === 20, 10_000, 'all applied');
      expect(new Set(runs.map((r) => r.xid)).size).toBeLessThan(20);
      for (const id of ids) {
        expect(await eventState(db.pool, id)).toEqual({ status: 'processed', attempts: 1, last_error: null });
      }
    } finally {
      await t.close();
    }
  });

  it('a batch with one failing event: the others commit once, the failing one is retried alone', async () => {
    const runs: Array<{ id: string; xid: string }> = [];
    let failing = '';
    const t = await startTestApp(db.url, HARD, {
      'test.one_fails': async (event, tx, context) => {
        await recording(runs)(event, tx, context);
        if (event.id === failing) {
          throw new Error('this one fails');
        }
      },
    });
    const outcomes: string[] = [];
    t.app.get(QueueEvents).subscribe({ attemptFinished: ({ outcome }) => outcomes.push(outcome) });
    try {
      const ids = await queued('test.one_fails', 10);
      failing = ids[4];
      const others = ids.filter((id) => id !== failing);
      await t.app.get(RetryWorker).drain();
      await waitUntil(async () => (await effectsOf(others)) === 9, 10_000, 'the others applied');
      await waitUntil(async () => (await eventState(db.pool, failing))?.last_error, 10_000, 'the failure recorded');

      // The first run was one transaction for all ten (it failed at the fifth, so it ran five).
      const firstXid = runs[0].xid;
      expect(runs.filter((r) => r.xid === firstXid).map((r) => r.id)).toEqual(ids.slice(0, 5));
      // Then each alone: the others committed once each, the failing one failed alone, counted once.
      for (const id of others) {
        expect(await eventState(db.pool, id)).toEqual({ status: 'processed', attempts: 1, last_error: null });
      }
      expect(await effectsOf(others)).toBe(9);
      expect(await effectsOf([failing])).toBe(0);
      expect(await eventState(db.pool, failing)).toEqual({
        status: 'pending',
        attempts: 1,
        last_error: 'Error: this one fails',
      });
      const failingRuns = runs.filter((r) => r.id === failing);
      expect(failingRuns).toHaveLength(2);
      expect(new Set(failingRuns.map((r) => r.xid)).size).toBe(2);
      expect(outcomes.filter((o) => o === 'retried')).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'processed')).toHaveLength(9);
    } finally {
      await t.close();
    }
  });

  it('two replicas batching the same backlog: every event applied once, by one of them, attempts 1', async () => {
    const runs: Array<{ id: string; xid: string }> = [];
    const apps: TestApp[] = [];
    for (const name of ['a', 'b']) {
      apps.push(
        await startTestApp(db.url, { ...HARD, WORKER_BATCH_SIZE: '50' }, { 'test.shared': recording(runs, name) }),
      );
    }
    try {
      const ids = await queued('test.shared', 600);
      await Promise.all(apps.map((app) => app.app.get(RetryWorker).drain()));
      await waitUntil(
        async () =>
          (await count(db.pool, 'subscription_events', `stripe_event_id = ANY($1) AND status = 'processed'`, [ids])) ===
          600,
        30_000,
        'all processed',
      );
      expect(await effectsOf(ids)).toBe(600);
      const { rows } = await db.pool.query<{ apps: number; unique_events: number }>(
        `SELECT count(DISTINCT app)::int AS apps, count(DISTINCT event_id)::int AS unique_events
           FROM test_effects WHERE event_id = ANY($1)`,
        [ids],
      );
      expect(rows[0]).toEqual({ apps: 2, unique_events: 600 });
      expect(new Set(runs.filter((r) => ids.includes(r.id)).map((r) => r.xid)).size).toBeLessThan(600 / 2);
      expect(await count(db.pool, 'subscription_events', 'stripe_event_id = ANY($1) AND attempts <> 1', [ids])).toBe(0);
    } finally {
      await Promise.all(apps.map((app) => app.close()));
    }
  });

  it('a replica that dies mid-batch loses nothing and applies nothing twice: another takes the batch after the lease', async () => {
    const proxy = await TcpProxy.start(db.url);
    const stuck = new Gate();
    let started = 0;
    // The doomed replica's handlers write their effect, then the first one waits: the batch is open.
    const doomed = await startTestApp(proxy.urlFor(db.url), HARD, {
      'test.mid_batch': async (event, tx) => {
        await tx.query('INSERT INTO test_effects (event_id, app) VALUES ($1, $2)', [event.id, 'doomed']);
        started++;
        await stuck.wait();
      },
    });
    let survivor: TestApp | undefined;
    try {
      const ids = await queued('test.mid_batch', 20);
      await doomed.app.get(RetryWorker).drain();
      await waitUntil(() => started === 1, 5_000, 'the batch open');
      // The replica dies: its connections go (the server rolls its transaction back) and it never
      // reaches the database again.
      proxy.cut();
      await sleep(200);
      expect(await effectsOf(ids)).toBe(0);

      const runs: Array<{ id: string; xid: string }> = [];
      survivor = await startTestApp(db.url, HARD, { 'test.mid_batch': recording(runs, 'survivor') });
      await sleep(LEASE_MS);
      await survivor.app.get(RetryWorker).drain();
      await waitUntil(
        async () =>
          (await count(db.pool, 'subscription_events', `stripe_event_id = ANY($1) AND status = 'processed'`, [ids])) ===
          20,
        10_000,
        'all processed by the survivor',
      );
      const { rows } = await db.pool.query(
        'SELECT app, count(*)::int AS n FROM test_effects WHERE event_id = ANY($1) GROUP BY app',
        [ids],
      );
      expect(rows).toEqual([{ app: 'survivor', n: 20 }]);
      expect(await count(db.pool, 'subscription_events', 'stripe_event_id = ANY($1) AND attempts <> 1', [ids])).toBe(0);
    } finally {
      stuck.open();
      await proxy.close();
      await doomed.close();
      await survivor?.close();
    }
  });
});
