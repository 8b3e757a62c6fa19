import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { json, Router } from 'express';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { AllExceptionsFilter } from './common/all-exceptions.filter';
import { AppValidationPipe } from './common/app-validation.pipe';
import { LifecycleService } from './core/lifecycle.service';
import { AppConfig } from './config/app-config';
import { withDevelopmentSecrets } from './config/development-secrets';
import type { Environment } from './config/environment-variables';
import { resolveDatabase } from './database/database-location';
import { defaultHttpLimits, HttpLimits } from './http/http-limits';
import { HttpServerGuard } from './http/http-server-guard';
import { MetricsService } from './metrics/metrics.service';
import { webhookMetrics } from './metrics/webhook-metrics.middleware';
import { leaseMs } from './queue/retry-policy';
import { BodyBudget } from './webhooks/body-budget';
import { StripeSignatureVerifier } from './webhooks/stripe-signature.verifier';
import { webhookBody } from './webhooks/webhook-body.middleware';

/** The JSON body limit of every route but the webhook (admin and product APIs take small bodies). */
const API_BODY_LIMIT = '256kb';

export interface AppOptions {
  /** Tests shorten these to see them act; the service runs with the defaults. */
  httpLimits?: Partial<HttpLimits>;
}

/**
 * Builds the application as it runs, for main and tests, server timeouts included. The webhook route
 * takes raw bytes: the signature is over them, and nothing may refuse a request before the signature
 * check but the limits on what its body may cost (size, time, memory in flight).
 */
export async function createApp(config: AppConfig, options: AppOptions = {}): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.register(config), {
    bodyParser: false,
    bufferLogs: true,
    abortOnError: false,
  });
  app.useLogger(app.get(Logger));
  app.disable('x-powered-by');
  const limits = { ...defaultHttpLimits(config.webhookMaxBodyBytes), ...options.httpLimits };
  new HttpServerGuard(app.getHttpServer(), limits);
  const verifier = app.get(StripeSignatureVerifier);
  // Deliveries are counted from arrival, so the body reader's refusals count too. Classic and thin
  // deliveries share the limits and the budget of bodies in flight.
  app.use(
    '/webhooks/stripe',
    Router().post(
      ['/', '/thin'],
      webhookMetrics(app.get(MetricsService)),
      webhookBody({
        checkHeader: (header) => verifier.checkHeader(header),
        maxBytes: config.webhookMaxBodyBytes,
        timeoutMs: limits.webhookBodyTimeoutMs,
        budget: new BodyBudget(limits.webhookBodyBudgetBytes),
      }),
    ),
  );
  app.use(json({ limit: API_BODY_LIMIT }));
  app.useGlobalFilters(new AllExceptionsFilter());
  app.useGlobalPipes(new AppValidationPipe());
  serveOpenApi(app);
  return app;
}

/** The OpenAPI document at /docs-json, with Swagger UI at /docs. */
function serveOpenApi(app: NestExpressApplication): void {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('stripe-webhook-processor')
      .setDescription(
        'Receives Stripe webhooks, keeps subscription state and entitlements in PostgreSQL, and lets operators ' +
          'inspect and replay what failed. Admin and product routes take `Authorization: Bearer <ADMIN_API_TOKEN>`.',
      )
      .setVersion('1')
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'ADMIN_API_TOKEN' })
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
}

export interface RunningService {
  app: NestExpressApplication;
  config: AppConfig;
  /** Base URL the service listens on. */
  url: string;
  /** Graceful stop: not ready, stop claiming, finish in-flight work, close, stop the embedded database. */
  stop(): Promise<void>;
  /** Longest a graceful stop may take: waiting for a claim and for running attempts, one lease each. */
  shutdownDeadlineMs: number;
}

/**
 * Validates the configuration (generating development secrets when allowed), starts the embedded
 * database when there is no DATABASE_URL, and serves on PORT.
 */
export async function startService(env: Environment, print: (line: string) => void): Promise<RunningService> {
  const initial = AppConfig.fromEnvironment(withDevelopmentSecrets(env, print));
  const database = await resolveDatabase(initial.databaseUrl, initial.dataDir, print);
  const config = initial.with({ databaseUrl: database.url });
  let app: NestExpressApplication;
  try {
    app = await createApp(config);
    await app.listen(config.port);
  } catch (error) {
    await database.embedded?.stop();
    throw error;
  }
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  return {
    app,
    config,
    url: `http://127.0.0.1:${port}`,
    shutdownDeadlineMs: 2 * leaseMs(config.handlerTimeoutMs) + 20_000,
    stop: async () => {
      app.get(LifecycleService).beginShutdown();
      try {
        await app.close();
      } finally {
        await database.embedded?.stop();
      }
    },
  };
}
