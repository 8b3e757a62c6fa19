import { AppConfig, ConfigurationError } from './app-config';
import { parseAdminTokens } from './environment-variables';

const valid = {
  NODE_ENV: 'production',
  STRIPE_WEBHOOK_SECRET: 'whsec_abc123',
  ADMIN_API_TOKEN: 'ops:0123456789abcdef0123',
  DATABASE_URL: 'postgres://u:p@db:5432/app',
};

/** The documented defaults, as the typed configuration holds them. */
const DOCUMENTED_DEFAULTS = {
  port: 3000,
  dbPoolSize: 10,
  stripeWebhookToleranceSeconds: 300,
  webhookMaxBodyBytes: 1_048_576,
  retryCron: '* * * * *',
  retryBaseDelaySeconds: 30,
  retryMaxDelaySeconds: 3600,
  retryMaxAttempts: 10,
  handlerTimeoutMs: 30_000,
  workerBatchSize: 100,
  workerConcurrency: 8,
  accessStatuses: ['active', 'trialing', 'past_due'],
  eventRetentionDays: 30,
  logLevel: 'info',
  dbMigrateOnBoot: true,
  reconcile: { cron: '*/10 * * * *', graceSeconds: 120, initialLookbackSeconds: 259_200 },
};

function problemOf(env: Record<string, string | undefined>): string {
  try {
    AppConfig.fromEnvironment(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigurationError');
}

describe('AppConfig.fromEnvironment', () => {
  it('applies the documented defaults', () => {
    const config = AppConfig.fromEnvironment(valid);
    expect(config).toMatchObject(DOCUMENTED_DEFAULTS);
    expect(config.stripeLivemode).toBeUndefined();
  });

  it('treats an empty or blank value as not set, so the default applies', () => {
    const blank = {
      PORT: '',
      NODE_ENV: '',
      STRIPE_WEBHOOK_TOLERANCE_SECONDS: '',
      LOG_LEVEL: ' ',
      DB_POOL_SIZE: '',
      DB_MIGRATE_ON_BOOT: '',
      WEBHOOK_MAX_BODY_BYTES: '',
      RETRY_CRON: '',
      RETRY_BASE_DELAY_SECONDS: '',
      RETRY_MAX_DELAY_SECONDS: '',
      RETRY_MAX_ATTEMPTS: '',
      HANDLER_TIMEOUT_MS: '',
      WORKER_BATCH_SIZE: '',
      ACCESS_STATUSES: '',
      EVENT_RETENTION_DAYS: '',
      DATA_DIR: '',
      STRIPE_API_KEY: '',
      STRIPE_API_BASE: '',
      STRIPE_API_MAX_RPS: '',
      RECONCILE_CRON: '',
      RECONCILE_GRACE_SECONDS: '',
      RECONCILE_INITIAL_LOOKBACK_SECONDS: '',
    };
    const config = AppConfig.fromEnvironment(blank);
    expect(config).toMatchObject({ ...DOCUMENTED_DEFAULTS, nodeEnv: 'development', dataDir: '.data' });
  });

  it('still refuses empty secrets in production, naming each variable and no value', () => {
    const message = problemOf({ ...valid, STRIPE_WEBHOOK_SECRET: '', ADMIN_API_TOKEN: '', PORT: '' });
    expect(message).toMatch(/STRIPE_WEBHOOK_SECRET is required/);
    expect(message).toMatch(/ADMIN_API_TOKEN is required/);
    expect(message).not.toContain('PORT');
  });

  it('refuses to start in production without a webhook secret, naming the variable', () => {
    expect(problemOf({ ...valid, STRIPE_WEBHOOK_SECRET: undefined })).toMatch(/STRIPE_WEBHOOK_SECRET is required/);
    expect(problemOf({ ...valid, STRIPE_WEBHOOK_SECRET: '  ' })).toMatch(/STRIPE_WEBHOOK_SECRET is required/);
  });

  it('refuses to start in production without an admin token, naming the variable', () => {
    expect(problemOf({ ...valid, ADMIN_API_TOKEN: '' })).toMatch(/ADMIN_API_TOKEN is required/);
  });

  it('refuses a tolerance of 0 or less (stripe-node would then skip the age check)', () => {
    expect(problemOf({ ...valid, STRIPE_WEBHOOK_TOLERANCE_SECONDS: '0' })).toMatch(/STRIPE_WEBHOOK_TOLERANCE_SECONDS/);
    expect(problemOf({ ...valid, STRIPE_WEBHOOK_TOLERANCE_SECONDS: '-5' })).toMatch(/STRIPE_WEBHOOK_TOLERANCE_SECONDS/);
  });

  it.each([
    ['PORT', 'abc'],
    ['DB_POOL_SIZE', '1'],
    ['RETRY_CRON', 'every minute'],
    ['RETENTION_CRON', 'nightly'],
    ['RETRY_MAX_ATTEMPTS', '0'],
    ['HANDLER_TIMEOUT_MS', '1.5'],
    ['ACCESS_STATUSES', 'active,bogus'],
    ['STRIPE_LIVEMODE', 'yes'],
    ['ALERT_WEBHOOK_URL', 'not a url'],
    ['LOG_LEVEL', 'loud'],
    ['DATABASE_URL', 'mysql://x/y'],
    ['WEBHOOK_MAX_BODY_BYTES', '10'],
    ['STRIPE_API_KEY', 'pk_test_publishable'],
    ['STRIPE_API_BASE', 'ftp://api.stripe.com'],
    ['STRIPE_API_BASE', 'https://proxy.internal/stripe'],
    ['STRIPE_API_MAX_RPS', '0'],
    ['RECONCILE_CRON', 'hourly'],
    ['RECONCILE_GRACE_SECONDS', '-1'],
    ['RECONCILE_INITIAL_LOOKBACK_SECONDS', '2592001'],
  ])('names %s when its value is invalid', (name, value) => {
    expect(problemOf({ ...valid, [name]: value })).toContain(name);
  });

  it('never echoes a secret value in its message', () => {
    const message = problemOf({ ...valid, STRIPE_WEBHOOK_SECRET: 'sk_live_oops_this_is_an_api_key' });
    expect(message).toContain('STRIPE_WEBHOOK_SECRET');
    expect(message).not.toContain('sk_live_oops');
  });

  it('turns pulling from Stripe off without STRIPE_API_KEY, and splits STRIPE_API_BASE for stripe-node', () => {
    expect(AppConfig.fromEnvironment(valid).stripeApi).toBeUndefined();
    expect(AppConfig.fromEnvironment({ ...valid, STRIPE_API_KEY: 'rk_live_abc123' }).stripeApi).toEqual({
      key: 'rk_live_abc123',
      location: { protocol: 'https', host: 'api.stripe.com', port: 443 },
      maxRequestsPerSecond: 20,
    });
    const local = AppConfig.fromEnvironment({
      ...valid,
      STRIPE_API_KEY: 'sk_test_abc123',
      STRIPE_API_BASE: 'http://127.0.0.1:12111',
      STRIPE_API_MAX_RPS: '2.5',
    });
    expect(local.stripeApi).toMatchObject({
      location: { protocol: 'http', host: '127.0.0.1', port: 12111 },
      maxRequestsPerSecond: 2.5,
    });
  });

  it('never echoes the Stripe API key in its message', () => {
    const message = problemOf({ ...valid, STRIPE_API_KEY: 'sk_live oops-with-a-space' });
    expect(message).toContain('STRIPE_API_KEY');
    expect(message).not.toContain('oops');
  });

  it('accepts a 6-field cron (seconds first) and several comma-separated secrets', () => {
    const config = AppConfig.fromEnvironment({
      ...valid,
      RETRY_CRON: '*/5 * * * * *',
      STRIPE_WEBHOOK_SECRET: 'whsec_one, whsec_two',
    });
    expect(config.retryCron).toBe('*/5 * * * * *');
    expect(config.stripeWebhookSecrets).toEqual(['whsec_one', 'whsec_two']);
  });

  it('requires the maximum retry delay to be at least the base delay', () => {
    expect(problemOf({ ...valid, RETRY_BASE_DELAY_SECONDS: '60', RETRY_MAX_DELAY_SECONDS: '30' })).toMatch(
      /RETRY_MAX_DELAY_SECONDS/,
    );
  });

  it('takes an optional METRICS_TOKEN of at least 16 characters, never echoing a refused one', () => {
    expect(AppConfig.fromEnvironment(valid).metricsToken).toBeUndefined();
    expect(AppConfig.fromEnvironment({ ...valid, METRICS_TOKEN: 'scrape-token-0123456789' }).metricsToken).toBe(
      'scrape-token-0123456789',
    );
    const message = problemOf({ ...valid, METRICS_TOKEN: 'short-secret' });
    expect(message).toContain('METRICS_TOKEN');
    expect(message).not.toContain('short-secret');
  });

  it('allows missing secrets outside production (main generates them)', () => {
    const config = AppConfig.fromEnvironment({ NODE_ENV: 'development' });
    expect(config.stripeWebhookSecrets).toEqual([]);
    expect(config.nodeEnv).toBe('development');
  });
});

describe('parseAdminTokens', () => {
  it('names holders from name:token entries and numbers unnamed ones', () => {
    expect(parseAdminTokens(['ops:abc:def', 'plaintoken'])).toEqual([
      { name: 'ops', token: 'abc:def' },
      { name: 'token-2', token: 'plaintoken' },
    ]);
  });
});
