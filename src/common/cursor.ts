import { AppError, ErrorCode } from './app-error';

/** Opaque pagination cursors: base64url of a small JSON object. */
export function encodeCursor(value: Record<string, string>): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** Decodes a cursor whose fields all pass `checks`, or answers 400 invalid_request. */
export function decodeCursor<K extends string>(cursor: string, checks: Record<K, RegExp>): Record<K, string> {
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
    if (typeof field !== 'string' || !checks[key].test(field)) {
      throw invalidCursor();
    }
    out[key] = field;
  }
  return out;
}

export const ISO_TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$/;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const DIGITS = /^\d{1,19}$/;

function invalidCursor(): AppError {
  return new AppError(ErrorCode.InvalidRequest, 'The cursor is not valid (use next_cursor from a previous page).');
}
