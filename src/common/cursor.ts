import { AppError, ErrorCode } from './app-error';

/** Opaque pagination cursors: base64url of a small JSON object. */
export function encodeCursor(value: Record<string, string>): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** Whether one field of a cursor is a value its query can take (a forged one must not reach SQL and fail there). */
export type CursorField = (value: string) => boolean;

/** Decodes a cursor whose fields all pass `checks`, or answers 400 invalid_request. */
export function decodeCursor<K extends string>(cursor: string, checks: Record<K, CursorField>): Record<K, string> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  if (typeof value !== 'object' || value === null) {
    throw invalidCursor();
  }
  const out = {} as Record<K, string>;
  for (const key of Object.keys(checks) as K[]) {
    const field = (value as Record<string, unknown>)[key];
    if (typeof field !== 'string' || !checks[key](field)) {
      throw invalidCursor();
    }
    out[key] = field;
  }
  return out;
}

const ISO_TIMESTAMP_FORMAT = /^(\d{4})-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$/;
const UUID_FORMAT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DIGITS_FORMAT = /^\d{1,19}$/;
const BIGINT_MAX = 9_223_372_036_854_775_807n;
/** The last instant an ISO timestamp (and a JavaScript Date) can name, in microseconds since the epoch. */
const EPOCH_MICROS_MAX = 8_640_000_000_000_000_000n;

/**
 * A UTC timestamp as `toISOString()` writes it, naming a real instant: the date and time read back
 * unchanged (no 2026-02-30 or 25:61), in years 1–9999 (PostgreSQL has no year 0).
 */
export const ISO_TIMESTAMP: CursorField = (value) => {
  const match = ISO_TIMESTAMP_FORMAT.exec(value);
  if (!match || Number(match[1]) < 1) {
    return false;
  }
  const date = new Date(value);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 19) === value.slice(0, 19);
};

export const UUID: CursorField = (value) => UUID_FORMAT.test(value);

/** A non-negative integer that fits PostgreSQL's bigint. */
export const BIGINT: CursorField = (value) => DIGITS_FORMAT.test(value) && BigInt(value) <= BIGINT_MAX;

/** Non-negative microseconds since the epoch, within the range of a timestamp. */
export const EPOCH_MICROS: CursorField = (value) => DIGITS_FORMAT.test(value) && BigInt(value) <= EPOCH_MICROS_MAX;

function invalidCursor(): AppError {
  return new AppError(ErrorCode.InvalidRequest, 'The cursor is not valid (use next_cursor from a previous page).');
}
