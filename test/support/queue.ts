import type { Pool } from 'pg';
import { Dispatcher } from '../../src/queue/dispatcher.service';
import { RetryWorker } from '../../src/queue/retry-worker.service';
import type { TestApp } from './test-app';
import { waitUntil } from './wait';

/** Queue settings for tests: fast retries, and a cron that never fires on its own. */
export const FAST_QUEUE = {
  RETRY_CRON: '0 0 1 1 *',
  RETRY_BASE_DELAY_SECONDS: '0.05',
  RETRY_MAX_DELAY_SECONDS: '0.2',
  RETRY_MAX_ATTEMPTS: '4',
  HANDLER_TIMEOUT_MS: '1000',
};

export interface EventState {
  status: string;
  attempts: number;
  last_error: string | null;
}

export async function eventState(pool: Pool, stripeEventId: string): Promise<EventState | undefined> {
  const { rows } = await pool.query<EventState>(
    'SELECT status, attempts, last_error FROM subscription_events WHERE stripe_event_id = $1',
    [stripeEventId],
  );
  return rows[0];
}

/** Drives the retry worker until the event leaves `pending`, as the cron would, and returns its final state. */
export async function settle(t: TestApp, pool: Pool, stripeEventId: string, timeoutMs = 15_000): Promise<EventState> {
  const worker = t.app.get(RetryWorker);
  const dispatcher = t.app.get(Dispatcher);
  return waitUntil(
    async () => {
      await worker.drain();
      await dispatcher.whenIdle();
      const state = await eventState(pool, stripeEventId);
      return state && state.status !== 'pending' ? state : undefined;
    },
    timeoutMs,
    `event ${stripeEventId} settled`,
  );
}

/**
 * Stores events and queues them directly, as if they had been received while no replica could run
 * them; `dueInSeconds` > 0 keeps them from being claimed until then. Returns their ids.
 */
export async function enqueueEvents(
  pool: Pool,
  events: Array<Record<string, unknown>>,
  options: { attempts?: number; claims?: number; dueInSeconds?: number } = {},
): Promise<string[]> {
  for (const event of events) {
    await pool.query(
      `WITH e AS (
         INSERT INTO subscription_events (stripe_event_id, event_type, payload) VALUES ($1, $2, $3) RETURNING id
       )
       INSERT INTO webhook_retry_queue (event_id, stripe_event_id, event_type, attempts, claims, next_retry_at)
       SELECT id, $1, $2, $4, $6, now() + $5 * interval '1 second' FROM e`,
      [
        event.id,
        event.type,
        JSON.stringify(event),
        options.attempts ?? 0,
        options.dueInSeconds ?? 0,
        options.claims ?? 0,
      ],
    );
  }
  return events.map((e) => e.id as string);
}

/**
 * Makes concurrent attempts meet at one table: locks it, lets `start` begin the work (say, a drain
 * on each of two replicas), waits until every one of them waits on that lock (or, with `anyLock`,
 * until that many lock requests of any kind wait in this database), then releases them together,
 * and waits for the work.
 */
export async function raceOnTableLock(
  pool: Pool,
  table: string,
  waiters: number,
  start: () => Array<Promise<unknown>>,
  options: { anyLock?: boolean } = {},
): Promise<void> {
  const locker = await pool.connect();
  let committed = false;
  try {
    await locker.query('BEGIN');
    await locker.query(`LOCK TABLE ${table} IN EXCLUSIVE MODE`);
    const running = start();
    await waitUntil(
      async () =>
        (
          await pool.query<{ n: number }>(
            options.anyLock
              ? // Waits of any kind in this database (on the table, a row or an advisory lock).
                `SELECT count(*)::int AS n FROM pg_locks
                  WHERE NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND $1::text IS NOT NULL`
              : `SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND relation = $1::regclass`,
            [table],
          )
        ).rows[0].n === waiters,
      10_000,
      `${waiters} attempts waiting on ${table}`,
    ).catch(async (error: Error) => {
      const { rows } = await pool.query(
        `SELECT state, wait_event_type, wait_event, left(query, 100) AS query FROM pg_stat_activity
          WHERE datname = current_database() AND state <> 'idle' AND pid <> pg_backend_pid()`,
      );
      const queue = await pool.query(
        'SELECT stripe_event_id, attempts, lock_token IS NOT NULL AS held, last_error FROM webhook_retry_queue',
      );
      throw new Error(`${error.message}; sessions: ${JSON.stringify(rows)}; queue: ${JSON.stringify(queue.rows)}`, {
        cause: error,
      });
    });
    await locker.query('COMMIT');
    committed = true;
    await Promise.all(running);
  } finally {
    if (!committed) {
      await locker.query('ROLLBACK');
    }
    locker.release();
  }
}
