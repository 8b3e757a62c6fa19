/** Polls `check` until it returns a truthy value, or fails after `timeoutMs` with the last value seen. */
export async function waitUntil<T>(
  check: () => Promise<T> | T,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    const value = await check();
    last = value;
    if (value) {
      return value;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${what} not reached within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
}

/** A promise the test opens when it wants: handlers await `gate.wait()`. */
export class Gate {
  private opened = false;
  private resolvers: Array<() => void> = [];

  wait(): Promise<void> {
    return this.opened ? Promise.resolve() : new Promise((resolve) => this.resolvers.push(resolve));
  }

  open(): void {
    this.opened = true;
    for (const resolve of this.resolvers.splice(0)) {
      resolve();
    }
  }
}
