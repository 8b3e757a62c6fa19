import { plainToInstance } from 'class-transformer';
import { validateSync, ValidationError } from 'class-validator';
import { EnvironmentVariables, VARIABLE_NAMES } from './environment-variables';

export type Environment = Record<string, string | undefined>;

export interface AdminToken {
  /** Who holds the token, as written to the audit log. */
  name: string;
  token: string;
}

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

/**
 * The service's configuration, typed. Built once from the environment (and `.env`) by
 * `AppConfig.fromEnvironment`; everything else receives this object and never reads process.env.
 */
export class AppConfig {
  readonly nodeEnv!: 'development' | 'production' | 'test';
  readonly port!: number;
  /** Unset means "start an embedded PostgreSQL" (resolved in main before the app is built). */
  readonly databaseUrl?: string;
  readonly dbPoolSize!: number;
  readonly dbMigrateOnBoot!: boolean;
  readonly stripeWebhookSecrets!: readonly string[];
  readonly stripeWebhookToleranceSeconds!: number;
  readonly webhookMaxBodyBytes!: number;
  readonly adminTokens!: readonly AdminToken[];
  readonly retryCron!: string;
  readonly retryBaseDelaySeconds!: number;
  readonly retryMaxDelaySeconds!: number;
  readonly retryMaxAttempts!: number;
  readonly handlerTimeoutMs!: number;
  readonly workerBatchSize!: number;
  readonly workerConcurrency!: number;
  readonly accessStatuses!: readonly string[];
  readonly stripeLivemode?: boolean;
  readonly alertWebhookUrl?: string;
  readonly eventRetentionDays!: number;
  readonly logLevel!: string;
  readonly dataDir!: string;
  readonly healthThresholds!: HealthThresholds;
  /** Undefined without STRIPE_API_KEY: nothing calls Stripe. */
  readonly stripeApi?: StripeApiConfig;
  readonly reconcile!: ReconcileConfig;

  /** A copy with some values replaced (tests, and main once the embedded database is up). */
  with(overrides: Partial<AppConfig>): AppConfig {
    return Object.assign(Object.create(AppConfig.prototype) as AppConfig, this, overrides);
  }

  get isProduction(): boolean {
    return this.nodeEnv === 'production';
  }

  /**
   * Validates the environment. Throws a ConfigurationError whose message names every invalid
   * variable (and never shows a value). Secrets may be missing here only outside production;
   * main fills them in from `.data/` before the app starts.
   */
  static fromEnvironment(env: Environment): AppConfig {
    const vars = plainToInstance(EnvironmentVariables, stripUnknown(env), { exposeDefaultValues: true });
    const problems = validateSync(vars, { forbidUnknownValues: false }).flatMap(messagesOf);
    if (vars.NODE_ENV === 'production') {
      if (!vars.STRIPE_WEBHOOK_SECRET) {
        problems.push('STRIPE_WEBHOOK_SECRET is required when NODE_ENV=production (one or more whsec_… secrets)');
      }
      if (!vars.ADMIN_API_TOKEN) {
        problems.push('ADMIN_API_TOKEN is required when NODE_ENV=production (one or more tokens)');
      }
    }
    if (problems.length === 0 && vars.RETRY_MAX_DELAY_SECONDS < vars.RETRY_BASE_DELAY_SECONDS) {
      problems.push('RETRY_MAX_DELAY_SECONDS must be at least RETRY_BASE_DELAY_SECONDS');
    }
    if (problems.length > 0) {
      throw new ConfigurationError(`Invalid configuration: ${problems.join('; ')}`);
    }
    return Object.assign(Object.create(AppConfig.prototype) as AppConfig, {
      nodeEnv: vars.NODE_ENV as AppConfig['nodeEnv'],
      port: vars.PORT,
      databaseUrl: vars.DATABASE_URL,
      dbPoolSize: vars.DB_POOL_SIZE,
      dbMigrateOnBoot: vars.DB_MIGRATE_ON_BOOT,
      stripeWebhookSecrets: vars.STRIPE_WEBHOOK_SECRET ?? [],
      stripeWebhookToleranceSeconds: vars.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
      webhookMaxBodyBytes: vars.WEBHOOK_MAX_BODY_BYTES,
      adminTokens: parseAdminTokens(vars.ADMIN_API_TOKEN ?? []),
      retryCron: vars.RETRY_CRON,
      retryBaseDelaySeconds: vars.RETRY_BASE_DELAY_SECONDS,
      retryMaxDelaySeconds: vars.RETRY_MAX_DELAY_SECONDS,
      retryMaxAttempts: vars.RETRY_MAX_ATTEMPTS,
      handlerTimeoutMs: vars.HANDLER_TIMEOUT_MS,
      workerBatchSize: vars.WORKER_BATCH_SIZE,
      workerConcurrency: vars.WORKER_CONCURRENCY ?? Math.max(1, vars.DB_POOL_SIZE - 2),
      accessStatuses: vars.ACCESS_STATUSES,
      stripeLivemode: vars.STRIPE_LIVEMODE,
      alertWebhookUrl: vars.ALERT_WEBHOOK_URL,
      eventRetentionDays: vars.EVENT_RETENTION_DAYS,
      logLevel: vars.LOG_LEVEL,
      dataDir: vars.DATA_DIR,
      healthThresholds: {
        maxPending: vars.HEALTH_MAX_PENDING,
        maxOldestPendingAgeSeconds: vars.HEALTH_MAX_OLDEST_PENDING_AGE_SECONDS,
        maxDeadLetters: vars.HEALTH_MAX_DEAD_LETTERS,
      },
      stripeApi: vars.STRIPE_API_KEY
        ? {
            key: vars.STRIPE_API_KEY,
            location: stripeApiLocation(vars.STRIPE_API_BASE),
            maxRequestsPerSecond: vars.STRIPE_API_MAX_RPS,
          }
        : undefined,
      reconcile: {
        cron: vars.RECONCILE_CRON,
        graceSeconds: vars.RECONCILE_GRACE_SECONDS,
        initialLookbackSeconds: vars.RECONCILE_INITIAL_LOOKBACK_SECONDS,
      },
    });
  }
}

/**
 * Only the documented variables are looked at; the rest of the environment is none of our business.
 * An empty or blank value means "not set" (as in most .env files and `VAR=` in compose files), so it
 * is left out here and the variable's default applies. Had it been passed on, the transforms would
 * turn it into undefined over the default and validation would refuse it. A secret or token left
 * empty is thus missing, which production refuses below.
 */
function stripUnknown(env: Environment): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of VARIABLE_NAMES) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') {
      out[key] = value;
    }
  }
  return out;
}

function messagesOf(error: ValidationError): string[] {
  // The first failing constraint per variable is enough; our messages already say what is expected.
  const first = Object.values(error.constraints ?? {})[0];
  return first ? [first] : [`${error.property} is invalid`];
}

/** `name:token` names the holder; an unnamed token is called `token-<n>` (1-based) in the audit log. */
export function parseAdminTokens(entries: readonly string[]): AdminToken[] {
  return entries.map((entry, index) => {
    const colon = entry.indexOf(':');
    return colon > 0
      ? { name: entry.slice(0, colon), token: entry.slice(colon + 1) }
      : { name: `token-${index + 1}`, token: colon === 0 ? entry.slice(1) : entry };
  });
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
