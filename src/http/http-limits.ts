import { readFileSync } from 'node:fs';

/**
 * How long a client may take and how much it may hold. Stripe opens a connection, sends its request
 * at once and reads the answer; anything much slower is a broken or hostile client, which must not
 * be able to hold sockets, file descriptors or memory for long.
 */
export interface HttpLimits {
  /** A webhook body must arrive within this, counted from its headers (then 408). */
  webhookBodyTimeoutMs: number;
  /** Bytes of webhook bodies being received at once, all requests together (past it, 503 at once). */
  webhookBodyBudgetBytes: number;
  /** Node's headersTimeout: from a request's first byte to the end of its headers. */
  headersTimeoutMs: number;
  /** Node's requestTimeout: a whole request, any route; a backstop behind the webhook body timeout. */
  requestTimeoutMs: number;
  /** Node's keepAliveTimeout: an idle connection between two requests. */
  keepAliveTimeoutMs: number;
  /** A connection with nothing in either direction: silent from the start, or stalled mid-request. */
  idleSocketTimeoutMs: number;
  /** How often Node checks headersTimeout and requestTimeout (its default, 30 s, lets them overrun by that much). */
  timeoutCheckIntervalMs: number;
}

const MIB = 1024 * 1024;

export function defaultHttpLimits(webhookMaxBodyBytes: number): HttpLimits {
  return {
    webhookBodyTimeoutMs: 10_000,
    // Room for 32 bodies of the default 1 MiB limit, or four of a larger one.
    webhookBodyBudgetBytes: Math.max(32 * MIB, 4 * webhookMaxBodyBytes),
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 30_000,
    keepAliveTimeoutMs: 5_000,
    idleSocketTimeoutMs: 15_000,
    timeoutCheckIntervalMs: 1_000,
  };
}

/** The soft limit on open file descriptors (Linux, /proc/self/limits), or undefined when unknown or unlimited. */
export function readFileDescriptorLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line ? Number(line.slice('Max open files'.length).trim().split(/\s+/)[0]) : Number.NaN;
    return Number.isSafeInteger(soft) && soft > 0 ? soft : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The connections one replica accepts: its file descriptors less a tenth (at least 128) kept for the
 * database pool, files and outgoing calls, which fail with EMFILE when a flood of sockets takes them all.
 */
export function maxConnectionsFor(fileDescriptorLimit: number): number {
  return Math.max(16, fileDescriptorLimit - Math.max(128, Math.ceil(fileDescriptorLimit / 10)));
}
