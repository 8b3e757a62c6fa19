/**
 * Capped exponential backoff with jitter.
 *
 * After attempt n fails, attempt n+1 is due min(max, base · 2^(n−1)) seconds later, moved by a
 * uniform jitter of ±10% so that events that failed together (say, during an outage) do not all
 * come back in the same second. The draw is made within the part of that band that lies under the
 * cap, so capped delays still spread (over 90–100% of the cap) instead of piling up on the cap
 * itself; the result is never negative or NaN. With the defaults (30 s, 3600 s) the nominal delays
 * are 30 s, 60 s, 120 s … 1920 s, then 3600 s for every later attempt.
 * The delay is added to the database clock (`now()`), never to this machine's.
 */
export interface RetryPolicy {
  baseDelaySeconds: number;
  maxDelaySeconds: number;
  maxAttempts: number;
}

export const JITTER = 0.1;

/** The nominal delay after attempt `attempt` (1-based) failed, before jitter. */
export function nominalDelaySeconds(attempt: number, policy: RetryPolicy): number {
  const n = Number.isFinite(attempt) && attempt >= 1 ? Math.floor(attempt) : 1;
  // 2^(n−1) overflows to Infinity for large n, which min() turns into the cap.
  return Math.min(policy.maxDelaySeconds, policy.baseDelaySeconds * 2 ** (n - 1));
}

/** The delay to schedule after attempt `attempt` failed; `random` is in [0, 1). */
export function retryDelaySeconds(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const nominal = nominalDelaySeconds(attempt, policy);
  const low = nominal * (1 - JITTER);
  const high = Math.min(policy.maxDelaySeconds, nominal * (1 + JITTER));
  return Math.max(0, low + (high - low) * random());
}

/** Whether attempt `attempt` was the last one allowed. */
export function isLastAttempt(attempt: number, policy: RetryPolicy): boolean {
  return attempt >= policy.maxAttempts;
}

/**
 * How long a claimed row stays held before any replica may claim it again: one attempt's limit
 * plus a margin for the statements around it (at least 2 s, or 10%).
 */
export function leaseMs(handlerTimeoutMs: number): number {
  return handlerTimeoutMs + Math.max(2_000, Math.round(handlerTimeoutMs * 0.1));
}
