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
