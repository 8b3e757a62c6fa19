import { HandlerRegistry } from '../../src/queue/handler-registry';
import { PermanentEventError } from '../../src/queue/permanent-event.error';
import { AlertReceiver } from '../support/alert-receiver';
import { count, createTestDatabase, TestDatabase } from '../support/database';
import { FAST_QUEUE, settle } from '../support/queue';
import { freePort } from '../support/service-process';
import { randomId, stripeEvent } from '../support/stripe';
import { startTestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

describe('dead-letter alerts', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  it('posts {"text"} naming the event, type, attempts and error; events dying together share one message', async () => {
    const receiver = await AlertReceiver.start();
    const t = await startTestApp(db.url, { ...FAST_QUEUE, ALERT_WEBHOOK_URL: receiver.url, RETRY_MAX_ATTEMPTS: '2' });
    try {
      t.app
        .get(HandlerRegistry)
        .register('test.dies', () => Promise.reject(new PermanentEventError('customer is gone')));
      t.app.get(HandlerRegistry).register('test.fails', () => Promise.reject(new Error('still broken')));
      const lone = stripeEvent('test.fails', { id: randomId('obj') });
      await t.deliver(lone);
      await settle(t, db.pool, lone.id as string);
      const first = await waitUntil(() => receiver.messages[0], 5_000, 'first alert');
      expect(first.text).toContain(lone.id as string);
      expect(first.text).toContain('test.fails');
      expect(first.text).toContain('after 2 attempts');
      expect(first.text).toContain('Error: still broken');

      const burst = Array.from({ length: 4 }, () => stripeEvent('test.dies', { id: randomId('obj') }));
      await Promise.all(burst.map((e) => t.deliver(e)));
      const second = await waitUntil(() => receiver.messages[1], 5_000, 'burst alert');
      expect(second.text).toMatch(/^:rotating_light: 4 Stripe events/);
      for (const event of burst) {
        expect(second.text).toContain(event.id as string);
      }
      expect(receiver.messages).toHaveLength(2);
    } finally {
      await t.close();
      await receiver.close();
    }
  });

  it('an unreachable or failing alert endpoint changes nothing else', async () => {
    const refusing = await AlertReceiver.start(500);
    for (const url of [`http://127.0.0.1:${await freePort()}/nobody-listens`, refusing.url]) {
      const t = await startTestApp(db.url, { ...FAST_QUEUE, ALERT_WEBHOOK_URL: url });
      try {
        t.app.get(HandlerRegistry).register('test.dies', () => Promise.reject(new PermanentEventError('gone')));
        t.app.get(HandlerRegistry).register('test.ok', () => Promise.resolve());
        const dying = stripeEvent('test.dies', { id: randomId('obj') });
        const fine = stripeEvent('test.ok', { id: randomId('obj') });
        expect((await t.deliver(dying)).status).toBe(200);
        expect(await settle(t, db.pool, dying.id as string)).toMatchObject({ status: 'dead' });
        expect(await count(db.pool, 'webhook_dead_letter_queue', 'stripe_event_id = $1', [dying.id])).toBe(1);
        expect((await t.deliver(fine)).status).toBe(200);
        expect(await settle(t, db.pool, fine.id as string)).toMatchObject({ status: 'processed' });
      } finally {
        await t.close();
      }
    }
    expect(refusing.messages.length).toBeGreaterThan(0);
    await refusing.close();
  });
});

describe('OpenAPI', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  it('describes every route with the bearer scheme at /docs-json, and serves Swagger UI at /docs', async () => {
    const t = await startTestApp(db.url);
    try {
      const res = await t.http.get('/docs-json');
      expect(res.status).toBe(200);
      const document = res.body as {
        paths: Record<string, Record<string, { security?: unknown[]; tags?: string[]; responses?: unknown }>>;
        components: { securitySchemes: Record<string, unknown> };
      };
      expect(Object.keys(document.paths).sort()).toEqual(
        [
          '/admin/audit-log',
          '/admin/console',
          '/admin/customers/{customerId}/events',
          '/admin/customers/{customerId}/subscriptions',
          '/admin/dead-letters',
          '/admin/dead-letters/replay',
          '/admin/dead-letters/{id}',
          '/admin/dead-letters/{id}/replay',
          '/admin/events',
          '/admin/events/{stripeEventId}',
          '/admin/events/{stripeEventId}/reprocess',
          '/admin/reconcile',
          '/admin/reconcile/runs',
          '/admin/reconcile/runs/{id}',
          '/admin/retry-queue',
          '/admin/stats',
          '/health/live',
          '/health/ready',
          '/health/webhooks',
          '/metrics',
          '/v1/customers/{customerId}/entitlements',
          '/v1/customers/{customerId}/usage',
          '/v1/customers/{customerId}/wallet',
          '/v1/users/{userId}/entitlements',
          '/webhooks/stripe',
          '/webhooks/stripe/thin',
        ].sort(),
      );
      expect(Object.values(document.components.securitySchemes)).toContainEqual(
        expect.objectContaining({ scheme: 'bearer' }),
      );
      expect(document.paths['/admin/dead-letters'].get.security).toEqual([{ bearer: [] }]);
      // Connect: both admin lists take ?account=acct_….
      for (const path of ['/admin/events', '/admin/dead-letters']) {
        expect(document.paths[path].get).toMatchObject({
          security: [{ bearer: [] }],
          parameters: expect.arrayContaining([expect.objectContaining({ name: 'account', in: 'query' })]),
        });
      }
      expect(document.paths['/v1/customers/{customerId}/entitlements'].get.security).toEqual([{ bearer: [] }]);
      expect(document.paths['/admin/reconcile'].post).toMatchObject({
        security: [{ bearer: [] }],
        responses: { '202': expect.anything(), '409': expect.anything(), '503': expect.anything() },
      });
      expect(document.paths['/admin/reconcile/runs/{id}'].get.responses).toHaveProperty('404');
      // Both Stripe routes are documented alike, and neither takes a bearer token (the signature is the check).
      for (const path of ['/webhooks/stripe', '/webhooks/stripe/thin']) {
        expect(document.paths[path].post).toMatchObject({
          tags: expect.arrayContaining(['stripe']),
          responses: { '200': expect.anything(), '400': expect.anything(), '413': expect.anything() },
        });
        expect(document.paths[path].post.security).toBeUndefined();
      }
      expect(document.paths['/metrics'].get).toMatchObject({
        tags: ['metrics'],
        responses: { '200': { content: { 'text/plain': expect.anything() } } },
      });
      expect(document.paths['/metrics'].get.security).toBeUndefined();
      // The console page is public (it holds no data); the routes it calls are not.
      expect(document.paths['/admin/console'].get.security).toBeUndefined();
      expect(document.paths['/admin/stats'].get.security).toEqual([{ bearer: [] }]);
      const ui = await t.http.get('/docs');
      expect(ui.status).toBe(200);
      expect(ui.text).toContain('swagger');
    } finally {
      await t.close();
    }
  });
});
