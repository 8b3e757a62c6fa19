'use strict';

const { spawn } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { existsSync, mkdtempSync, readFileSync, rmSync, chmodSync } = require('node:fs');
const { createServer } = require('node:net');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { ROOT } = require('./db');

const SERVICE_MAIN = join(ROOT, 'dist', 'src', 'main.js');
const FLOOR_MAIN = join(ROOT, 'bench', 'floor.js');
const BULLMQ_MAIN = join(ROOT, 'bench', 'bullmq.js');

/** The secrets every target gets: the load generator signs with WEBHOOK_SECRET. */
const WEBHOOK_SECRET = `whsec_bench${randomBytes(16).toString('hex')}`;
const ADMIN_TOKEN = randomBytes(16).toString('hex'); // 32 characters
const ADMIN_API_TOKEN = `ops:${ADMIN_TOKEN}`;

/** Extra environment for every service process (run.js --service-env), for what-if runs. */
const serviceEnv = {};
function setServiceEnv(env) {
  Object.assign(serviceEnv, env);
}

/** Every child started here, so that an interrupted run can stop them (by pid, nothing broader). */
const live = new Set();

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * A child Node.js process serving HTTP: the compiled service (`node dist/src/main.js`, exactly as
 * `npm run start:prod` runs it) or the floor. Its output is kept (the last lines) for error reports.
 */
class Target {
  constructor(name, script, env, nodeArgs, cwd) {
    this.name = name;
    this.port = Number(env.PORT);
    this.url = `http://127.0.0.1:${this.port}`;
    this.cwd = cwd;
    this.lines = [];
    this.lineCount = 0;
    this.warnings = 0;
    this.started = process.hrtime.bigint();
    this.child = spawn(process.execPath, [...nodeArgs, script], {
      cwd,
      env: { PATH: process.env.PATH || '', HOME: process.env.HOME || '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.pid = this.child.pid;
    live.add(this);
    const keep = (chunk) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line) {
          continue;
        }
        this.lineCount++;
        if (/"level":(40|50|60)/.test(line)) {
          this.warnings++;
        }
        this.lines.push(line);
        if (this.lines.length > 200) {
          this.lines.shift();
        }
      }
    };
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        live.delete(this);
        resolve(code ?? signal);
      }),
    );
  }

  output(lines = 40) {
    return this.lines.slice(-lines).join('\n');
  }

  /** Resolves when GET /health/ready answers 200; rejects with the output if the process exits. */
  async ready(timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) {
        throw new Error(`${this.name} exited (${this.child.exitCode}):\n${this.output()}`);
      }
      try {
        const response = await fetch(`${this.url}/health/ready`);
        await response.arrayBuffer();
        if (response.status === 200) {
          this.readyAfterMs = Number(process.hrtime.bigint() - this.started) / 1e6;
          return this;
        }
        last = `HTTP ${response.status}`;
      } catch (error) {
        last = String(error);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${this.name}: /health/ready did not answer 200 in time (${last}):\n${this.output()}`);
  }

  /** SIGTERM (graceful), then SIGKILL after `graceMs`; resolves with the exit code. */
  async stop(graceMs = 30_000) {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    this.exitCode = await this.exited;
    if (this.cwd) {
      rmSync(this.cwd, { recursive: true, force: true });
    }
    return this.exitCode;
  }
}

function scratch() {
  const dir = mkdtempSync(join(tmpdir(), 'swp-bench-run-'));
  chmodSync(dir, 0o755);
  return dir;
}

/**
 * Starts the compiled service against `databaseUrl` in a scratch working directory (so that no
 * `.env` or `.data/` of the checkout is read), production mode, warnings only.
 */
async function startService(databaseUrl, { env = {}, nodeArgs = [], name = 'service', wait = true } = {}) {
  if (!existsSync(SERVICE_MAIN)) {
    throw new Error(`${SERVICE_MAIN} is missing: run \`npm run build\` first`);
  }
  const port = await freePort();
  const target = new Target(
    name,
    SERVICE_MAIN,
    {
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      DATABASE_URL: databaseUrl,
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      ADMIN_API_TOKEN,
      PORT: String(port),
      ...serviceEnv,
      ...env,
    },
    nodeArgs,
    scratch(),
  );
  return wait ? target.ready() : target;
}

async function startFloor(databaseUrl, { env = {}, nodeArgs = [], name = 'floor' } = {}) {
  const port = await freePort();
  const target = new Target(
    name,
    FLOOR_MAIN,
    { DATABASE_URL: databaseUrl, STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET, PORT: String(port), ...env },
    nodeArgs,
    scratch(),
  );
  return target.ready();
}

/**
 * Starts the BullMQ build (bench/bullmq.js) against `databaseUrl`, queueing into `queue` (a name
 * and prefix of its own) on the Redis server at `redisUrl`.
 */
async function startBullmq(databaseUrl, { redisUrl, queue, env = {}, nodeArgs = [], name = 'bullmq' }) {
  const port = await freePort();
  const target = new Target(
    name,
    BULLMQ_MAIN,
    {
      DATABASE_URL: databaseUrl,
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      PORT: String(port),
      REDIS_URL: redisUrl,
      BULLMQ_QUEUE: queue.name,
      BULLMQ_PREFIX: queue.prefix,
      ...env,
    },
    nodeArgs,
    scratch(),
  );
  return target.ready();
}

/** Samples a process's resident memory every `intervalMs` from /proc (VmRSS now, VmHWM the peak). */
class RssSampler {
  constructor(pid, intervalMs = 100) {
    this.pid = pid;
    this.peakRss = 0;
    this.hwm = 0;
    this.samples = 0;
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.sample();
  }

  sample() {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const rss = /VmRSS:\s+(\d+) kB/.exec(status);
      const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
      if (rss) {
        this.peakRss = Math.max(this.peakRss, Number(rss[1]) * 1024);
      }
      if (hwm) {
        this.hwm = Math.max(this.hwm, Number(hwm[1]) * 1024);
      }
      this.samples++;
    } catch {
      // the process has exited
    }
  }

  stop() {
    clearInterval(this.timer);
    this.sample();
    return { peakRssBytes: this.peakRss, vmHwmBytes: this.hwm, samples: this.samples };
  }
}

/** Kills every child still running (an interrupted run): SIGKILL by pid. */
function killAll() {
  for (const target of live) {
    try {
      process.kill(target.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    if (target.cwd) {
      rmSync(target.cwd, { recursive: true, force: true });
    }
  }
}

module.exports = {
  startService,
  startFloor,
  startBullmq,
  RssSampler,
  killAll,
  freePort,
  setServiceEnv,
  WEBHOOK_SECRET,
  ADMIN_TOKEN,
  ADMIN_API_TOKEN,
};
