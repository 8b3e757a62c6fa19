import type { Executor } from '../../src/database/database';
import { Dispatcher } from '../../src/queue/dispatcher.service';
import { HandlerRegistry } from '../../src/queue/handler-registry';
import { PermanentEventError } from '../../src/queue/permanent-event.error';
import { count, createTestDatabase, TestDatabase } from '../support/database';
import { enqueueEvents, eventState, FAST_QUEUE, settle } from '../support/queue';
import { randomId, stripeEvent } from '../support/stripe';
import { startTestApp, TestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

describe('processing engine', () => {
  let db: TestDatabase;
  let t: TestApp;
  let registry: HandlerRegistry;
  const calls = new Map<string, number>();
  const callOf = (id: string): number => {
    const n = (calls.get(id) ?? 0) + 1;
    calls.set(id, n);
    return n;
  };
  const effect = (manager: Executor, id: string, note: string) =>
    manager.query('INSERT INTO test_effects (event_id, note) VALUES ($1, $2)', [id, note]);

  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query('CREATE TABLE test_effects (event_id text NOT NULL, note text NOT NULL)');
    await db.pool.query('CREATE TABLE test_locked (id int)');
    t = await startTestApp(db.url, FAST_QUEUE);
    registry = t.app.get(HandlerRegistry);
    registry.register('test.ok', (event, manager) => effect(manager, event.id, 'ok'));
    registry.register('test.flaky', async (event, manager) => {
      const n = callOf(event.id);
      await effect(manager, event.id, `attempt ${n}`);
      if (n <= 2) {
        throw new Error(`transient failure ${n}`);
      }
    });
    registry.register('test.broken', () => Promise.reject(new Error('always broken')));
    registry.register('test.permanent', () => Promise.reject(new PermanentEventError('customer can never resolve')));
    registry.register('test.stuck_once', (event, manager) =>
      callOf(event.id) === 1 ? new Promise<void>(() => undefined) : effect(manager, event.id, 'after stuck'),
    );
    registry.register('test.locked', async (event, manager) => {
      await effect(manager, event.id, 'before lock');
      await manager.query('INSERT INTO test_locked VALUES (1)');
    });
  });
  afterAll(async () => {
    await t.close();
    await db.drop();
  });

  const effects = (id: string) => count(db.pool, 'test_effects', 'event_id = $1', [id]);

  it('handles an event right after the acknowledgement, without waiting for the cron', async () => {
    const event = stripeEvent('test.ok', { id: randomId('obj') });
    const res = await t.deliver(event);
    expect(res.body).toEqual({ received: true });
    const state = await waitUntil(async () => {
      const s = await eventState(db.pool, event.id as string);
      return s?.status === 'processed' ? s : undefined;
    }, 5_000);
    expect(state).toEqual({ status: 'processed', attempts: 1, last_error: null });
    expect(await effects(event.id as string)).toBe(1);
    expect(await count(db.pool, 'webhook_retry_queue', 'stripe_event_id = $1', [event.id])).toBe(0);
  });

  it('retries a failing handler until it succeeds: processed with attempts = 3, effects once', async () => {
    const event = stripeEvent('test.flaky', { id: randomId('obj') });
    await t.deliver(event);
    expect(await settle(t, db.pool, event.id as string)).toEqual({
      status: 'processed',
      attempts: 3,
      last_error: null,
    });
    // Attempts 1 and 2 wrote a row and failed: both rolled back. Only the successful attempt's write remains.
    const { rows } = await db.pool.query('SELECT note FROM test_effects WHERE event_id = $1', [event.id]);
    expect(rows).toEqual([{ note: 'attempt 3' }]);
  });

  it('dead-letters an event that always fails after RETRY_MAX_ATTEMPTS, with its error', async () => {
    const event = stripeEvent('test.broken', { id: randomId('obj') }, { created: 1767225600 });
    await t.deliver(event);
    const state = await settle(t, db.pool, event.id as string);
    expect(state).toEqual({ status: 'dead', attempts: 4, last_error: 'Error: always broken' });
    expect(await count(db.pool, 'webhook_retry_queue', 'stripe_event_id = $1', [event.id])).toBe(0);
    const { rows } = await db.pool.query(
      'SELECT event_type, retry_count, error, original_timestamp, resolution FROM webhook_dead_letter_queue WHERE stripe_event_id = $1',
      [event.id],
    );
    expect(rows).toEqual([
      {
        event_type: 'test.broken',
        retry_count: 4,
        error: 'Error: always broken',
        original_timestamp: new Date('2026-01-01T00:00:00Z'),
        resolution: null,
      },
    ]);
  });

  it('dead-letters at once on a PermanentEventError', async () => {
    const event = stripeEvent('test.permanent', { id: randomId('obj') });
    await t.deliver(event);
    const state = await settle(t, db.pool, event.id as string);
    expect(state).toMatchObject({ status: 'dead', attempts: 1 });
    expect(state.last_error).toContain('customer can never resolve');
  });

  it('schedules the next attempt by the database clock, base · 2^(n−1) ± 10%', async () => {
    const slow = await startTestApp(db.url, {
      ...FAST_QUEUE,
      RETRY_BASE_DELAY_SECONDS: '40',
      RETRY_MAX_DELAY_SECONDS: '3600',
    });
    try {
      slow.app.get(HandlerRegistry).register('test.broken', () => Promise.reject(new Error('nope')));
      const event = stripeEvent('test.broken', { id: randomId('obj') });
      await slow.deliver(event);
      await slow.app.get(Dispatcher).whenIdle();
      const { rows } = await db.pool.query(
        `SELECT extract(epoch FROM next_retry_at - now()) AS delay, attempts, lock_token, last_error
           FROM webhook_retry_queue WHERE stripe_event_id = $1`,
        [event.id],
      );
      expect(rows[0].attempts).toBe(1);
      expect(rows[0].lock_token).toBeNull();
      expect(rows[0].last_error).toBe('Error: nope');
      expect(Number(rows[0].delay)).toBeGreaterThan(36 - 1);
      expect(Number(rows[0].delay)).toBeLessThanOrEqual(44);
    } finally {
      await slow.close();
    }
  });

  it('fails an attempt whose handler never returns, after HANDLER_TIMEOUT_MS, and retries it', async () => {
    const event = stripeEvent('test.stuck_once', { id: randomId('obj') });
    await t.deliver(event);
    const state = await settle(t, db.pool, event.id as string);
    expect(state).toEqual({ status: 'processed', attempts: 2, last_error: null });
    expect(await effects(event.id as string)).toBe(1);
  });

  it('fails an attempt blocked on a lock past HANDLER_TIMEOUT_MS; its writes never commit', async () => {
    const locker = await db.pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE test_locked IN ACCESS EXCLUSIVE MODE');
      const event = stripeEvent('test.locked', { id: randomId('obj') });
      await t.deliver(event);
      await waitUntil(
        async () => (await eventState(db.pool, event.id as string))?.last_error,
        5_000,
        'first attempt failed',
      );
      const failed = await eventState(db.pool, event.id as string);
      expect(failed?.status).toBe('pending');
      expect(failed?.last_error).toMatch(/timed out/);
      expect(await effects(event.id as string)).toBe(0);
      // The timed-out transaction is gone from the server: nothing of it can commit later.
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      );
      expect(rows[0].n).toBe(0);
      await locker.query('ROLLBACK');
      expect(await settle(t, db.pool, event.id as string)).toMatchObject({ status: 'processed', attempts: 2 });
      expect(await effects(event.id as string)).toBe(1);
    } finally {
      locker.release();
    }
  });

  it('marks a queued event ignored when no handler exists for it by the time it runs', async () => {
    // Queued while a handler existed (say, by an older release); handled after it was removed.
    await enqueueEvents(db.pool, [stripeEvent('test.unregistered', { id: 'x' }, { id: 'evt_unregistered' })]);
    expect(await settle(t, db.pool, 'evt_unregistered')).toEqual({ status: 'ignored', attempts: 1, last_error: null });
  });
});
