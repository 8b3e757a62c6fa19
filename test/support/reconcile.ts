import type { Pool } from 'pg';
import { Environment } from '../../src/config/environment-variables';
import { Reconciler } from '../../src/reconcile/reconciler.service';
import { Dispatcher } from '../../src/queue/dispatcher.service';
import { RetryWorker } from '../../src/queue/retry-worker.service';
import { count } from './database';
import type { FakeStripe } from './fake-stripe';
import { fixtureEvent, newWorld, StripeJson } from './fixtures';
import { FAST_QUEUE } from './queue';
import { startTestApp, TestApp } from './test-app';
import { waitUntil } from './wait';

/** Handled event types whose fixtures apply on their own, each in a world of its own. */
const INDEPENDENT_FIXTURES = [
  'customer.created',
  'customer.updated',
  'customer.subscription.created',
  'customer.subscription.updated',
  'invoice.paid',
  'invoice.payment_succeeded',
  'checkout.session.completed.subscription',
  'entitlements.active_entitlement_summary.updated',
  'payment_intent.succeeded.plain',
];

/** `n` events of handled types, spread evenly from `newest` back over `spanSeconds`, newest first. */
export function stripeEvents(n: number, newest: number, spanSeconds: number): StripeJson[] {
  return Array.from({ length: n }, (_, i) => {
    const event = fixtureEvent(INDEPENDENT_FIXTURES[i % INDEPENDENT_FIXTURES.length], newWorld());
    event.created = newest - Math.floor((i * spanSeconds) / Math.max(1, n - 1));
    return event;
  });
}

/** The database's clock in seconds, as the sweep reads it. */
export async function dbNow(pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ now: string }>('SELECT floor(extract(epoch FROM now()))::bigint AS now');
  return Number(rows[0].now);
}

/** The service with a key, pointed at the fake; its own cron never fires (tests call the sweep). */
export function startPullingApp(databaseUrl: string, fake: FakeStripe, env: Environment = {}): Promise<TestApp> {
  return startTestApp(databaseUrl, {
    ...FAST_QUEUE,
    STRIPE_API_KEY: fake.apiKey,
    STRIPE_API_BASE: fake.url,
    STRIPE_API_MAX_RPS: '200',
    RECONCILE_CRON: '0 0 1 1 *',
    ...env,
  });
}

let ticks = Date.UTC(2030, 0, 1);

/** A scheduled sweep, as the cron would run it on a fresh tick; resolves when it has ended. */
export async function sweep(t: TestApp, tick = new Date((ticks += 600_000))): Promise<string | null> {
  const reconciler = t.app.get(Reconciler);
  const runId = await reconciler.runScheduled(tick);
  await reconciler.whenIdle();
  return runId;
}

/** Waits until no event is pending: every stored event handled (processed, ignored or dead). */
export async function allHandled(t: TestApp, pool: Pool, timeoutMs = 60_000): Promise<void> {
  await waitUntil(
    async () => {
      await t.app.get(RetryWorker).drain();
      await t.app.get(Dispatcher).whenIdle();
      return (await count(pool, 'subscription_events', `status = 'pending'`)) === 0;
    },
    timeoutMs,
    'every stored event handled',
  );
}

export async function checkpoint(pool: Pool): Promise<Date | null> {
  const { rows } = await pool.query<{ checkpoint_at: Date | null }>(
    `SELECT checkpoint_at FROM reconcile_checkpoints WHERE account_id = ''`,
  );
  return rows[0]?.checkpoint_at ?? null;
}

export async function run(pool: Pool, id: string): Promise<Record<string, unknown>> {
  const { rows } = await pool.query('SELECT * FROM reconcile_runs WHERE id = $1', [id]);
  return rows[0] as Record<string, unknown>;
}
