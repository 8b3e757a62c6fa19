import { Transform } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  IsUrl,
  Max,
  Min,
  Validate,
  ValidatorConstraint,
  ValidatorConstraintInterface,
} from 'class-validator';
import { validateCronExpression } from 'cron';

export const SUBSCRIPTION_STATUSES = [
  'incomplete',
  'incomplete_expired',
  'trialing',
  'active',
  'past_due',
  'canceled',
  'unpaid',
  'paused',
] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Environment values arrive as strings; an empty string means "not set" (as in most .env files). */
const blankToUndefined = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && value.trim() === '' ? undefined : value;
const toNumber = ({ value }: { value: unknown }): unknown => {
  const v = blankToUndefined({ value });
  return typeof v === 'string' ? Number(v.trim()) : v;
};
const toBoolean = ({ value }: { value: unknown }): unknown => {
  const v = blankToUndefined({ value });
  if (typeof v !== 'string') {
    return v;
  }
  const normalised = v.trim().toLowerCase();
  return normalised === 'true' ? true : normalised === 'false' ? false : v;
};
const toList = ({ value }: { value: unknown }): unknown => {
  const v = blankToUndefined({ value });
  return typeof v === 'string'
    ? v
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '')
    : v;
};

@ValidatorConstraint({ name: 'cronExpression' })
class CronExpressionConstraint implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    return typeof value === 'string' && validateCronExpression(value).valid;
  }
  defaultMessage(): string {
    return '$property must be a cron expression of 5 fields, or 6 with seconds first (e.g. "* * * * *")';
  }
}

@ValidatorConstraint({ name: 'postgresUrl' })
class PostgresUrlConstraint implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    if (typeof value !== 'string' || !/^postgres(ql)?:\/\//.test(value)) {
      return false;
    }
    try {
      new URL(value);
      return true;
    } catch {
      return false;
    }
  }
  defaultMessage(): string {
    return '$property must be a postgres:// or postgresql:// connection string';
  }
}

@ValidatorConstraint({ name: 'webhookSecrets' })
class WebhookSecretsConstraint implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    return (
      Array.isArray(value) && value.length > 0 && value.every((s) => typeof s === 'string' && /^whsec_\S+$/.test(s))
    );
  }
  defaultMessage(): string {
    return '$property must be one or more Stripe endpoint secrets starting with "whsec_", separated by commas';
  }
}

@ValidatorConstraint({ name: 'adminTokens' })
class AdminTokensConstraint implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    return (
      Array.isArray(value) &&
      value.length > 0 &&
      value.every((entry) => {
        if (typeof entry !== 'string') {
          return false;
        }
        const token = entry.includes(':') ? entry.slice(entry.indexOf(':') + 1) : entry;
        return token.length >= 16 && !/\s/.test(token);
      })
    );
  }
  defaultMessage(): string {
    return '$property must be one or more tokens of at least 16 characters, separated by commas, each optionally "name:token"';
  }
}

@ValidatorConstraint({ name: 'subscriptionStatuses' })
class SubscriptionStatusesConstraint implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    return (
      Array.isArray(value) &&
      value.every((s) => typeof s === 'string' && (SUBSCRIPTION_STATUSES as readonly string[]).includes(s))
    );
  }
  defaultMessage(): string {
    return `$property must be a comma-separated list of Stripe subscription statuses (${SUBSCRIPTION_STATUSES.join(', ')})`;
  }
}

@ValidatorConstraint({ name: 'stripeApiKey' })
class StripeApiKeyConstraint implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    return typeof value === 'string' && /^(sk|rk)_(test|live)_\S+$/.test(value);
  }
  defaultMessage(): string {
    return '$property must be a Stripe secret or restricted key (sk_test_…, sk_live_…, rk_test_…, rk_live_…)';
  }
}

@ValidatorConstraint({ name: 'stripeApiBase' })
class StripeApiBaseConstraint implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    if (typeof value !== 'string') {
      return false;
    }
    try {
      const url = new URL(value);
      // stripe-node takes a host, port and protocol: a path, query or credentials could not be honoured.
      return (
        ['http:', 'https:'].includes(url.protocol) &&
        url.hostname !== '' &&
        url.pathname === '/' &&
        url.search === '' &&
        url.username === '' &&
        url.password === ''
      );
    } catch {
      return false;
    }
  }
  defaultMessage(): string {
    return '$property must be an http(s) URL of a host and optional port, without a path (e.g. https://api.stripe.com)';
  }
}

/** Every variable this service reads. */
export const VARIABLE_NAMES = [
  'NODE_ENV',
  'PORT',
  'DATABASE_URL',
  'DB_POOL_SIZE',
  'DB_MIGRATE_ON_BOOT',
  'STRIPE_WEBHOOK_SECRET',
  'STRIPE_WEBHOOK_TOLERANCE_SECONDS',
  'WEBHOOK_MAX_BODY_BYTES',
  'ADMIN_API_TOKEN',
  'RETRY_CRON',
  'RETRY_BASE_DELAY_SECONDS',
  'RETRY_MAX_DELAY_SECONDS',
  'RETRY_MAX_ATTEMPTS',
  'HANDLER_TIMEOUT_MS',
  'WORKER_BATCH_SIZE',
  'WORKER_CONCURRENCY',
  'ACCESS_STATUSES',
  'STRIPE_LIVEMODE',
  'ALERT_WEBHOOK_URL',
  'EVENT_RETENTION_DAYS',
  'LOG_LEVEL',
  'DATA_DIR',
  'HEALTH_MAX_PENDING',
  'HEALTH_MAX_OLDEST_PENDING_AGE_SECONDS',
  'HEALTH_MAX_DEAD_LETTERS',
  'STRIPE_API_KEY',
  'STRIPE_API_BASE',
  'STRIPE_API_MAX_RPS',
  'RECONCILE_CRON',
  'RECONCILE_GRACE_SECONDS',
  'RECONCILE_INITIAL_LOOKBACK_SECONDS',
] as const;

/** The Events API keeps 30 days of events: no sweep can look further back. */
export const EVENTS_API_RETENTION_SECONDS = 30 * 24 * 3600;

/**
 * The environment as documented in SPEC.md ("Configuration"), validated. Property names are the
 * variable names so that every validation message names the variable. Messages never include a
 * value, so that secrets cannot leak through them.
 */
export class EnvironmentVariables {
  @IsIn(['development', 'production', 'test'], { message: 'NODE_ENV must be one of development, production, test' })
  NODE_ENV: string = 'development';

  @Transform(toNumber)
  @IsInt({ message: 'PORT must be an integer between 0 and 65535' })
  @Min(0, { message: 'PORT must be an integer between 0 and 65535' })
  @Max(65535, { message: 'PORT must be an integer between 0 and 65535' })
  PORT: number = 3000;

  @Transform(blankToUndefined)
  @IsOptional()
  @Validate(PostgresUrlConstraint)
  DATABASE_URL?: string;

  @Transform(toNumber)
  @IsInt({ message: 'DB_POOL_SIZE must be an integer between 2 and 1000' })
  @Min(2, { message: 'DB_POOL_SIZE must be an integer between 2 and 1000' })
  @Max(1000, { message: 'DB_POOL_SIZE must be an integer between 2 and 1000' })
  DB_POOL_SIZE: number = 10;

  @Transform(toBoolean)
  @IsBoolean({ message: 'DB_MIGRATE_ON_BOOT must be true or false' })
  DB_MIGRATE_ON_BOOT: boolean = true;

  @Transform(toList)
  @IsOptional()
  @Validate(WebhookSecretsConstraint)
  STRIPE_WEBHOOK_SECRET?: string[];

  @Transform(toNumber)
  @IsInt({ message: 'STRIPE_WEBHOOK_TOLERANCE_SECONDS must be an integer greater than 0' })
  @Min(1, { message: 'STRIPE_WEBHOOK_TOLERANCE_SECONDS must be an integer greater than 0' })
  STRIPE_WEBHOOK_TOLERANCE_SECONDS: number = 300;

  @Transform(toNumber)
  @IsInt({ message: 'WEBHOOK_MAX_BODY_BYTES must be an integer between 1024 and 67108864' })
  @Min(1024, { message: 'WEBHOOK_MAX_BODY_BYTES must be an integer between 1024 and 67108864' })
  @Max(64 * 1024 * 1024, { message: 'WEBHOOK_MAX_BODY_BYTES must be an integer between 1024 and 67108864' })
  WEBHOOK_MAX_BODY_BYTES: number = 1_048_576;

  @Transform(toList)
  @IsOptional()
  @Validate(AdminTokensConstraint)
  ADMIN_API_TOKEN?: string[];

  @Transform(blankToUndefined)
  @IsString()
  @Validate(CronExpressionConstraint)
  RETRY_CRON: string = '* * * * *';

  @Transform(toNumber)
  @IsNumber(
    { allowNaN: false, allowInfinity: false },
    { message: 'RETRY_BASE_DELAY_SECONDS must be a number greater than 0' },
  )
  @Min(0.001, { message: 'RETRY_BASE_DELAY_SECONDS must be a number greater than 0' })
  RETRY_BASE_DELAY_SECONDS: number = 30;

  @Transform(toNumber)
  @IsNumber(
    { allowNaN: false, allowInfinity: false },
    { message: 'RETRY_MAX_DELAY_SECONDS must be a number greater than 0' },
  )
  @Min(0.001, { message: 'RETRY_MAX_DELAY_SECONDS must be a number greater than 0' })
  RETRY_MAX_DELAY_SECONDS: number = 3600;

  @Transform(toNumber)
  @IsInt({ message: 'RETRY_MAX_ATTEMPTS must be an integer between 1 and 1000' })
  @Min(1, { message: 'RETRY_MAX_ATTEMPTS must be an integer between 1 and 1000' })
  @Max(1000, { message: 'RETRY_MAX_ATTEMPTS must be an integer between 1 and 1000' })
  RETRY_MAX_ATTEMPTS: number = 10;

  @Transform(toNumber)
  @IsInt({ message: 'HANDLER_TIMEOUT_MS must be an integer between 10 and 3600000' })
  @Min(10, { message: 'HANDLER_TIMEOUT_MS must be an integer between 10 and 3600000' })
  @Max(3_600_000, { message: 'HANDLER_TIMEOUT_MS must be an integer between 10 and 3600000' })
  HANDLER_TIMEOUT_MS: number = 30_000;

  @Transform(toNumber)
  @IsInt({ message: 'WORKER_BATCH_SIZE must be an integer between 1 and 10000' })
  @Min(1, { message: 'WORKER_BATCH_SIZE must be an integer between 1 and 10000' })
  @Max(10_000, { message: 'WORKER_BATCH_SIZE must be an integer between 1 and 10000' })
  WORKER_BATCH_SIZE: number = 100;

  /**
   * Not in SPEC: handlers run at once per replica. Default: the pool less two connections, kept for
   * acknowledging webhooks and probes (measured: 8 of 10 handles ~10% more than 5 and acknowledges
   * faster under load, attempts being short transactions).
   */
  @Transform(toNumber)
  @IsOptional()
  @IsInt({ message: 'WORKER_CONCURRENCY must be an integer between 1 and 1000' })
  @Min(1, { message: 'WORKER_CONCURRENCY must be an integer between 1 and 1000' })
  @Max(1000, { message: 'WORKER_CONCURRENCY must be an integer between 1 and 1000' })
  WORKER_CONCURRENCY?: number;

  @Transform(toList)
  @Validate(SubscriptionStatusesConstraint)
  ACCESS_STATUSES: string[] = ['active', 'trialing', 'past_due'];

  @Transform(toBoolean)
  @IsOptional()
  @IsBoolean({ message: 'STRIPE_LIVEMODE must be true or false (or unset to accept both modes)' })
  STRIPE_LIVEMODE?: boolean;

  @Transform(blankToUndefined)
  @IsOptional()
  @IsUrl(
    { protocols: ['http', 'https'], require_tld: false, require_protocol: true },
    { message: 'ALERT_WEBHOOK_URL must be an http(s) URL' },
  )
  ALERT_WEBHOOK_URL?: string;

  @Transform(toNumber)
  @IsNumber(
    { allowNaN: false, allowInfinity: false },
    { message: 'EVENT_RETENTION_DAYS must be a number greater than 0' },
  )
  @Min(0.0001, { message: 'EVENT_RETENTION_DAYS must be a number greater than 0' })
  EVENT_RETENTION_DAYS: number = 30;

  @Transform(blankToUndefined)
  @IsIn(LOG_LEVELS, { message: `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}` })
  LOG_LEVEL: string = 'info';

  /** Not in SPEC: where development secrets and the embedded database live. */
  @Transform(blankToUndefined)
  @IsString()
  DATA_DIR: string = '.data';

  /** Not in SPEC: optional thresholds past which /health/webhooks reports down. */
  @Transform(toNumber)
  @IsOptional()
  @IsInt({ message: 'HEALTH_MAX_PENDING must be a non-negative integer' })
  @Min(0, { message: 'HEALTH_MAX_PENDING must be a non-negative integer' })
  HEALTH_MAX_PENDING?: number;

  @Transform(toNumber)
  @IsOptional()
  @IsInt({ message: 'HEALTH_MAX_OLDEST_PENDING_AGE_SECONDS must be a non-negative integer' })
  @Min(0, { message: 'HEALTH_MAX_OLDEST_PENDING_AGE_SECONDS must be a non-negative integer' })
  HEALTH_MAX_OLDEST_PENDING_AGE_SECONDS?: number;

  @Transform(toNumber)
  @IsOptional()
  @IsInt({ message: 'HEALTH_MAX_DEAD_LETTERS must be a non-negative integer' })
  @Min(0, { message: 'HEALTH_MAX_DEAD_LETTERS must be a non-negative integer' })
  HEALTH_MAX_DEAD_LETTERS?: number;

  /** Unset turns pulling from Stripe off (no sweep, no API call); never echoed in a message. */
  @Transform(blankToUndefined)
  @IsOptional()
  @Validate(StripeApiKeyConstraint)
  STRIPE_API_KEY?: string;

  @Transform(blankToUndefined)
  @Validate(StripeApiBaseConstraint)
  STRIPE_API_BASE: string = 'https://api.stripe.com';

  @Transform(toNumber)
  @IsNumber(
    { allowNaN: false, allowInfinity: false },
    { message: 'STRIPE_API_MAX_RPS must be a number from 0.1 to 1000' },
  )
  @Min(0.1, { message: 'STRIPE_API_MAX_RPS must be a number from 0.1 to 1000' })
  @Max(1000, { message: 'STRIPE_API_MAX_RPS must be a number from 0.1 to 1000' })
  STRIPE_API_MAX_RPS: number = 20;

  @Transform(blankToUndefined)
  @IsString()
  @Validate(CronExpressionConstraint)
  RECONCILE_CRON: string = '*/10 * * * *';

  @Transform(toNumber)
  @IsInt({ message: 'RECONCILE_GRACE_SECONDS must be an integer from 0 to 86400' })
  @Min(0, { message: 'RECONCILE_GRACE_SECONDS must be an integer from 0 to 86400' })
  @Max(86_400, { message: 'RECONCILE_GRACE_SECONDS must be an integer from 0 to 86400' })
  RECONCILE_GRACE_SECONDS: number = 120;

  @Transform(toNumber)
  @IsInt({
    message: `RECONCILE_INITIAL_LOOKBACK_SECONDS must be an integer from 1 to ${EVENTS_API_RETENTION_SECONDS} (30 days)`,
  })
  @Min(1, {
    message: `RECONCILE_INITIAL_LOOKBACK_SECONDS must be an integer from 1 to ${EVENTS_API_RETENTION_SECONDS} (30 days)`,
  })
  @Max(EVENTS_API_RETENTION_SECONDS, {
    message: `RECONCILE_INITIAL_LOOKBACK_SECONDS must be an integer from 1 to ${EVENTS_API_RETENTION_SECONDS} (30 days)`,
  })
  RECONCILE_INITIAL_LOOKBACK_SECONDS: number = 259_200;
}
