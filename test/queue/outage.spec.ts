import { Dispatcher } from '../../src/queue/dispatcher.service';
import { HandlerRegistry } from '../../src/queue/handler-registry';
import { RetryWorker } from '../../src/queue/retry-worker.service';
import { count, createTestDatabase, TestDatabase } from '../support/database';
import { enqueueEvents, eventState, FAST_QUEUE, settle } from '../support/queue';
import { randomId, stripeEvent } from '../support/stripe';
import { TcpProxy } from '../support/tcp-proxy';
import { startTestApp, TestApp } from '../support/test-app';
import { Gate, waitUntil } from '../support/wait';

describe('database outages never use up attempts', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let t: TestApp;
  const gate = new Gate();

  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query('CREATE TABLE test_effects (event_id text NOT NULL)');
    proxy = await TcpProxy.start(db.url);
    t = await startTestApp(proxy.urlFor(db.url), { ...FAST_QUEUE, RETRY_MAX_ATTEMPTS: '2' });
    const registry = t.app.get(HandlerRegistry);
    registry.register('test.ok', (event, manager) => manager.query('INSERT INTO test_effects VALUES ($1)', [event.id]));
    registry.register('test.gated', async (event, manager) => {
      await gate.wait();
      await manager.query('INSERT INTO test_effects VALUES ($1)', [event.id]);
    });
  });
  afterAll(async () => {
    gate.open();
    await t.close();
    await proxy.close();
    await db.drop();
  });

  /** Resolves once an attempt's transaction is open (its handler is running). */
  const attemptInProgress = () =>
    waitUntil(
      async () =>
        (
          await db.pool.query(
            `SELECT 1 FROM pg_stat_activity WHERE state = 'idle in transaction' AND datname = current_database()`,
          )
        ).rowCount,
      5_000,
      'attempt in progress',
    );
  /** The event's state once it is processed, with nothing here calling drain(). */
  const processedWithoutDrain = (id: string, timeoutMs: number) =>
    waitUntil(
      async () => {
        const state = await eventState(db.pool, id);
        return state?.status === 'processed' ? state : undefined;
      },
      timeoutMs,
      `event ${id} processed without a drain`,
    );

  it('rows pending while the database is down are all processed once it returns, with attempts = 1', async () => {
    const events = Array.from({ length: 10 }, () => stripeEvent('test.ok', { id: randomId('obj') }));
    // Stored while the worker could not run them (as if acknowledged just before the outage).
    await enqueueEvents(db.pool, events);
    proxy.cut();
    const worker = t.app.get(RetryWorker);
    for (let i = 0; i < 5; i++) {
      await worker.drain(); // each claim fails: nothing is taken, nothing counted
    }
    proxy.restore();
    for (const event of events) {
      expect(await settle(t, db.pool, event.id as string)).toEqual({
        status: 'processed',
        attempts: 1,
        last_error: null,
      });
    }
    expect(await count(db.pool, 'test_effects')).toBe(10);
  });

  it('an attempt cut off by an outage is given back uncounted, and processed once the database returns', async () => {
    const event = stripeEvent('test.gated', { id: randomId('obj') });
    expect((await t.deliver(event)).status).toBe(200);
    // The handler is running (its transaction holds the row) when the database goes away.
    await attemptInProgress();
    proxy.cut();
    gate.open();
    await t.app.get(Dispatcher).whenIdle();
    proxy.restore();
    // Given back as soon as the database answers and run again at once, without waiting for a drain
    // (this app's cron never fires and nothing here calls drain()): with several replicas, a row still
    // held when its lease ran out would be claimed by another replica, and that claim would count.
    expect(await processedWithoutDrain(event.id as string, 5_000)).toEqual({
      status: 'processed',
      attempts: 1,
      last_error: null,
    });
    // RETRY_MAX_ATTEMPTS is 2: had the outage counted, one more failure would kill it. It must end processed, attempts 1.
    expect(await settle(t, db.pool, event.id as string)).toEqual({
      status: 'processed',
      attempts: 1,
      last_error: null,
    });
    expect(await count(db.pool, 'test_effects', 'event_id = $1', [event.id])).toBe(1);
    expect(await eventState(db.pool, event.id as string)).toMatchObject({ status: 'processed' });
  });

  it('an attempt cut off by a silent database (no answer, no reset) is given back once it answers again', async () => {
    const silentGate = new Gate();
    const hole = await TcpProxy.start(db.url);
    const silent = await startTestApp(
      hole.urlFor(db.url),
      { ...FAST_QUEUE, RETRY_MAX_ATTEMPTS: '2', DB_POOL_SIZE: '4' },
      {
        'test.silent': async (event, manager) => {
          await silentGate.wait();
          await manager.query('INSERT INTO test_effects VALUES ($1)', [event.id]);
        },
      },
    );
    try {
      const event = stripeEvent('test.silent', { id: randomId('obj') });
      expect((await silent.deliver(event)).status).toBe(200);
      await attemptInProgress();
      const queued = () =>
        db.pool.query<{ attempts: number; claims: number; lock_token: string | null }>(
          'SELECT attempts, claims, lock_token FROM webhook_retry_queue WHERE stripe_event_id = $1',
          [event.id],
        );
      const [held] = (await queued()).rows; // the attempt's own lease (its delete is not committed)
      expect(held).toEqual({ attempts: 0, claims: 1, lock_token: expect.any(String) }); // claimed, no attempt recorded
      // Every connection, the idle pooled ones included, stays open and silent from here on, also
      // after restore(): only a client-side timeout gets past them.
      hole.blackHole();
      silentGate.open();
      await silent.app.get(Dispatcher).whenIdle(); // the attempt timed out and could not be settled
      hole.restore();
      // Given back, uncounted, without anything calling drain() (the cron never fires): the row
      // leaves this attempt's lease and may at once be claimed again (a new token, attempts 0) and
      // even finished (gone, the event processed on its first counted attempt). Before the release
      // was bounded, it hung on a silent pooled connection and the row kept this lease for good.
      const after = await waitUntil(
        async () => {
          const [row] = (await queued()).rows;
          return row?.lock_token === held.lock_token ? undefined : { row };
        },
        20_000,
        'the held row given back',
      );
      if (after.row) {
        expect(after.row.attempts).toBe(0);
      } else {
        expect(await eventState(db.pool, event.id as string)).toEqual({
          status: 'processed',
          attempts: 1,
          last_error: null,
        });
      }
    } finally {
      silentGate.open();
      await hole.close(); // first: a connection left hung would keep the app from closing
      await silent.close();
    }
  });
});
