import { AppError, ErrorCode } from './app-error';
import { jsonDeeperThan } from './json-depth';

/** A Stripe event as accepted at the door: the envelope fields we rely on, and the object it carries. */
export interface StripeEvent {
  id: string;
  type: string;
  /** Stripe's `created`, in seconds; null only if Stripe ever left it out. */
  created: number | null;
  livemode: boolean | null;
  apiVersion: string | null;
  /** The connected account it comes from (`account`, events from a Connect endpoint); null for the platform's own. */
  account: string | null;
  object: Record<string, unknown>;
  previousAttributes: Record<string, unknown> | null;
  /** The whole event as parsed. */
  payload: Record<string, unknown>;
}

const MAX_ID_LENGTH = 255;
/** A Stripe account id, as `account` carries it and the admin API's `?account=` takes it. */
export const ACCOUNT_ID_FORMAT = /^acct_[A-Za-z0-9]{1,250}$/;
/**
 * Objects and arrays nested deeper than this (the event itself being level 1) are refused before
 * anything is stored: Stripe's events nest about ten levels, and far deeper ones would make
 * PostgreSQL's jsonb parser run out of stack (54001), which is the payload's fault, not the server's.
 */
export const MAX_JSON_DEPTH = 64;
/** 9999-12-31T23:59:59Z: the last second `to_timestamp` turns into a four-digit year. */
const MAX_CREATED_SECONDS = 253_402_300_799;

/**
 * Whether a string can be an event id or type: not blank, at most 255 characters, and no NUL
 * (PostgreSQL text cannot hold one, so it would fail the insert with 22021).
 */
function isStorableName(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '' && value.length <= MAX_ID_LENGTH && !value.includes('\0');
}

/**
 * Parses a verified body into a Stripe event, or refuses it as `invalid_payload`: it must be a JSON
 * object, at most MAX_JSON_DEPTH levels deep, with a string `id`, a string `type` and an object
 * `data.object`.
 */
export function parseStripeEvent(rawBody: Buffer | string): StripeEvent {
  return stripeEventFromPayload(parseJsonBody(rawBody));
}

/** The body as JSON, refused as `invalid_payload` when it is not JSON or nests past MAX_JSON_DEPTH. */
export function parseJsonBody(rawBody: Buffer | string): unknown {
  const text = typeof rawBody === 'string' ? rawBody : rawBody.toString('utf8');
  if (jsonDeeperThan(text, MAX_JSON_DEPTH)) {
    throw invalidPayload(`The body nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep.`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw invalidPayload('The body is not valid JSON.');
  }
}

/** The same checks for an event that is already parsed (say, read back from the database). */
export function stripeEventFromPayload(payload: unknown): StripeEvent {
  if (!isObject(payload)) {
    throw invalidPayload('The body is not a JSON object.');
  }
  if (payload.object === THIN_EVENT_OBJECT) {
    throw invalidPayload(
      'This is a thin event (object "v2.core.event"): point its event destination at /webhooks/stripe/thin.',
    );
  }
  const { data, created, livemode, api_version: apiVersion, account } = payload;
  const id = storableName(payload.id, 'id');
  const type = storableName(payload.type, 'type');
  if (!isObject(data) || !isObject(data.object)) {
    throw invalidPayload('The event has no object "data.object".');
  }
  if (
    created !== undefined &&
    created !== null &&
    !(typeof created === 'number' && Number.isFinite(created) && created >= 0 && created < MAX_CREATED_SECONDS + 1)
  ) {
    throw invalidPayload('The event\'s "created" is not a Unix timestamp (seconds) up to the year 9999.');
  }
  if (account !== undefined && account !== null && !(typeof account === 'string' && ACCOUNT_ID_FORMAT.test(account))) {
    throw invalidPayload('The event\'s "account" is not a Stripe account id (acct_ and letters or digits).');
  }
  return {
    id,
    type,
    // Stripe sends whole seconds; anything finer is read as its second, so that ordering by it agrees
    // with the stored timestamp.
    created: typeof created === 'number' ? Math.floor(created) : null,
    livemode: typeof livemode === 'boolean' ? livemode : null,
    apiVersion: typeof apiVersion === 'string' ? apiVersion : null,
    account: typeof account === 'string' ? account : null,
    object: data.object,
    previousAttributes: isObject(data.previous_attributes) ? data.previous_attributes : null,
    payload,
  };
}

/** The `object` of a thin event (an event destination's thin payload) and of v2 events. */
export const THIN_EVENT_OBJECT = 'v2.core.event';

/**
 * A thin event as accepted at /webhooks/stripe/thin: a string `id` and `type` (as for classic
 * events), `object` "v2.core.event", `created` an ISO time, and when present a storable `context`
 * (the connected account it concerns) and `snapshot_event` id. It carries no `data.object`: its
 * `object` here is empty, and handlers read what they need from `payload`.
 */
export function thinEventFromPayload(payload: unknown): StripeEvent {
  if (!isObject(payload)) {
    throw invalidPayload('The body is not a JSON object.');
  }
  if (payload.object !== THIN_EVENT_OBJECT) {
    throw invalidPayload(
      payload.object === 'event'
        ? 'This is a classic (snapshot) event (object "event"): point its endpoint at /webhooks/stripe.'
        : 'The body is not a thin event (its "object" must be "v2.core.event").',
    );
  }
  const { created, livemode, context, snapshot_event: snapshotEvent } = payload;
  const id = storableName(payload.id, 'id');
  const type = storableName(payload.type, 'type');
  const createdMs = typeof created === 'string' ? Date.parse(created) : Number.NaN;
  if (!Number.isFinite(createdMs) || createdMs < 0 || createdMs / 1000 >= MAX_CREATED_SECONDS + 1) {
    throw invalidPayload('The event\'s "created" is not an ISO-8601 time up to the year 9999.');
  }
  if (context !== undefined && context !== null && !isStorableName(context)) {
    throw invalidPayload('The event\'s "context" is not a string (1 to 255 characters, no NUL).');
  }
  if (snapshotEvent !== undefined && snapshotEvent !== null && !isStorableName(snapshotEvent)) {
    throw invalidPayload('The event\'s "snapshot_event" is not an event id (1 to 255 characters, no NUL).');
  }
  return {
    id,
    type,
    created: Math.floor(createdMs / 1000),
    livemode: typeof livemode === 'boolean' ? livemode : null,
    apiVersion: null,
    // A connected account's thin event names it in `context`.
    account: typeof context === 'string' && ACCOUNT_ID_FORMAT.test(context) ? context : null,
    object: {},
    previousAttributes: null,
    payload,
  };
}

/** A stored event read back: a thin one or a classic one, by its `object`. */
export function storedEventFromPayload(payload: unknown): StripeEvent {
  return isObject(payload) && payload.object === THIN_EVENT_OBJECT
    ? thinEventFromPayload(payload)
    : stripeEventFromPayload(payload);
}

/** The thin event's `context` (a connected account, `acct_…`), or null for the platform's own. */
export function thinEventContext(event: StripeEvent): string | null {
  const context = event.payload.context;
  return typeof context === 'string' && context !== '' ? context : null;
}

/** The event's `id` or `type`, refused unless storable. */
function storableName(value: unknown, field: 'id' | 'type'): string {
  if (!isStorableName(value)) {
    throw invalidPayload(`The event has no string "${field}" (1 to 255 characters, no NUL).`);
  }
  return value;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalidPayload(message: string): AppError {
  return new AppError(ErrorCode.InvalidPayload, message);
}
