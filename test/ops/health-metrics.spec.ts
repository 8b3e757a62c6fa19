import { Database } from '../../src/database/database';
import { LifecycleService } from '../../src/core/lifecycle.service';
import { Dispatcher } from '../../src/queue/dispatcher.service';
import { HandlerRegistry } from '../../src/queue/handler-registry';
import { PermanentEventError } from '../../src/queue/permanent-event.error';
import { QueueStatsService } from '../../src/queue/queue-stats.service';
import { createTestDatabase, TestDatabase } from '../support/database';
import { FAST_QUEUE, settle } from '../support/queue';
import { randomId, signatureHeader, stripeEvent } from '../support/stripe';
import { TcpProxy } from '../support/tcp-proxy';
import { startTestApp, TestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

/** One sample's value from Prometheus text, e.g. metric('x_total', {outcome: 'accepted'}). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels);
  for (const line of text.split('\n')) {
    const match = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) {
      continue;
    }
    const present = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (wanted.every(([k, v]) => present[k] === v)) {
      return Number(match[3]);
    }
  }
  return undefined;
}

describe('health and metrics', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let t: TestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    proxy = await TcpProxy.start(db.url);
    t = await startTestApp(proxy.urlFor(db.url), {
      ...FAST_QUEUE,
      RETRY_MAX_ATTEMPTS: '2',
      WEBHOOK_MAX_BODY_BYTES: '4096',
    });
    const registry = t.app.get(HandlerRegistry);
    registry.register('test.ok', () => Promise.resolve());
    registry.register(
      'test.flaky_once',
      (() => {
        const seen = new Set<string>();
        return (event: { id: string }) => {
          if (seen.has(event.id)) {
            return Promise.resolve();
          }
          seen.add(event.id);
          return Promise.reject(new Error('first attempt fails'));
        };
      })(),
    );
    registry.register('test.doomed', () => Promise.reject(new PermanentEventError('never')));
  });
  afterAll(async () => {
    await t.close();
    await proxy.close();
    await db.drop();
  });

  const webhooksHealth = () => t.http.get('/health/webhooks');

  it('answers /health/live and /health/ready in the terminus format', async () => {
    expect((await t.http.get('/health/live')).body).toEqual({ status: 'ok', info: {}, error: {}, details: {} });
    const ready = await t.http.get('/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({
      status: 'ok',
      info: { database: { status: 'up' }, migrations: { status: 'up' } },
    });
  });

  it('reports the backlog in /health/webhooks with the documented fields', async () => {
    await t.deliver(stripeEvent('test.doomed', { id: randomId('obj') })); // one dead letter
    const flaky = stripeEvent('test.flaky_once', { id: randomId('obj') });
    await t.deliver(flaky); // fails once: a pending retry, due in 50 ms (nobody drains it here)
    await t.app.get(Dispatcher).whenIdle();
    const res = await waitUntil(async () => {
      const r = await webhooksHealth();
      return r.body.info?.webhooks?.dlq_items === 1 && r.body.info?.webhooks?.pending === 1 ? r : undefined;
    }, 8_000);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      status: 'ok',
      info: {
        database: { status: 'up' },
        webhooks: {
          status: 'up',
          pending: 1,
          pending_retries: 1,
          dlq_items: 1,
          oldest_pending_age_seconds: expect.any(Number),
          reconcile: 'disabled',
          last_reconcile_at: null,
        },
      },
      error: {},
      details: {
        database: { status: 'up' },
        webhooks: {
          status: 'up',
          pending: 1,
          pending_retries: 1,
          dlq_items: 1,
          oldest_pending_age_seconds: expect.any(Number),
          reconcile: 'disabled',
          last_reconcile_at: null,
        },
      },
    });
    expect(await settle(t, db.pool, flaky.id as string)).toMatchObject({ status: 'processed', attempts: 2 });
  });

  it('fails /health/webhooks past a configured threshold, not before', async () => {
    const strict = await startTestApp(db.url, { ...FAST_QUEUE, HEALTH_MAX_DEAD_LETTERS: '0' });
    try {
      const res = await waitUntil(async () => {
        const r = await strict.http.get('/health/webhooks');
        return r.status === 503 ? r : undefined;
      }, 8_000);
      expect(res.body).toMatchObject({
        status: 'error',
        error: { webhooks: { status: 'down', dlq_items: 1, message: 'dead letters above 0' } },
      });
    } finally {
      await strict.close();
    }
    expect((await webhooksHealth()).status).toBe(200); // no threshold: dead letters alone are fine
  });

  it('stays 200 with the last figures while the database answers but the backlog cannot be counted', async () => {
    await waitUntil(async () => (await webhooksHealth()).status === 200, 8_000);
    const locker = await db.pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE webhook_retry_queue IN ACCESS EXCLUSIVE MODE');
      // Past the 5 s the figures may be old, every count now waits on the lock and gives up.
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      const res = await webhooksHealth();
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        status: 'ok',
        info: { database: { status: 'up' }, webhooks: { status: 'up', pending: expect.any(Number) } },
      });
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
  });

  it('answers 503 quickly while the database is unreachable; /health/live stays 200', async () => {
    proxy.cut();
    try {
      const started = Date.now();
      const [webhooks, ready, live] = await Promise.all([
        webhooksHealth(),
        t.http.get('/health/ready'),
        t.http.get('/health/live'),
      ]);
      expect(Date.now() - started).toBeLessThan(4_000);
      expect(webhooks.status).toBe(503);
      expect(webhooks.body).toMatchObject({ status: 'error', error: { database: { status: 'down' } } });
      expect(ready.status).toBe(503);
      expect(live.status).toBe(200);
    } finally {
      proxy.restore();
    }
    await waitUntil(async () => (await webhooksHealth()).status === 200, 8_000);
  });

  it('never hangs while the database is a black hole, keeps /metrics answering, and recovers after it', async () => {
    // Its own proxy and app, with the smallest pool: a probe that leaves a connection hung shows as
    // a pool that never recovers. Connections stalled in the black hole stay stalled after restore.
    const hole = await TcpProxy.start(db.url);
    const small = await startTestApp(hole.urlFor(db.url), { ...FAST_QUEUE, DB_POOL_SIZE: '2' });
    const timed = async (path: string) => {
      const started = Date.now();
      const res = await small.http.get(path).timeout(10_000);
      return {
        status: res.status,
        body: res.body as Record<string, unknown>,
        text: res.text,
        ms: Date.now() - started,
      };
    };
    const probes = async () => {
      const [ready, webhooks, live, metrics] = await Promise.all(
        ['/health/ready', '/health/webhooks', '/health/live', '/metrics'].map(timed),
      );
      return { ready, webhooks, live, metrics };
    };
    try {
      await waitUntil(async () => (await timed('/health/webhooks')).status === 200, 8_000);
      const healthy = await timed('/metrics');
      const deadLetters = sample(healthy.text, 'stripe_webhook_dead_letters');
      expect(deadLetters).toEqual(expect.any(Number));
      const stats = small.app.get(QueueStatsService);

      hole.blackHole();
      // The background count happens to be in flight as the database goes silent.
      void stats.refresh().catch(() => undefined);
      // At once (figures still fresh), and again once the cached figures are older than the 5 s
      // that /metrics and /health/webhooks would otherwise wait to refresh.
      const rounds = [await probes()];
      await waitUntil(() => Date.now() - (stats.cached?.measuredAt ?? 0) > 5_500, 10_000, 'stale figures');
      rounds.push(await probes());
      for (const { ready, webhooks, live, metrics } of rounds) {
        for (const res of [ready, webhooks, live, metrics]) {
          expect(res.ms).toBeLessThan(5_000); // the probes give up after 2 s; slack for a loaded machine
        }
        expect(ready.status).toBe(503);
        expect(webhooks.status).toBe(503);
        expect(webhooks.body).toMatchObject({ status: 'error', error: { database: { status: 'down' } } });
        expect(live.status).toBe(200);
        expect(metrics.status).toBe(200);
        expect(sample(metrics.text, 'stripe_webhook_dead_letters')).toBe(deadLetters); // the cached figure
      }

      hole.restore();
      await waitUntil(async () => (await timed('/health/webhooks')).status === 200, 8_000, '/health/webhooks 200');
      expect((await timed('/health/ready')).status).toBe(200);
    } finally {
      await hole.close(); // first: without it a connection left hung would keep the app from closing
      await small.close();
    }
  });

  it('does not use up the pool with probes that time out in a black hole', async () => {
    const hole = await TcpProxy.start(db.url);
    const small = await startTestApp(hole.urlFor(db.url), { ...FAST_QUEUE, DB_POOL_SIZE: '2' });
    try {
      small.app.get(QueueStatsService).onApplicationShutdown(); // only the probes use the pool here
      expect((await small.http.get('/health/ready')).status).toBe(200); // migrations seen applied: pings only
      // Both connections of the pool open and idle, then silent: each probe takes one.
      await Promise.all([1, 2].map(() => small.app.get(Database).query('SELECT pg_sleep(0.05)')));
      hole.blackHole();
      const started = Date.now();
      const probes = await Promise.all([1, 2].map(() => small.http.get('/health/ready').timeout(10_000)));
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(probes.map((r) => r.status)).toEqual([503, 503]);
      hole.restore();
      // A probe that left its connection hung would leave the pool full for good.
      await waitUntil(async () => (await small.http.get('/health/ready').timeout(10_000)).status === 200, 8_000);
    } finally {
      await hole.close();
      await small.close();
    }
  });

  it('answers 503 on readiness and webhooks once shutdown begins', async () => {
    const closing = await startTestApp(db.url, FAST_QUEUE);
    try {
      closing.app.get(LifecycleService).beginShutdown();
      expect((await closing.http.get('/health/ready')).status).toBe(503);
      expect((await closing.http.get('/health/webhooks')).status).toBe(503);
      expect((await closing.http.get('/health/live')).status).toBe(200);
    } finally {
      await closing.close();
    }
  });

  it('counts deliveries and attempts in /metrics by type and outcome', async () => {
    const before = (await t.http.get('/metrics')).text;
    const read = (text: string, name: string, labels: Record<string, string>) => sample(text, name, labels) ?? 0;

    const ok = stripeEvent('test.ok', { id: randomId('obj') });
    await t.deliver(ok);
    await t.deliver(ok); // duplicate
    await t.deliver(stripeEvent('unknown.type', { id: randomId('obj') })); // stored as ignored
    await t.deliver(stripeEvent('test.ok', {}), { secret: 'whsec_not_ours' }); // invalid signature
    await t.deliver('{"not":"an event"}'); // invalid payload
    await t.deliver(stripeEvent('test.ok', { blob: 'x'.repeat(5000) })); // too large
    const doomed = stripeEvent('test.doomed', { id: randomId('obj') });
    await t.deliver(doomed);
    const flaky = stripeEvent('test.flaky_once', { id: randomId('obj') });
    await t.deliver(flaky);
    await settle(t, db.pool, flaky.id as string);
    proxy.cut();
    const payload = JSON.stringify(stripeEvent('test.ok', { id: randomId('obj') }));
    await t.http.post('/webhooks/stripe').set('Stripe-Signature', signatureHeader(payload)).send(payload); // unavailable
    proxy.restore();
    await t.app.get(Dispatcher).whenIdle();

    const after = (await t.http.get('/metrics')).text;
    const delta = (name: string, labels: Record<string, string>) =>
      read(after, name, labels) - read(before, name, labels);
    const received = 'stripe_webhook_events_received_total';
    expect(delta(received, { event_type: 'test.ok', outcome: 'accepted' })).toBe(1);
    expect(delta(received, { event_type: 'test.ok', outcome: 'duplicate' })).toBe(1);
    expect(delta(received, { event_type: 'unknown.type', outcome: 'accepted' })).toBe(1);
    expect(delta(received, { event_type: '', outcome: 'invalid_signature' })).toBe(1);
    expect(delta(received, { event_type: '', outcome: 'invalid_payload' })).toBe(1);
    expect(delta(received, { event_type: '', outcome: 'payload_too_large' })).toBe(1);
    expect(delta(received, { event_type: 'test.ok', outcome: 'unavailable' })).toBe(1);
    const processed = 'stripe_webhook_events_processed_total';
    expect(delta(processed, { event_type: 'test.ok', outcome: 'processed' })).toBe(1);
    expect(delta(processed, { event_type: 'unknown.type', outcome: 'ignored' })).toBe(1);
    expect(delta(processed, { event_type: 'test.doomed', outcome: 'dead' })).toBe(1);
    expect(delta(processed, { event_type: 'test.flaky_once', outcome: 'retried' })).toBe(1);
    expect(delta(processed, { event_type: 'test.flaky_once', outcome: 'processed' })).toBe(1);
    expect(delta('stripe_webhook_ack_duration_seconds_count', {})).toBe(9);
    expect(delta('stripe_webhook_handler_duration_seconds_count', { event_type: 'test.ok' })).toBe(1);
    for (const gauge of [
      'stripe_webhook_queue_pending',
      'stripe_webhook_queue_oldest_pending_age_seconds',
      'stripe_webhook_dead_letters',
    ]) {
      expect(sample(after, gauge)).toEqual(expect.any(Number));
    }
    // Gauges read figures at most 5 s old.
    await waitUntil(
      async () => (sample((await t.http.get('/metrics')).text, 'stripe_webhook_dead_letters') ?? 0) >= 2,
      8_000,
    );
    expect(after).toMatch(/^process_cpu_user_seconds_total /m);
    expect(after).toMatch(/^nodejs_heap_size_used_bytes /m);
  });

  it('asks for METRICS_TOKEN as a bearer token on /metrics when it is set, and only then', async () => {
    const token = 'scrape-token-0123456789abcdef';
    const guarded = await startTestApp(db.url, { METRICS_TOKEN: token });
    try {
      for (const authorization of [undefined, 'Bearer wrong-token-0123456789', token]) {
        const req = guarded.http.get('/metrics');
        const res = await (authorization === undefined ? req : req.set('Authorization', authorization));
        expect(res.status).toBe(401);
        expect(res.body).toEqual({ statusCode: 401, error: 'unauthorized', message: expect.any(String) });
      }
      const scraped = await guarded.http.get('/metrics').set('Authorization', `Bearer ${token}`);
      expect(scraped.status).toBe(200);
      expect(scraped.text).toMatch(/^stripe_webhook_events_received_total|^# HELP/m);
      // Probes stay open: the orchestrator calls them without credentials.
      expect((await guarded.http.get('/health/live')).status).toBe(200);
    } finally {
      await guarded.close();
    }
    expect((await t.http.get('/metrics')).status).toBe(200);
  });
});
