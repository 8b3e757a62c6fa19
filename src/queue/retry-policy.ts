/**
 * Capped exponential backoff: after attempt n fails, attempt n+1 is due min(max, base · 2^(n−1))
 * seconds later by the database clock, ±10% so that events that failed together come back spread
 * out; drawn under the cap, so capped delays spread over 90–100% of it. Never negative or NaN.
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
