import { AdminToken, Environment, NodeEnv, readVariables } from './environment-variables';

export interface HealthThresholds {
  maxPending?: number;
  maxOldestPendingAgeSeconds?: number;
  maxDeadLetters?: number;
}

/** Where stripe-node sends API calls (STRIPE_API_BASE, split as its options want it). */
export interface StripeApiLocation {
  protocol: 'http' | 'https';
  host: string;
  port: number;
}

/** Pulling from Stripe: present only when STRIPE_API_KEY is set. */
export interface StripeApiConfig {
  key: string;
  location: StripeApiLocation;
  maxRequestsPerSecond: number;
}

export interface ReconcileConfig {
  cron: string;
  graceSeconds: number;
  initialLookbackSeconds: number;
}

export class ConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigurationError';
  }
}

/** AppConfig's values, without its methods. */
export type AppConfigValues = Omit<AppConfig, 'with' | 'isProduction'>;

/**
 * The service's configuration, typed. Built once from the environment (and `.env`) by
 * `AppConfig.fromEnvironment`; everything else receives this object and never reads process.env.
 */
export class AppConfig {
  readonly nodeEnv: NodeEnv;
  readonly port: number;
  /** Unset means "start an embedded PostgreSQL" (resolved in main before the app is built). */
  readonly databaseUrl?: string;
  readonly dbPoolSize: number;
  readonly dbMigrateOnBoot: boolean;
  readonly stripeWebhookSecrets: readonly string[];
  readonly stripeWebhookToleranceSeconds: number;
  readonly webhookMaxBodyBytes: number;
  readonly adminTokens: readonly AdminToken[];
  readonly retryCron: string;
  readonly retryBaseDelaySeconds: number;
  readonly retryMaxDelaySeconds: number;
  readonly retryMaxAttempts: number;
  readonly handlerTimeoutMs: number;
  readonly workerBatchSize: number;
  readonly workerConcurrency: number;
  readonly accessStatuses: readonly string[];
  readonly stripeLivemode?: boolean;
  readonly alertWebhookUrl?: string;
  readonly eventRetentionDays: number;
  readonly retentionCron: string;
  readonly logLevel: string;
  readonly dataDir: string;
  readonly healthThresholds: HealthThresholds;
  /** When set, scrapes of /metrics must present it as a bearer token. */
  readonly metricsToken?: string;
  /** Undefined without STRIPE_API_KEY: nothing calls Stripe. */
  readonly stripeApi?: StripeApiConfig;
  readonly reconcile: ReconcileConfig;

  constructor(values: AppConfigValues) {
    this.nodeEnv = values.nodeEnv;
    this.port = values.port;
    this.databaseUrl = values.databaseUrl;
    this.dbPoolSize = values.dbPoolSize;
    this.dbMigrateOnBoot = values.dbMigrateOnBoot;
    this.stripeWebhookSecrets = values.stripeWebhookSecrets;
    this.stripeWebhookToleranceSeconds = values.stripeWebhookToleranceSeconds;
    this.webhookMaxBodyBytes = values.webhookMaxBodyBytes;
    this.adminTokens = values.adminTokens;
    this.retryCron = values.retryCron;
    this.retryBaseDelaySeconds = values.retryBaseDelaySeconds;
    this.retryMaxDelaySeconds = values.retryMaxDelaySeconds;
    this.retryMaxAttempts = values.retryMaxAttempts;
    this.handlerTimeoutMs = values.handlerTimeoutMs;
    this.workerBatchSize = values.workerBatchSize;
    this.workerConcurrency = values.workerConcurrency;
    this.accessStatuses = values.accessStatuses;
    this.stripeLivemode = values.stripeLivemode;
    this.alertWebhookUrl = values.alertWebhookUrl;
    this.eventRetentionDays = values.eventRetentionDays;
    this.retentionCron = values.retentionCron;
    this.logLevel = values.logLevel;
    this.dataDir = values.dataDir;
    this.healthThresholds = values.healthThresholds;
    this.metricsToken = values.metricsToken;
    this.stripeApi = values.stripeApi;
    this.reconcile = values.reconcile;
  }

  /** A copy with some values replaced (tests, and main once the embedded database is up). */
  with(overrides: Partial<AppConfigValues>): AppConfig {
    return new AppConfig({ ...this, ...overrides });
  }

  get isProduction(): boolean {
    return this.nodeEnv === 'production';
  }

  /**
   * Throws a ConfigurationError naming every invalid variable, never a value. Secrets may be
   * missing only outside production, where main fills them in from DATA_DIR.
   */
  static fromEnvironment(env: Environment): AppConfig {
    const { settings: s, problems } = readVariables(env);
    if (s.NODE_ENV === 'production') {
      if (!s.STRIPE_WEBHOOK_SECRET) {
        problems.push('STRIPE_WEBHOOK_SECRET is required when NODE_ENV=production (one or more whsec_… secrets)');
      }
      if (!s.ADMIN_API_TOKEN) {
        problems.push('ADMIN_API_TOKEN is required when NODE_ENV=production (one or more tokens)');
      }
    }
    if (problems.length === 0 && s.RETRY_MAX_DELAY_SECONDS < s.RETRY_BASE_DELAY_SECONDS) {
      problems.push('RETRY_MAX_DELAY_SECONDS must be at least RETRY_BASE_DELAY_SECONDS');
    }
    if (problems.length > 0) {
      throw new ConfigurationError(`Invalid configuration: ${problems.join('; ')}`);
    }
    return new AppConfig({
      nodeEnv: s.NODE_ENV,
      port: s.PORT,
      databaseUrl: s.DATABASE_URL,
      dbPoolSize: s.DB_POOL_SIZE,
      dbMigrateOnBoot: s.DB_MIGRATE_ON_BOOT,
      stripeWebhookSecrets: s.STRIPE_WEBHOOK_SECRET ?? [],
      stripeWebhookToleranceSeconds: s.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
      webhookMaxBodyBytes: s.WEBHOOK_MAX_BODY_BYTES,
      adminTokens: s.ADMIN_API_TOKEN ?? [],
      retryCron: s.RETRY_CRON,
      retryBaseDelaySeconds: s.RETRY_BASE_DELAY_SECONDS,
      retryMaxDelaySeconds: s.RETRY_MAX_DELAY_SECONDS,
      retryMaxAttempts: s.RETRY_MAX_ATTEMPTS,
      handlerTimeoutMs: s.HANDLER_TIMEOUT_MS,
      workerBatchSize: s.WORKER_BATCH_SIZE,
      // The pool less two connections, kept for acknowledging webhooks and probes.
      workerConcurrency: s.WORKER_CONCURRENCY ?? Math.max(1, s.DB_POOL_SIZE - 2),
      accessStatuses: s.ACCESS_STATUSES,
      stripeLivemode: s.STRIPE_LIVEMODE,
      alertWebhookUrl: s.ALERT_WEBHOOK_URL,
      eventRetentionDays: s.EVENT_RETENTION_DAYS,
      retentionCron: s.RETENTION_CRON,
      logLevel: s.LOG_LEVEL,
      dataDir: s.DATA_DIR,
      healthThresholds: {
        maxPending: s.HEALTH_MAX_PENDING,
        maxOldestPendingAgeSeconds: s.HEALTH_MAX_OLDEST_PENDING_AGE_SECONDS,
        maxDeadLetters: s.HEALTH_MAX_DEAD_LETTERS,
      },
      metricsToken: s.METRICS_TOKEN,
      stripeApi: s.STRIPE_API_KEY
        ? {
            key: s.STRIPE_API_KEY,
            location: stripeApiLocation(s.STRIPE_API_BASE),
            maxRequestsPerSecond: s.STRIPE_API_MAX_RPS,
          }
        : undefined,
      reconcile: {
        cron: s.RECONCILE_CRON,
        graceSeconds: s.RECONCILE_GRACE_SECONDS,
        initialLookbackSeconds: s.RECONCILE_INITIAL_LOOKBACK_SECONDS,
      },
    });
  }
}

/** A validated STRIPE_API_BASE as stripe-node's `protocol`, `host` and `port`. */
export function stripeApiLocation(base: string): StripeApiLocation {
  const url = new URL(base);
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  return {
    protocol,
    // new URL keeps an IPv6 host in brackets; Node's http wants it bare.
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? (protocol === 'http' ? 80 : 443) : Number(url.port),
  };
}
