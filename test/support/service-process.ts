import { ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, TestDatabase } from './database';
import { TEST_SECRET } from './stripe';
import { ADMIN_TOKEN } from './test-app';
import { TEST_BUILD_DIR } from './test-env';

/** The compiled service (built by global setup) running as a real process, as `npm start` runs it. */
export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  output(): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

const scratch: string[] = [];

/** A temporary working directory, removed by `removeScratchDirectories`. */
export function scratchDirectory(): string {
  const dir = mkdtempSync(join(tmpdir(), 'swp-'));
  chmodSync(dir, 0o755); // the embedded server runs as "postgres" when tests run as root
  scratch.push(dir);
  return dir;
}

export function removeScratchDirectories(): void {
  for (const dir of scratch.splice(0)) {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address ? address.port : 0;
}

/** Starts the service with exactly `env` (plus PATH/HOME), in `cwd`. */
export function spawnService(env: Record<string, string>, cwd: string): ServiceProcess {
  const child = spawn(process.execPath, [join(TEST_BUILD_DIR, 'src', 'main.js')], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  return { child, url: `http://127.0.0.1:${env.PORT ?? '3000'}`, output: () => output, exited };
}

/** Polls until `path` answers `status`, or fails with the process output. */
export async function waitFor(
  service: ServiceProcess,
  path: string,
  status = 200,
  timeoutMs = 30_000,
): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (service.child.exitCode !== null) {
      throw new Error(`the service exited (${service.child.exitCode}):\n${service.output()}`);
    }
    try {
      const response = await fetch(`${service.url}${path}`);
      if (response.status === status) {
        return response;
      }
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${path} did not answer ${status} in time (last: ${last}):\n${service.output()}`);
}

/**
 * A database for the service processes of the enclosing describe block: created before its first
 * test (then `db` is filled in), dropped after its last, with the scratch directories.
 */
export function useServiceDatabase(): TestDatabase {
  const db = {} as TestDatabase;
  beforeAll(async () => {
    Object.assign(db, await createTestDatabase());
  });
  afterAll(async () => {
    removeScratchDirectories();
    await db.drop?.();
  });
  return db;
}

/** A production service's environment: on `db`, on a free port, with the test secret and token unless overridden. */
export async function productionEnvironment(
  db: TestDatabase,
  overrides: Record<string, string> = {},
): Promise<Record<string, string>> {
  return {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    PORT: String(await freePort()),
    DATABASE_URL: db.url,
    STRIPE_WEBHOOK_SECRET: TEST_SECRET,
    ADMIN_API_TOKEN: `ops:${ADMIN_TOKEN}`,
    ...overrides,
  };
}
