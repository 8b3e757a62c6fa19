import { isURL } from 'class-validator';
import { validateCronExpression } from 'cron';

/** The environment as read (process.env over `.env`). */
export type Environment = Record<string, string | undefined>;

const NODE_ENVS = ['development', 'production', 'test'] as const;
export type NodeEnv = (typeof NODE_ENVS)[number];
const SUBSCRIPTION_STATUSES = [
  'incomplete',
  'incomplete_expired',
  'trialing',
  'active',
  'past_due',
  'canceled',
  'unpaid',
  'paused',
] as const;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface AdminToken {
  /** Who holds the token, as written to the audit log. */
  name: string;
  token: string;
}

/** How a variable's text becomes its value: undefined when the text is invalid. */
interface Rule<T> {
  parse(text: string): T | undefined;
  /** Ends the message "<NAME> must be …"; never shows the value, so that secrets cannot leak. */
  expected: string;
}

export interface Variable<T> {
  rule: Rule<T>;
  /** Applies when the variable is unset, empty or blank (as `VAR=` in .env and compose files). */
  default: T;
  /** The default as the README writes it, when the value alone does not say it. */
  documentedDefault?: string;
  /** The README's "meaning" column. */
  meaning: string;
}

function variable<T>(spec: Variable<T>): Variable<T>;
function variable<T>(spec: Omit<Variable<T>, 'default'>): Variable<T | undefined>;
function variable<T>(spec: Omit<Variable<T>, 'default'> & { default?: T }): Variable<T | undefined> {
  return { ...spec, default: spec.default };
}

const integer = (min: number, max?: number): Rule<number> => ({
  parse: (text) => {
    const n = Number(text.trim());
    return Number.isInteger(n) && n >= min && (max === undefined || n <= max) ? n : undefined;
  },
  expected:
    max !== undefined
      ? `an integer between ${min} and ${max}`
      : min === 0
        ? 'a non-negative integer'
        : `an integer greater than ${min - 1}`,
});

const positiveNumber: Rule<number> = {
  parse: (text) => {
    const n = Number(text.trim());
    return Number.isFinite(n) && n > 0 ? n : undefined;
  },
  expected: 'a number greater than 0',
};

const boolean = (expected = 'true or false'): Rule<boolean> => ({
  parse: (text) => {
    const word = text.trim().toLowerCase();
    return word === 'true' ? true : word === 'false' ? false : undefined;
  },
  expected,
});

const oneOf = <T extends string>(values: readonly T[]): Rule<T> => ({
  parse: (text) => values.find((v) => v === text),
  expected: `one of ${values.join(', ')}`,
});

const path: Rule<string> = { parse: (text) => text.trim(), expected: 'a path' };

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/** Comma-separated items, blanks dropped; `valid` judges the whole list. */
const list = (expected: string, valid: (items: string[]) => boolean): Rule<string[]> => ({
  parse: (text) => {
    const items = splitList(text);
    return valid(items) ? items : undefined;
  },
  expected,
});

const adminTokens: Rule<AdminToken[]> = {
  parse: (text) => {
    const tokens = parseAdminTokens(splitList(text));
    return tokens.length > 0 && tokens.every(({ token }) => token.length >= 16 && !/\s/.test(token))
      ? tokens
      : undefined;
  },
  expected: 'one or more tokens of at least 16 characters, separated by commas, each optionally "name:token"',
};

const postgresUrl: Rule<string> = {
  parse: (text) => (/^postgres(ql)?:\/\//.test(text) && URL.canParse(text) ? text : undefined),
  expected: 'a postgres:// or postgresql:// connection string',
};

const cronExpression: Rule<string> = {
  parse: (text) => (validateCronExpression(text).valid ? text : undefined),
  expected: 'a cron expression of 5 fields, or 6 with seconds first (e.g. "* * * * *")',
};

const httpUrl: Rule<string> = {
  parse: (text) =>
    isURL(text, { protocols: ['http', 'https'], require_tld: false, require_protocol: true }) ? text : undefined,
  expected: 'an http(s) URL',
};

const metricsToken: Rule<string> = {
  parse: (text) => (/^\S{16,}$/.test(text) ? text : undefined),
  expected: 'at least 16 characters, without spaces',
};

const stripeApiKey: Rule<string> = {
  parse: (text) => (/^(sk|rk)_(test|live)_\S+$/.test(text) ? text : undefined),
  expected: 'a Stripe secret or restricted key (sk_test_…, sk_live_…, rk_test_…, rk_live_…)',
};

/** stripe-node takes a host, port and protocol: a path, query or credentials could not be honoured. */
const stripeApiBase: Rule<string> = {
  parse: (text) => {
    if (!URL.canParse(text)) {
      return undefined;
    }
    const url = new URL(text);
    const plain =
      ['http:', 'https:'].includes(url.protocol) &&
      url.hostname !== '' &&
      url.pathname === '/' &&
      url.search === '' &&
      url.username === '' &&
      url.password === '';
    return plain ? text : undefined;
  },
  expected: 'an http(s) URL of a host and optional port, without a path (e.g. https://api.stripe.com)',
};

const requestsPerSecond: Rule<number> = {
  parse: (text) => {
    const n = Number(text.trim());
    return Number.isFinite(n) && n >= 0.1 && n <= 1000 ? n : undefined;
  },
  expected: 'a number from 0.1 to 1000',
};

/** The Events API keeps 30 days of events: no sweep can look further back. */
export const EVENTS_API_RETENTION_SECONDS = 30 * 24 * 3600;

/** `name:token` names the holder; an unnamed token is called `token-<n>` (1-based) in the audit log. */
export function parseAdminTokens(entries: readonly string[]): AdminToken[] {
  return entries.map((entry, index) => {
    const colon = entry.indexOf(':');
    return colon > 0
      ? { name: entry.slice(0, colon), token: entry.slice(colon + 1) }
      : { name: `token-${index + 1}`, token: colon === 0 ? entry.slice(1) : entry };
  });
}

/**
 * Every variable the service reads: validation, defaults, and the README's configuration table
 * (checked by a test) all come from here. Adding one means an entry here and a field in AppConfig.
 */
export const VARIABLES = {
  PORT: variable({ rule: integer(0, 65535), default: 3000, meaning: 'HTTP port' }),
  NODE_ENV: variable<NodeEnv>({
    rule: oneOf(NODE_ENVS),
    default: 'development',
    meaning:
      '`development`, `production` or `test`; in production a missing secret or token is fatal, in development it is generated once under `DATA_DIR`',
  }),
  DATABASE_URL: variable({
    rule: postgresUrl,
    documentedDefault: 'unset → embedded',
    meaning: 'PostgreSQL connection string',
  }),
  DB_POOL_SIZE: variable({ rule: integer(2, 1000), default: 10, meaning: 'connections per replica (at least 2)' }),
  DB_MIGRATE_ON_BOOT: variable({
    rule: boolean(),
    default: true,
    meaning: 'run pending migrations at start-up, under an advisory lock',
  }),
  STRIPE_WEBHOOK_SECRET: variable({
    rule: list(
      'one or more Stripe endpoint secrets starting with "whsec_", separated by commas',
      (items) => items.length > 0 && items.every((s) => /^whsec_\S+$/.test(s)),
    ),
    documentedDefault: 'dev: generated',
    meaning: 'one or more `whsec_…` secrets, comma-separated',
  }),
  STRIPE_WEBHOOK_TOLERANCE_SECONDS: variable({
    // stripe-node reads 0 as "no age check", so 0 is refused.
    rule: integer(1),
    default: 300,
    meaning: 'accepted signature age, past and future; must be > 0',
  }),
  WEBHOOK_MAX_BODY_BYTES: variable({
    rule: integer(1024, 64 * 1024 * 1024),
    default: 1_048_576,
    meaning: 'larger bodies get 413',
  }),
  ADMIN_API_TOKEN: variable({
    rule: adminTokens,
    documentedDefault: 'dev: generated',
    meaning: 'one or more tokens (≥ 16 characters), comma-separated; `name:token` names the holder in the audit log',
  }),
  RETRY_CRON: variable({
    rule: cronExpression,
    default: '* * * * *',
    meaning: 'when the retry worker looks for due rows; 6 fields (seconds first) accepted',
  }),
  RETRY_BASE_DELAY_SECONDS: variable({
    rule: positiveNumber,
    default: 30,
    meaning: 'first retry delay; each next one doubles',
  }),
  RETRY_MAX_DELAY_SECONDS: variable({ rule: positiveNumber, default: 3600, meaning: 'the cap' }),
  RETRY_MAX_ATTEMPTS: variable({
    rule: integer(1, 1000),
    default: 10,
    meaning: 'attempts in all before the dead-letter queue',
  }),
  HANDLER_TIMEOUT_MS: variable({ rule: integer(10, 3_600_000), default: 30_000, meaning: "one attempt's limit" }),
  WORKER_BATCH_SIZE: variable({
    rule: integer(1, 10_000),
    default: 100,
    meaning:
      'most rows one replica holds at once (stored by it or claimed, waiting or running); a claim never takes more than there is room for',
  }),
  WORKER_CONCURRENCY: variable({
    rule: integer(1, 1000),
    documentedDefault: '`DB_POOL_SIZE − 2`',
    meaning: 'transactions running handlers at once on one replica (each settles up to 32 events)',
  }),
  ACCESS_STATUSES: variable({
    rule: list(
      `a comma-separated list of Stripe subscription statuses (${SUBSCRIPTION_STATUSES.join(', ')})`,
      (items) => items.every((s) => (SUBSCRIPTION_STATUSES as readonly string[]).includes(s)),
    ),
    default: ['active', 'trialing', 'past_due'],
    meaning: 'subscription statuses that grant access',
  }),
  STRIPE_LIVEMODE: variable({
    rule: boolean('true or false (or unset to accept both modes)'),
    meaning: '`true`/`false`: events of the other mode are stored as `ignored`',
  }),
  ALERT_WEBHOOK_URL: variable({
    rule: httpUrl,
    meaning: 'Slack-compatible incoming webhook: dead letters, failed invoice payments, failed or uncreditable top-ups',
  }),
  EVENT_RETENTION_DAYS: variable({
    rule: positiveNumber,
    default: 30,
    meaning: 'processed events older than this are pruned',
  }),
  RETENTION_CRON: variable({
    rule: cronExpression,
    default: '0 17 3 * * *',
    meaning: 'when one replica prunes them (daily at 03:17 server time by default)',
  }),
  LOG_LEVEL: variable({
    rule: oneOf(LOG_LEVELS),
    default: 'info',
    meaning: '`fatal` … `trace`, or `silent`; JSON lines on stdout (pretty in development)',
  }),
  DATA_DIR: variable({
    rule: path,
    default: '.data',
    meaning: 'development secrets and the embedded database',
  }),
  HEALTH_MAX_PENDING: variable({
    rule: integer(0),
    meaning: 'queue rows past which `/health/webhooks` reports down',
  }),
  HEALTH_MAX_OLDEST_PENDING_AGE_SECONDS: variable({
    rule: integer(0),
    meaning: 'age of the oldest queue row past which `/health/webhooks` reports down',
  }),
  HEALTH_MAX_DEAD_LETTERS: variable({
    rule: integer(0),
    meaning: 'open dead letters past which `/health/webhooks` reports down',
  }),
  METRICS_TOKEN: variable({
    rule: metricsToken,
    meaning: 'when set (≥ 16 characters), `GET /metrics` needs `Authorization: Bearer <METRICS_TOKEN>`',
  }),
  STRIPE_API_KEY: variable({
    rule: stripeApiKey,
    meaning:
      'a secret or restricted key (`sk_…`, `rk_…`) with read access to Events and Entitlements (see "Pulling from Stripe"); unset turns pulling off and nothing calls Stripe',
  }),
  STRIPE_API_BASE: variable({
    rule: stripeApiBase,
    default: 'https://api.stripe.com',
    meaning:
      'where Stripe API calls go: a proxy, or a local fake in tests (`http://127.0.0.1:PORT`); a host and port, no path',
  }),
  STRIPE_API_MAX_RPS: variable({
    rule: requestsPerSecond,
    default: 20,
    meaning:
      'the most Stripe API requests a second this service makes, all replicas together (each spreads its own evenly; sweeps run on one replica at a time)',
  }),
  RECONCILE_CRON: variable({
    rule: cronExpression,
    default: '*/10 * * * *',
    meaning: 'when the reconciliation sweep runs; 6 fields (seconds first) accepted',
  }),
  RECONCILE_GRACE_SECONDS: variable({
    rule: integer(0, 86_400),
    default: 120,
    meaning: 'a sweep looks only at events created at least this long ago, so that normal delivery comes first',
  }),
  RECONCILE_INITIAL_LOOKBACK_SECONDS: variable({
    rule: integer(1, EVENTS_API_RETENTION_SECONDS),
    default: 259_200,
    meaning:
      'how far back the very first sweep looks (3 days: Stripe retries a delivery for up to 3 days); at most 30 days',
  }),
};

export type VariableName = keyof typeof VARIABLES;
export type Settings = { [K in VariableName]: (typeof VARIABLES)[K]['default'] };

export const VARIABLE_NAMES = Object.keys(VARIABLES) as VariableName[];

function readVariable<T>(variable: Variable<T>, text: string | undefined): { value: T } | { invalid: true } {
  if (text === undefined || text.trim() === '') {
    return { value: variable.default };
  }
  const value = variable.rule.parse(text);
  return value === undefined ? { invalid: true } : { value };
}

/** Reads every variable; `problems` has one message per invalid one, naming it and never its value. */
export function readVariables(env: Environment): { settings: Settings; problems: string[] } {
  const problems: string[] = [];
  const settings: Partial<Record<VariableName, unknown>> = {};
  for (const name of VARIABLE_NAMES) {
    const variable = VARIABLES[name] as Variable<unknown>;
    const read = readVariable(variable, env[name]);
    if ('invalid' in read) {
      problems.push(`${name} must be ${variable.rule.expected}`);
    } else {
      settings[name] = read.value;
    }
  }
  return { settings: settings as Settings, problems };
}

/** DATA_DIR as the service reads it, for the tools that run before (or without) the configuration. */
export function dataDirectory(env: Environment): string {
  const read = readVariable(VARIABLES.DATA_DIR, env.DATA_DIR);
  return 'invalid' in read ? VARIABLES.DATA_DIR.default : read.value;
}
