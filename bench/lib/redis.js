'use strict';

const { readFileSync } = require('node:fs');
const { processTreeCpuSeconds } = require('./cpu');

const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
/** Every key the benchmarks write starts with this; each run's queues are named after its pid. */
const PREFIX = 'swp-bench';
/** Servers still open, so that an interrupted run can drop its queues. */
const opened = new Set();

/** The URL without its password, for logs and reports. */
function redact(url) {
  try {
    const u = new URL(url);
    if (u.password) {
      u.password = '***';
    }
    return u.toString();
  } catch {
    return '(unparsable Redis URL)';
  }
}

/**
 * The Redis server the bullmq target queues into. Resolves with a RedisServer, or with
 * `{ unavailable: reason }` when the packages are missing or nothing answers at `url`.
 */
async function openRedis(url) {
  let IORedis;
  let bullmq;
  try {
    IORedis = require('ioredis');
    bullmq = require('bullmq');
  } catch {
    return { unavailable: 'bullmq and ioredis are not installed (run `npm ci`)' };
  }
  const client = new IORedis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2_000,
    retryStrategy: () => null,
  });
  let cause; // ioredis rejects with "Connection is closed."; the socket's error says why
  client.on('error', (error) => (cause = cause || error));
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    client.disconnect();
    return { unavailable: `no Redis answers at ${redact(url)} (${(cause || error).message})` };
  }
  const server = new RedisServer(url, client, bullmq);
  opened.add(server);
  await server.describe();
  return server;
}

class RedisServer {
  constructor(url, client, bullmq) {
    this.url = url;
    this.client = client;
    this.bullmq = bullmq;
    this.queues = new Map();
    this.count = 0;
  }

  /** Version, pid (when the server runs on this machine) and the settings that decide durability. */
  async describe() {
    const info = await this.client.info('server');
    const field = (name) => (new RegExp(`^${name}:(.*)$`, 'm').exec(info) || [])[1]?.trim();
    const config = async (name) => {
      const [, value] = await this.client.config('GET', name);
      return value;
    };
    const pid = Number(field('process_id'));
    this.version = field('redis_version');
    this.pid = isLocal(this.url) && isRedisProcess(pid) ? pid : undefined;
    this.settings = {
      appendonly: await config('appendonly'),
      appendfsync: await config('appendfsync'),
      save: await config('save'),
      maxmemoryPolicy: await config('maxmemory-policy'),
    };
    this.description = `Redis ${this.version} at ${redact(this.url)}${this.pid ? ` (pid ${this.pid})` : ' (not on this machine: no CPU figures)'}`;
  }

  /** CPU seconds of redis-server so far (with its exited children); NaN when it is not local. */
  cpuSeconds() {
    return this.pid ? processTreeCpuSeconds(this.pid) : Number.NaN;
  }

  /** A new queue name for this run; its keys are `${PREFIX}:<name>:…`. */
  newQueue(label) {
    const name = `${label}_${process.pid}_${++this.count}`;
    this.queues.set(name, new this.bullmq.Queue(name, { connection: this.client, prefix: PREFIX }));
    return { name, prefix: PREFIX };
  }

  /** Jobs acknowledged but not yet finished, and those that failed for good. */
  async backlog(name) {
    const counts = await this.queues
      .get(name)
      .getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed');
    const { failed, ...open } = counts;
    return { open: Object.values(open).reduce((a, b) => a + b, 0), failed };
  }

  /** Polls until the queue has nothing waiting, active or delayed; resolves with seconds waited. */
  async waitDrained(name, { timeoutMs = 300_000, intervalMs = 200 } = {}) {
    const started = Date.now();
    for (;;) {
      const { open } = await this.backlog(name);
      if (open === 0) {
        return (Date.now() - started) / 1000;
      }
      if (Date.now() - started > timeoutMs) {
        throw new Error(`queue ${name} still has ${open} open jobs after ${timeoutMs / 1000} s`);
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  /** Deletes one queue's keys (BullMQ's obliterate, then any stragglers by pattern); nothing else. */
  async dropQueue(name) {
    const queue = this.queues.get(name);
    if (!queue) {
      return;
    }
    this.queues.delete(name);
    try {
      await queue.obliterate({ force: true });
    } catch {
      // the keys are swept below
    }
    let cursor = '0';
    do {
      const [next, keys] = await this.client.scan(cursor, 'MATCH', `${PREFIX}:${name}:*`, 'COUNT', 1000);
      if (keys.length) {
        await this.client.del(...keys);
      }
      cursor = next;
    } while (cursor !== '0');
    await queue.close();
  }

  /** Drops every queue this run made, then disconnects. */
  async close() {
    opened.delete(this);
    for (const name of [...this.queues.keys()]) {
      await this.dropQueue(name).catch(() => undefined);
    }
    this.client.disconnect();
  }
}

function isLocal(url) {
  try {
    return ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname);
  } catch {
    return false;
  }
}

// The pid Redis reports is only ours to read if this machine's /proc shows a redis-server there
// (a server in a container reports its own namespace's pid).
function isRedisProcess(pid) {
  try {
    return /redis/.test(readFileSync(`/proc/${pid}/comm`, 'utf8'));
  } catch {
    return false;
  }
}

/** Drops the queues of every server still open (an interrupted or failed run). */
async function closeAllRedis() {
  await Promise.all([...opened].map((server) => server.close().catch(() => undefined)));
}

module.exports = { openRedis, closeAllRedis, redact, DEFAULT_REDIS_URL, PREFIX };
