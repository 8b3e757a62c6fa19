import { Executor } from '../../src/database/database';
import { EventHandler, HandlerRegistry } from '../../src/queue/handler-registry';
import { RetryWorker } from '../../src/queue/retry-worker.service';
import { count, createTestDatabase, TestDatabase } from '../support/database';
import { enqueueEvents, FAST_QUEUE } from '../support/queue';
import { randomId, signatureHeader, stripeEvent } from '../support/stripe';
import { TcpProxy } from '../support/tcp-proxy';
import { ADMIN_TOKEN, startTestApp, TestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A short lease (500 ms + the 2 s margin), so that outages of several leases fit in a test. */
const HARD = { ...FAST_QUEUE, HANDLER_TIMEOUT_MS: '500', RETRY_MAX_ATTEMPTS: '3' };
const LEASE_MS = 2_500;
/**
 * The longest a delivery may wait for its answer while the database is silent: its insert is
 * bounded by the lease, and waiting for a connection by at most as much.
 */
const ANSWER_BOUND_MS = 2 * LEASE_MS + 1_000;

interface Delivery {
  id: string;
  payload: string;
  status: number;
  ms: number;
}

/** POSTs a signed event and times the answer (a hung answer shows as its duration, not a test timeout). */
async function deliver(url: string, payload: string): Promise<{ status: number; ms: number }> {
  const started = Date.now();
  try {
    const response = await fetch(`${url}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Stripe-Signature': signatureHeader(payload) },
      body: payload,
      signal: AbortSignal.timeout(60_000),
    });
    await response.arrayBuffer();
    return { status: response.status, ms: Date.now() - started };
  } catch {
    return { status: 0, ms: Date.now() - started };
  }
}

/**
 * Deliveries from `senders` concurrent senders, spread over the replicas, until `stop()`; then
 * every delivery that was not acknowledged is sent again until it is, as Stripe does.
 */
function steadyLoad(apps: TestApp[], senders: number) {
  const deliveries: Delivery[] = [];
  let stopped = false;
  const running = Array.from({ length: senders }, async (_, sender) => {
    for (let n = 0; !stopped; n++) {
      const event = stripeEvent('test.effect', { id: randomId('obj') });
      const payload = JSON.stringify(event);
      const answer = await deliver(apps[(sender + n) % apps.length].url, payload);
      deliveries.push({ id: event.id as string, payload, ...answer });
      await sleep(answer.status === 200 ? 20 : 200);
    }
  });
  return {
    deliveries,
    async stop(): Promise<void> {
      stopped = true;
      await Promise.all(running);
    },
    async redeliverRefused(): Promise<void> {
      const refused = deliveries.filter((d) => d.status !== 200);
      await Promise.all(
        Array.from({ length: senders }, async (_, sender) => {
          for (let i = sender; i < refused.length; i += senders) {
            await waitUntil(
              async () => (await deliver(apps[i % apps.length].url, refused[i].payload)).status === 200,
              30_000,
              `${refused[i].id} acknowledged on redelivery`,
            );
          }
        }),
      );
    },
  };
}

const effect: EventHandler = (event, tx: Executor) =>
  tx.query('INSERT INTO test_effects (event_id) VALUES ($1)', [event.id]);

describe('hard failures between the replicas and the database', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query('CREATE TABLE test_effects (event_id text NOT NULL)');
  });
  afterAll(() => db.drop());

  /** Every distinct event delivered is processed once, on its first counted attempt, and none died. */
  async function expectAllProcessedOnce(ids: string[]): Promise<void> {
    const unique = [...new Set(ids)];
    await waitUntil(
      async () =>
        (await count(db.pool, 'subscription_events', `stripe_event_id = ANY($1) AND status = 'processed'`, [
          unique,
        ])) === unique.length,
      60_000,
      `all ${unique.length} events processed`,
    );
    const { rows } = await db.pool.query<{ attempts: number; n: number }>(
      `SELECT attempts, count(*)::int AS n FROM subscription_events WHERE stripe_event_id = ANY($1) GROUP BY attempts`,
      [unique],
    );
    expect(rows).toEqual([{ attempts: 1, n: unique.length }]);
    expect(await count(db.pool, 'test_effects', 'event_id = ANY($1)', [unique])).toBe(unique.length);
    expect(await count(db.pool, 'webhook_dead_letter_queue')).toBe(0);
  }

  async function replicas(proxy: TcpProxy, n: number): Promise<TestApp[]> {
    const apps: TestApp[] = [];
    for (let i = 0; i < n; i++) {
      apps.push(await startTestApp(proxy.urlFor(db.url), HARD, { 'test.effect': effect }));
    }
    return apps;
  }

  it('a silent partition of three leases, deliveries in flight on two replicas: every delivery answered in time, live stays fast, then everything processed once', async () => {
    const proxy = await TcpProxy.start(db.url);
    const apps = await replicas(proxy, 2);
    try {
      const load = steadyLoad(apps, 10);
      await sleep(1_000);
      proxy.blackHole();
      const silentFrom = Date.now();

      // Not ready within a few seconds, on both replicas; alive and fast throughout.
      const notReady = apps.map((app) =>
        waitUntil(async () => (await fetch(`${app.url}/health/ready`)).status === 503, 5_000, 'ready 503'),
      );
      const liveTimes: number[] = [];
      while (Date.now() - silentFrom < 3 * LEASE_MS) {
        for (const app of apps) {
          const started = Date.now();
          const live = await fetch(`${app.url}/health/live`);
          expect(live.status).toBe(200);
          liveTimes.push(Date.now() - started);
        }
        await sleep(200);
      }
      await Promise.all(notReady);
      proxy.restore();
      await sleep(1_000);
      await load.stop();

      expect(Math.max(...liveTimes)).toBeLessThan(500);
      const slowest = Math.max(...load.deliveries.map((d) => d.ms));
      expect(slowest).toBeLessThanOrEqual(ANSWER_BOUND_MS);
      expect(load.deliveries.filter((d) => d.status !== 200 && d.status !== 503)).toEqual([]);
      expect(load.deliveries.some((d) => d.status === 503)).toBe(true); // the partition was felt

      await load.redeliverRefused();
      await expectAllProcessedOnce(load.deliveries.map((d) => d.id));
    } finally {
      await proxy.close();
      await Promise.all(apps.map((app) => app.close()));
    }
  }, 120_000);

  it('connections refused for ten leases on two replicas under load: every event processed, attempts 1', async () => {
    const proxy = await TcpProxy.start(db.url);
    const apps = await replicas(proxy, 2);
    try {
      const load = steadyLoad(apps, 10);
      await sleep(1_000);
      proxy.cut();
      await sleep(10 * LEASE_MS);
      proxy.restore();
      await sleep(1_000);
      await load.stop();

      expect(load.deliveries.filter((d) => d.status !== 200 && d.status !== 503)).toEqual([]);
      await load.redeliverRefused();
      await expectAllProcessedOnce(load.deliveries.map((d) => d.id));
    } finally {
      await proxy.close();
      await Promise.all(apps.map((app) => app.close()));
    }
  }, 120_000);

  it('a commit whose answer is lost on the way back: the event is processed once, attempts 1', async () => {
    const proxy = await TcpProxy.start(db.url);
    const [app] = await replicas(proxy, 1);
    try {
      proxy.dropNextCommitReply();
      const event = stripeEvent('test.effect', { id: randomId('obj') });
      expect((await deliver(app.url, JSON.stringify(event))).status).toBe(200);
      await waitUntil(() => proxy.commitReplyDropped, 5_000, 'the COMMIT answer dropped');
      await expectAllProcessedOnce([event.id as string]);
      // The attempt that never heard its commit settles as lost, after its statement bound.
      await sleep(LEASE_MS + 1_000);
      await expectAllProcessedOnce([event.id as string]);
    } finally {
      await proxy.close();
      await app.close();
    }
  });

  it('a row whose handler kills its replica on every claim is dead-lettered after RETRY_MAX_ATTEMPTS claims, saying so', async () => {
    // Each "replica" reaches the database through its own relay; its handler cuts that relay (the
    // process is as good as dead to the database) and never returns.
    const [id] = await enqueueEvents(db.pool, [stripeEvent('test.fatal', { id: randomId('obj') })]);
    const dead: Array<{ proxy: TcpProxy; app: TestApp }> = [];
    let ran = 0;
    try {
      for (let claim = 1; claim <= 4; claim++) {
        const proxy = await TcpProxy.start(db.url);
        const app = await startTestApp(proxy.urlFor(db.url), HARD, {
          'test.fatal': () => {
            ran++;
            proxy.cut();
            return new Promise(() => undefined);
          },
        });
        dead.push({ proxy, app });
        await app.app.get(RetryWorker).drain();
        if (claim <= 3) {
          await waitUntil(() => ran === claim, 5_000, `claim ${claim} ran the handler`);
          await sleep(LEASE_MS); // the dead replica's lease runs out
        }
      }
      await waitUntil(
        async () =>
          (await count(db.pool, 'subscription_events', `stripe_event_id = $1 AND status = 'dead'`, [id])) === 1,
        5_000,
        'the row dead-lettered',
      );
      const { rows } = await db.pool.query(
        `SELECT e.status, e.attempts, d.retry_count, d.error
           FROM subscription_events e JOIN webhook_dead_letter_queue d ON d.event_id = e.id
          WHERE e.stripe_event_id = $1`,
        [id],
      );
      expect(rows).toEqual([
        {
          status: 'dead',
          attempts: 0,
          retry_count: 0,
          error: expect.stringMatching(/claimed 4 times without a result, more than RETRY_MAX_ATTEMPTS \(3\)/),
        },
      ]);
      expect(ran).toBe(3);
    } finally {
      for (const { proxy, app } of dead) {
        await proxy.close();
        await app.close();
      }
      await db.pool.query('DELETE FROM webhook_dead_letter_queue');
    }
  });

  it('pages of the retry queue neither repeat nor skip a row while a worker claims and reschedules them', async () => {
    const app = await startTestApp(db.url, { ...HARD, RETRY_MAX_ATTEMPTS: '1000', RETRY_MAX_DELAY_SECONDS: '0.05' });
    try {
      app.app.get(HandlerRegistry).register('test.always_fails', () => Promise.reject(new Error('not yet')));
      await db.pool.query(
        `WITH e AS (
           INSERT INTO subscription_events (stripe_event_id, event_type, payload)
           SELECT 'evt_page_' || g, 'test.always_fails',
                  jsonb_build_object('id', 'evt_page_' || g, 'type', 'test.always_fails', 'created', 1767225600,
                                     'data', jsonb_build_object('object', jsonb_build_object('id', 'obj_' || g)))
             FROM generate_series(1, 5000) g
           RETURNING id, stripe_event_id, event_type)
         INSERT INTO webhook_retry_queue (event_id, stripe_event_id, event_type, enqueued_at, next_retry_at)
         SELECT id, stripe_event_id, event_type, now() - (id % 97) * interval '1 millisecond', now() FROM e`,
      );
      // The worker keeps claiming, failing and rescheduling rows (they are due again at once) while
      // the pages are read.
      const worker = app.app.get(RetryWorker).drain();
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const query: string = cursor ? `limit=100&cursor=${cursor}` : 'limit=100';
        const page = await app.http.get(`/admin/retry-queue?${query}`).set('Authorization', `Bearer ${ADMIN_TOKEN}`);
        expect(page.status).toBe(200);
        seen.push(...(page.body.items as Array<{ stripe_event_id: string }>).map((item) => item.stripe_event_id));
        cursor = page.body.next_cursor as string | null;
        await sleep(5);
      } while (cursor);

      const retried = await count(db.pool, 'webhook_retry_queue', `stripe_event_id LIKE 'evt_page_%' AND attempts > 0`);
      expect(retried).toBeGreaterThan(0); // rows did move while the pages were read
      expect(seen.length).toBe(new Set(seen).size);
      expect(new Set(seen).size).toBe(5000);
      await app.close();
      await worker;
    } finally {
      await app.close();
      await db.pool.query(`DELETE FROM webhook_retry_queue WHERE stripe_event_id LIKE 'evt_page_%'`);
    }
  });
});
