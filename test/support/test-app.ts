import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import { AppOptions, createApp } from '../../src/app-setup';
import { AppConfig } from '../../src/config/app-config';
import type { Environment } from '../../src/config/environment-variables';
import { EventHandler, HandlerRegistry } from '../../src/queue/handler-registry';
import { RetryWorker } from '../../src/queue/retry-worker.service';
import { createTestDatabase, TestDatabase } from './database';
import { signatureHeader, TEST_SECRET } from './stripe';

export const ADMIN_TOKEN = 'ops-token-0123456789abcdef';
export const AUDITOR_TOKEN = 'auditor-token-0123456789abcdef';

export interface TestApp {
  app: NestExpressApplication;
  config: AppConfig;
  url: string;
  http: ReturnType<typeof request>;
  /** POSTs a JSON event to /webhooks/stripe with a valid signature (unless a header is given). */
  deliver(event: unknown, options?: { header?: string; secret?: string }): Promise<request.Response>;
  /** The same to /webhooks/stripe/thin, as an event destination with thin payloads sends it. */
  deliverThin(event: unknown, options?: { header?: string; secret?: string }): Promise<request.Response>;
  close(): Promise<void>;
}

/**
 * The service as it runs (createApp, listening on a free port), with test configuration.
 * `handlers` are registered before the app starts, as the billing handlers are, so that events
 * already queued are not handled (or ignored) before the test's handler exists.
 */
export async function startTestApp(
  databaseUrl: string,
  env: Environment = {},
  handlers: Record<string, EventHandler> = {},
  options: AppOptions = {},
): Promise<TestApp> {
  const config = AppConfig.fromEnvironment({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    STRIPE_WEBHOOK_SECRET: TEST_SECRET,
    ADMIN_API_TOKEN: `ops:${ADMIN_TOKEN},auditor:${AUDITOR_TOKEN}`,
    DATABASE_URL: databaseUrl,
    DB_MIGRATE_ON_BOOT: 'false',
    ...env,
  });
  const app = await createApp(config, options);
  for (const [type, handler] of Object.entries(handlers)) {
    app.get(HandlerRegistry).register(type, handler);
  }
  await app.listen(0, '127.0.0.1');
  // The drain a replica runs at boot would otherwise race rows a test inserts right after.
  await app.get(RetryWorker).whenDrained();
  const address = app.getHttpServer().address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const http = request(url);
  const post =
    (path: string) =>
    (event: unknown, options: { header?: string; secret?: string } = {}): request.Test => {
      const payload = typeof event === 'string' ? event : JSON.stringify(event);
      return http
        .post(path)
        .set('Content-Type', 'application/json')
        .set('Stripe-Signature', options.header ?? signatureHeader(payload, options.secret ?? TEST_SECRET))
        .send(payload);
    };
  return {
    app,
    config,
    url,
    http,
    deliver: post('/webhooks/stripe'),
    deliverThin: post('/webhooks/stripe/thin'),
    close: () => app.close(),
  };
}

/**
 * A database of its own and the service on it, for the tests of the enclosing describe block:
 * both are created before its first test (then `db` and `t` are filled in) and closed after its
 * last. `env` may be a function, for settings known only once earlier hooks have run.
 */
export function useTestApp(
  env: Environment | (() => Environment) = {},
  handlers: Record<string, EventHandler> = {},
): { db: TestDatabase; t: TestApp } {
  const db = {} as TestDatabase;
  const t = {} as TestApp;
  beforeAll(async () => {
    Object.assign(db, await createTestDatabase());
    Object.assign(t, await startTestApp(db.url, typeof env === 'function' ? env() : env, handlers));
  });
  afterAll(async () => {
    await t.close?.();
    await db.drop?.();
  });
  return { db, t };
}
