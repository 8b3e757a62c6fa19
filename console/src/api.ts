/** The admin API as the console uses it: the token from sessionStorage as the bearer token. */

const TOKEN_KEY = 'swp-admin-token';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Listener = (reason: string) => void;
let onSignedOut: Listener = () => undefined;

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function signIn(value: string): void {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function signOut(reason = ''): void {
  sessionStorage.removeItem(TOKEN_KEY);
  onSignedOut(reason);
}

export function whenSignedOut(listener: Listener): void {
  onSignedOut = listener;
}

/** Calls the API; a 401 signs out (the token is wrong or was revoked), any other error is an ApiError. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token() ?? ''}`, Accept: 'application/json' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
  }
  let response: Response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'network', 'The service did not answer (network error). Try again.');
  }
  if (response.status === 401) {
    signOut('The admin token was refused (wrong, expired or revoked). Sign in again.');
    throw new ApiError(401, 'unauthorized', 'Signed out: the admin token was refused.');
  }
  if (response.status === 204) {
    return undefined as T;
  }
  const data = (await response.json().catch(() => null)) as unknown;
  if (!response.ok) {
    const error = (data ?? {}) as { error?: unknown; message?: unknown };
    const code = typeof error.error === 'string' ? error.error : 'error';
    const message = typeof error.message === 'string' ? error.message : `The service answered ${response.status}.`;
    throw new ApiError(response.status, code, `${describeStatus(response.status)}: ${message}`);
  }
  return data as T;
}

function describeStatus(status: number): string {
  switch (status) {
    case 400:
      return 'Invalid request (400)';
    case 404:
      return 'Not found (404)';
    case 409:
      return 'Conflict (409)';
    case 503:
      return 'Service unavailable (503), try again shortly';
    default:
      return `Error ${status}`;
  }
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export const enc = encodeURIComponent;
