import { isLastAttempt, nominalDelaySeconds, retryDelaySeconds, RetryPolicy } from './retry-policy';

const policy: RetryPolicy = { baseDelaySeconds: 30, maxDelaySeconds: 3600, maxAttempts: 10 };

describe('retry policy', () => {
  it('doubles from 30 s and caps at 3600 s (attempts 1–50)', () => {
    const expected = [30, 60, 120, 240, 480, 960, 1920, ...Array<number>(43).fill(3600)];
    const actual = Array.from({ length: 50 }, (_, i) => nominalDelaySeconds(i + 1, policy));
    expect(actual).toEqual(expected);
  });

  it('keeps jitter within ±10% of the nominal delay and never above the cap', () => {
    for (let attempt = 1; attempt <= 50; attempt++) {
      const nominal = nominalDelaySeconds(attempt, policy);
      for (const r of [0, 0.25, 0.5, 0.75, 0.999999]) {
        const delay = retryDelaySeconds(attempt, policy, () => r);
        expect(delay).toBeGreaterThanOrEqual(nominal * 0.9 - 1e-9);
        expect(delay).toBeLessThanOrEqual(Math.min(nominal * 1.1, policy.maxDelaySeconds) + 1e-9);
      }
    }
    expect(retryDelaySeconds(1, policy, () => 0)).toBeCloseTo(27);
    expect(retryDelaySeconds(1, policy, () => 0.999999)).toBeCloseTo(33, 3);
    expect(retryDelaySeconds(20, policy, () => 0)).toBeCloseTo(3240);
    expect(retryDelaySeconds(20, policy, () => 0.999999)).toBeCloseTo(3600, 2);
    expect(retryDelaySeconds(1, policy, () => 0.5)).toBeCloseTo(30);
  });

  it('still spreads capped delays instead of piling them up on the cap', () => {
    // Attempts past the cap are where many events that failed together end up; if half of them
    // landed exactly on the cap they would come back in the same instant.
    const capped = Array.from({ length: 400 }, () => retryDelaySeconds(20, policy));
    expect(capped.filter((d) => d === policy.maxDelaySeconds).length).toBeLessThan(5);
    expect(new Set(capped.map((d) => Math.round(d))).size).toBeGreaterThan(150);
    expect(Math.min(...capped)).toBeGreaterThanOrEqual(3240);
    expect(Math.max(...capped)).toBeLessThanOrEqual(3600);
    expect(retryDelaySeconds(20, policy, () => 0.5)).toBeCloseTo(3420);
  });

  it('actually varies: random draws spread across the jitter band', () => {
    const delays = new Set(Array.from({ length: 200 }, () => Math.round(retryDelaySeconds(3, policy) * 1000)));
    expect(delays.size).toBeGreaterThan(50);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(108_000);
    expect(Math.max(...delays)).toBeLessThanOrEqual(132_000);
  });

  it('is never NaN, infinite or negative, whatever the attempt number', () => {
    for (const attempt of [0, -1, 1.5, 1e6, Number.MAX_SAFE_INTEGER, Number.NaN, Number.POSITIVE_INFINITY]) {
      const delay = retryDelaySeconds(attempt, policy);
      expect(Number.isFinite(delay)).toBe(true);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(3600);
    }
  });

  it('follows other bases and caps (e.g. sub-second, for tests)', () => {
    const fast: RetryPolicy = { baseDelaySeconds: 0.05, maxDelaySeconds: 0.2, maxAttempts: 3 };
    expect([1, 2, 3, 4].map((n) => nominalDelaySeconds(n, fast))).toEqual([0.05, 0.1, 0.2, 0.2]);
  });

  it('says when the last attempt is spent', () => {
    expect(isLastAttempt(9, policy)).toBe(false);
    expect(isLastAttempt(10, policy)).toBe(true);
    expect(isLastAttempt(11, policy)).toBe(true);
  });
});
