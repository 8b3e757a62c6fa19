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
  const text = typeof rawBody === 'string' ? rawBody : rawBody.toString('utf8');
  if (jsonDeeperThan(text, MAX_JSON_DEPTH)) {
    throw invalidPayload(`The body nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep.`);
  }
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch {
    throw invalidPayload('The body is not valid JSON.');
  }
  return stripeEventFromPayload(payload);
}

/** The same checks for an event that is already parsed (say, read back from the database). */
export function stripeEventFromPayload(payload: unknown): StripeEvent {
  if (!isObject(payload)) {
    throw invalidPayload('The body is not a JSON object.');
  }
  const { id, type, data, created, livemode, api_version: apiVersion, account } = payload;
  if (!isStorableName(id)) {
    throw invalidPayload('The event has no string "id" (1 to 255 characters, no NUL).');
  }
  if (!isStorableName(type)) {
    throw invalidPayload('The event has no string "type" (1 to 255 characters, no NUL).');
  }
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

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalidPayload(message: string): AppError {
  return new AppError(ErrorCode.InvalidPayload, message);
}
