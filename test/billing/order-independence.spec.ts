import { Dispatcher } from '../../src/queue/dispatcher.service';
import { RetryWorker } from '../../src/queue/retry-worker.service';
import { deliverAndSettle, entitlementsOf } from '../support/billing';
import { fixtureEvent, newWorld, StripeJson, subscriptionEvent, World } from '../support/fixtures';
import { useTestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

/** A small deterministic PRNG (mulberry32), so that a failing run can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0; // eslint-disable-line no-bitwise -- mulberry32 is bit arithmetic
  return () => {
    /* eslint-disable no-bitwise -- mulberry32 is bit arithmetic */
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    /* eslint-enable no-bitwise */
  };
}

interface Step {
  type: string;
  status: string;
  cancelAtPeriodEnd: boolean;
}

/** Possible next states: trialing → active → past_due → active (cancel at period end) → deleted, and variations. */
const NEXT: Record<string, Step[]> = {
  incomplete: [
    { type: 'customer.subscription.updated', status: 'active', cancelAtPeriodEnd: false },
    { type: 'customer.subscription.updated', status: 'incomplete_expired', cancelAtPeriodEnd: false },
  ],
  trialing: [
    { type: 'customer.subscription.updated', status: 'active', cancelAtPeriodEnd: false },
    { type: 'customer.subscription.trial_will_end', status: 'trialing', cancelAtPeriodEnd: false },
    { type: 'customer.subscription.paused', status: 'paused', cancelAtPeriodEnd: false },
  ],
  active: [
    { type: 'customer.subscription.updated', status: 'past_due', cancelAtPeriodEnd: false },
    { type: 'customer.subscription.updated', status: 'active', cancelAtPeriodEnd: true },
    { type: 'customer.subscription.deleted', status: 'canceled', cancelAtPeriodEnd: false },
  ],
  past_due: [
    { type: 'customer.subscription.updated', status: 'active', cancelAtPeriodEnd: false },
    { type: 'customer.subscription.updated', status: 'unpaid', cancelAtPeriodEnd: false },
    { type: 'customer.subscription.deleted', status: 'canceled', cancelAtPeriodEnd: false },
  ],
  unpaid: [{ type: 'customer.subscription.deleted', status: 'canceled', cancelAtPeriodEnd: false }],
  paused: [{ type: 'customer.subscription.resumed', status: 'active', cancelAtPeriodEnd: false }],
};
const FINAL = new Set(['canceled', 'incomplete_expired']);
const ACCESS = ['active', 'trialing', 'past_due'];

interface Lifecycle {
  world: World;
  events: StripeJson[];
  /** The state of the logically last subscription event: what must be stored, whatever the order. */
  expected: Step;
}

function lifecycle(random: () => number): Lifecycle {
  const world = newWorld();
  const events: StripeJson[] = [];
  let created = 1_767_225_600 + Math.floor(random() * 1000);
  let step: Step = {
    type: 'customer.subscription.created',
    status: random() < 0.5 ? 'incomplete' : 'trialing',
    cancelAtPeriodEnd: false,
  };
  events.push(subscriptionEvent(step.type, world, { status: step.status, created, cancelAtPeriodEnd: false }));
  const length = 1 + Math.floor(random() * 5);
  for (let i = 0; i < length && !FINAL.has(step.status); i++) {
    const options = NEXT[step.status];
    const next = options[Math.floor(random() * options.length)];
    // Same-second collisions only where the rules name the winner: after the creation, or a terminal state.
    const sameSecond = (i === 0 || FINAL.has(next.status)) && random() < 0.3;
    created += sameSecond ? 0 : 1 + Math.floor(random() * 86_400);
    if (random() < 0.6) {
      const invoice = fixtureEvent(random() < 0.7 ? 'invoice.paid' : 'invoice.payment_failed', world);
      invoice.created = created - 1;
      invoice.data.object.id = `in_${world.subscription}_${i}`;
      events.push(invoice);
    }
    step = next;
    events.push(
      subscriptionEvent(step.type, world, { status: step.status, created, cancelAtPeriodEnd: step.cancelAtPeriodEnd }),
    );
  }
  return { world, events, expected: step };
}

function shuffled<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe('order independence (property)', () => {
  const { db, t } = useTestApp();

  const seed = Number(process.env.PROPERTY_SEED ?? Date.now() % 1_000_000);

  it(`ends in the newest event's state for 300 random lifecycles in random delivery orders (seed ${seed})`, async () => {
    const random = prng(seed);
    const runs = Array.from({ length: 300 }, () => lifecycle(random));
    const orders = runs.map((run) => {
      const order = shuffled(run.events, random);
      // Stripe delivers some events twice.
      return random() < 0.3 ? [...order, order[Math.floor(random() * order.length)]] : order;
    });

    const failures: string[] = [];
    const batch = 10;
    for (let i = 0; i < runs.length; i += batch) {
      await Promise.all(
        runs.slice(i, i + batch).map(async (run, k) => {
          for (const event of orders[i + k]) {
            await deliverAndSettle(t, db.pool, event as { id: string });
          }
          const { rows } = await db.pool.query(
            'SELECT status, cancel_at_period_end FROM subscriptions WHERE stripe_subscription_id = $1',
            [run.world.subscription],
          );
          const view = (await entitlementsOf(t, `/v1/customers/${run.world.customer}/entitlements`)).body;
          const want = run.expected;
          if (
            rows[0]?.status !== want.status ||
            rows[0]?.cancel_at_period_end !== want.cancelAtPeriodEnd ||
            view.active !== ACCESS.includes(want.status) ||
            view.status !== want.status
          ) {
            failures.push(
              `${run.world.subscription}: want ${want.status}/${want.cancelAtPeriodEnd}, got ${JSON.stringify(rows[0])}; ` +
                `order ${orders[i + k].map((e) => `${e.type}@${e.created}:${e.data.object.status ?? ''}`).join(' → ')}`,
            );
          }
        }),
      );
    }
    expect(failures).toEqual([]);
  }, 240_000);

  it('replaying old events after newer ones changes nothing', async () => {
    const random = prng(seed + 1);
    const runs = Array.from({ length: 20 }, () => lifecycle(random));
    for (const run of runs) {
      for (const event of run.events) {
        await deliverAndSettle(t, db.pool, event as { id: string });
      }
    }
    const before = await db.pool.query(
      'SELECT stripe_subscription_id, status, cancel_at_period_end, last_event_id FROM subscriptions ORDER BY 1',
    );
    // Queue every event of these lifecycles again, oldest first (as an operator's reprocess would).
    for (const run of runs) {
      for (const event of run.events) {
        await db.pool.query(
          `WITH e AS (UPDATE subscription_events SET status = 'pending', attempts = 0 WHERE stripe_event_id = $1 RETURNING id, event_type)
           INSERT INTO webhook_retry_queue (event_id, stripe_event_id, event_type) SELECT id, $1, event_type FROM e`,
          [event.id],
        );
      }
    }
    await t.app.get(RetryWorker).drain();
    await waitUntil(
      async () => {
        await t.app.get(RetryWorker).drain();
        await t.app.get(Dispatcher).whenIdle();
        const ids = runs.flatMap((run) => run.events.map((e) => e.id as string));
        return (
          (
            await db.pool.query(
              `SELECT 1 FROM subscription_events WHERE status = 'pending' AND stripe_event_id = ANY($1)`,
              [ids],
            )
          ).rowCount === 0
        );
      },
      30_000,
      'replays processed',
    );
    const after = await db.pool.query(
      'SELECT stripe_subscription_id, status, cancel_at_period_end, last_event_id FROM subscriptions ORDER BY 1',
    );
    expect(after.rows).toEqual(before.rows);
  }, 120_000);
});
