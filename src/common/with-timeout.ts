/** Rejects when `promise` has not settled within `ms` (the promise itself is not cancelled). */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Runs `work` (a synchronous throw included) and, if it has not settled within `ms`, rejects with
 * `timeoutError()` and calls `onTimeout` so that the caller can cut the work off.
 */
export function runWithin(
  work: () => Promise<unknown>,
  ms: number,
  timeoutError: () => Error,
  onTimeout: () => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(timeoutError());
      onTimeout();
    }, ms);
    Promise.resolve()
      .then(work)
      .then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
  });
}
