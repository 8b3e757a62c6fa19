'use strict';

const { spawn } = require('node:child_process');
const { chmodSync, mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { Client } = require('pg');

const ROOT = join(__dirname, '..', '..');

/**
 * The PostgreSQL server the benchmarks run on: TEST_DATABASE_URL's server when set (each benchmark
 * creates its own `bench_…` databases there and drops them), else an embedded server in a temporary
 * directory, started with the service's own helper and deleted afterwards.
 */
async function openServer(log) {
  const given = process.env.TEST_DATABASE_URL && process.env.TEST_DATABASE_URL.trim();
  if (given) {
    const server = new Server(given, 'TEST_DATABASE_URL', async () => undefined);
    await server.check();
    return server;
  }
  const { startEmbeddedPostgres } = require(join(ROOT, 'dist', 'src', 'database', 'embedded-postgres.js'));
  const dir = mkdtempSync(join(tmpdir(), 'swp-bench-'));
  chmodSync(dir, 0o755); // the embedded server runs as "postgres" when this runs as root
  log(`no TEST_DATABASE_URL: starting an embedded PostgreSQL in ${dir}`);
  // BENCH_PG_SETTINGS="shared_buffers=1GB,max_wal_size=4GB" tunes the embedded server (what-if runs).
  const settings = Object.fromEntries(
    (process.env.BENCH_PG_SETTINGS ?? '')
      .split(',')
      .filter(Boolean)
      .map((pair) => pair.split('=').map((part) => part.trim())),
  );
  if (Object.keys(settings).length > 0) {
    log(`embedded PostgreSQL settings: ${JSON.stringify(settings)}`);
  }
  const embedded = await startEmbeddedPostgres({
    directory: join(dir, 'pg'),
    password: 'bench',
    database: 'postgres',
    persistent: false,
    settings,
  });
  const server = new Server(embedded.adminUrl, 'embedded', async () => {
    await embedded.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await server.check();
  return server;
}

class Server {
  constructor(adminUrl, kind, stop) {
    this.adminUrl = adminUrl;
    this.kind = kind;
    this.stopServer = stop;
    this.created = new Set();
    this.prefix = `bench_${process.pid}_`;
    /** Per-database settings (run.js --db-set), e.g. { synchronous_commit: 'off' }, for what-if runs. */
    this.databaseSettings = {};
  }

  async check() {
    await this.admin((c) => c.query('SELECT 1'));
  }

  /** Connection string of database `name` on this server. */
  urlFor(name) {
    const url = new URL(this.adminUrl);
    url.pathname = `/${name}`;
    return url.toString();
  }

  /** The redacted address, for reports. */
  get description() {
    const url = new URL(this.adminUrl);
    return `${this.kind} (${url.hostname}:${url.port || 5432})`;
  }

  async admin(work) {
    const client = new Client({ connectionString: this.adminUrl });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  }

  /** Creates bench_<pid>_<suffix> (from `template` if given) and returns its name. */
  async createDatabase(suffix, template) {
    const name = `${this.prefix}${suffix}`;
    await this.admin(async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`);
      await c.query(
        `CREATE DATABASE ${c.escapeIdentifier(name)}${template ? ` TEMPLATE ${c.escapeIdentifier(template)}` : ''}`,
      );
    });
    this.created.add(name);
    return name;
  }

  async dropDatabase(name) {
    await this.admin((c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`));
    this.created.delete(name);
  }

  /**
   * A migrated, empty database to clone others from (CREATE DATABASE … TEMPLATE is much faster
   * than migrating each one). Migrations are the service's own, run by its compiled CLI.
   */
  async template() {
    if (!this.templateName) {
      const name = await this.createDatabase('template');
      await runMigrations(this.urlFor(name));
      this.templateName = name;
    }
    return this.templateName;
  }

  /** A fresh migrated database; returns { name, url }. */
  async freshDatabase(suffix) {
    const name = await this.createDatabase(suffix, await this.template());
    for (const [key, value] of Object.entries(this.databaseSettings)) {
      await this.admin((c) =>
        c.query(`ALTER DATABASE ${c.escapeIdentifier(name)} SET ${key} = ${c.escapeLiteral(value)}`),
      );
    }
    return { name, url: this.urlFor(name) };
  }

  /** Settings that bound write throughput, and versions, for the report. */
  async settings() {
    return this.admin(async (c) => {
      const names = [
        'server_version',
        'fsync',
        'synchronous_commit',
        'wal_sync_method',
        'full_page_writes',
        'commit_delay',
        'shared_buffers',
        'max_connections',
        'work_mem',
        'max_wal_size',
        'checkpoint_timeout',
        'data_checksums',
      ];
      const out = {};
      for (const name of names) {
        out[name] = (await c.query(`SHOW ${name}`)).rows[0][name];
      }
      return out;
    });
  }

  /** Drops every database this process created, then stops an embedded server. */
  async close() {
    for (const name of [...this.created]) {
      await this.dropDatabase(name).catch(() => undefined);
    }
    await this.stopServer();
  }
}

function runMigrations(databaseUrl) {
  return new Promise((resolve, reject) => {
    const dir = mkdtempSync(join(tmpdir(), 'swp-bench-cwd-'));
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'database', 'migration-cli.js'), 'run'], {
      cwd: dir,
      env: { PATH: process.env.PATH || '', HOME: process.env.HOME || '', DATABASE_URL: databaseUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('exit', (code) => {
      rmSync(dir, { recursive: true, force: true });
      if (code === 0) {
        resolve();
      } else {
        reject(new Error(`migrations failed (${code}):\n${output}`));
      }
    });
  });
}

/** Runs `work(client)` with a client on `url`, then closes it. */
async function withClient(url, work) {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Polls until `select` (a SELECT of one integer column `n`) returns 0; resolves with seconds waited. */
async function waitForZero(url, select, { timeoutMs = 300_000, intervalMs = 200, onTick } = {}) {
  const started = Date.now();
  return withClient(url, async (c) => {
    for (;;) {
      const n = Number((await c.query(select)).rows[0].n);
      if (onTick) {
        onTick(n);
      }
      if (n === 0) {
        return (Date.now() - started) / 1000;
      }
      if (Date.now() - started > timeoutMs) {
        throw new Error(`still ${n} after ${timeoutMs / 1000} s: ${select}`);
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  });
}

module.exports = { openServer, withClient, waitForZero, ROOT };
