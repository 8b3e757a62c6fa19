#!/usr/bin/env node
'use strict';

/**
 * npm run bench: the benchmarks of BENCHMARKS.md.
 *
 *   node bench/run.js [ingest|drain|scale|profile|backfill ...] [--quick] [--json FILE]
 *
 * With no mode: ingest, drain and scale (profile, retention and backfill only when asked). Runs against TEST_DATABASE_URL's
 * server when set (a fresh bench_<pid>_… database per target and run, dropped afterwards), else an
 * embedded PostgreSQL in a temporary directory. Needs the compiled service (`npm run build`).
 *
 *   --quick              small N and short runs (a few minutes in all)
 *   --duration S         seconds per measured ingest run (default 10, quick 3)
 *   --levels 1,8,32,64   ingest concurrencies
 *   --repeat N           rounds of the ingest levels (default 2, quick 1); ratios use each one's best
 *   --drain-n 10000,100000   backlog sizes (quick: 10000)
 *   --replicas 1,3       drain replica counts
 *   --scale-events N     processed events for the scale check (default 1000000, quick 100000)
 *   --scale-dead N       open dead letters (default 100000, quick 10000)
 *   --retention-events N old processed events pruned while ingesting (default 1000000, quick 100000)
 *   --retention-rate R   the ingest rate during the retention run, per second (default 500: half the peak)
 *   --backfill-n 100000  events the fake Stripe holds for the backfill (quick: 10000)
 *   --backfill-rps 20    STRIPE_API_MAX_RPS of the backfill
 *   --floor-tx / --no-floor-tx   also run the floor in BEGIN/…/COMMIT style at 32 connections
 *   --bullmq / --no-bullmq       also run the BullMQ-on-Redis build (bench/bullmq.js) in ingest
 *                        (default on; skipped with a message when Redis does not answer)
 *   --redis-url URL      the Redis server for it (default BENCH_REDIS_URL, else redis://127.0.0.1:6379);
 *                        only keys under swp-bench:<queue of this run>: are written, and deleted after
 *   --bullmq-env K=V,…   extra environment for it (what-if: BULLMQ_CONCURRENCY=32)
 *   --json FILE          where to write every figure (default bench/results/<time>-<modes>.json)
 *   --report FILE        print the tables of an earlier run's JSON again, and exit
 *   --service-env K=V,…  extra environment for every service process (what-if: DB_POOL_SIZE=20,…)
 *   --db-set K=V,…       settings for every bench database (what-if: synchronous_commit=off)
 */

const { mkdirSync, writeFileSync, readFileSync } = require('node:fs');
const os = require('node:os');
const { join } = require('node:path');
const { openServer, ROOT } = require('./lib/db');
const { killAll, setServiceEnv } = require('./lib/processes');
const { closeAllRedis, redact, DEFAULT_REDIS_URL } = require('./lib/redis');

const MODES = ['ingest', 'drain', 'scale', 'profile', 'retention', 'backfill'];

function parseArgs(argv) {
  const args = { modes: [], quick: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) {
        throw new Error(`${a} needs a value`);
      }
      return v;
    };
    if (MODES.includes(a)) {
      args.modes.push(a);
    } else if (a === 'all') {
      args.modes.push('ingest', 'drain', 'scale');
    } else if (a === '--quick') {
      args.quick = true;
    } else if (a === '--duration') {
      args.duration = Number(value());
    } else if (a === '--repeat') {
      args.repeat = Number(value());
    } else if (a === '--levels') {
      args.levels = value().split(',').map(Number);
    } else if (a === '--drain-n') {
      args.drainN = value().split(',').map(Number);
    } else if (a === '--replicas') {
      args.replicas = value().split(',').map(Number);
    } else if (a === '--scale-events') {
      args.scaleEvents = Number(value());
    } else if (a === '--backfill-n') {
      args.backfillN = value().split(',').map(Number);
    } else if (a === '--backfill-rps') {
      args.backfillRps = Number(value());
    } else if (a === '--scale-dead') {
      args.scaleDead = Number(value());
    } else if (a === '--retention-events') {
      args.retentionEvents = Number(value());
    } else if (a === '--retention-rate') {
      args.retentionRate = Number(value());
    } else if (a === '--floor-tx') {
      args.floorTx = true;
    } else if (a === '--no-floor-tx') {
      args.floorTx = false;
    } else if (a === '--bullmq') {
      args.bullmq = true;
    } else if (a === '--no-bullmq') {
      args.bullmq = false;
    } else if (a === '--redis-url') {
      args.redisUrl = value();
    } else if (a === '--bullmq-env') {
      args.bullmqEnv = pairs(value(), /^[A-Z][A-Z0-9_]*$/);
    } else if (a === '--service-env') {
      args.serviceEnv = pairs(value(), /^[A-Z][A-Z0-9_]*$/);
    } else if (a === '--db-set') {
      args.dbSet = pairs(value(), /^[a-z_]+$/);
    } else if (a === '--report') {
      args.report = value();
    } else if (a === '--json') {
      args.json = value();
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(
        readFileSync(__filename, 'utf8')
          .split('*/')[0]
          .replace(/^[\s\S]*?\/\*\*/, ''),
      );
      process.exit(0);
    } else {
      throw new Error(`unknown argument ${a} (modes: ${MODES.join(', ')}; see --help)`);
    }
  }
  if (args.modes.length === 0) {
    args.modes = ['ingest', 'drain', 'scale'];
  }
  const q = args.quick;
  return {
    modes: [...new Set(args.modes)],
    report: args.report,
    quick: q,
    serviceEnv: args.serviceEnv || {},
    dbSet: args.dbSet || {},
    json: args.json,
    levels: args.levels || [1, 8, 32, 64],
    duration: args.duration || (q ? 3 : 10),
    repeat: args.repeat || (q ? 1 : 2),
    warmup: q ? 1 : 2,
    steadyDuration: q ? 5 : 15,
    floorTx: args.floorTx ?? !q,
    bullmq: args.bullmq ?? true,
    redisUrl: args.redisUrl || process.env.BENCH_REDIS_URL || DEFAULT_REDIS_URL,
    bullmqEnv: args.bullmqEnv || {},
    drainN: args.drainN || (q ? [10_000] : [10_000, 100_000]),
    replicas: args.replicas || [1, 3],
    scaleEvents: args.scaleEvents ?? (q ? 100_000 : 1_000_000),
    scaleDead: args.scaleDead ?? (q ? 10_000 : 100_000),
    scaleDue: 1_000,
    retentionEvents: args.retentionEvents ?? (q ? 100_000 : 1_000_000),
    retentionRate: args.retentionRate ?? 500,
    scaleRequests: 200,
    scaleDeepPages: q ? 20 : 100,
    profileDuration: q ? 5 : 10,
    backfillN: args.backfillN || (q ? [10_000] : [100_000]),
    backfillRps: args.backfillRps || 20,
  };
}

function pairs(text, keyPattern) {
  const out = {};
  for (const item of text.split(',')) {
    const at = item.indexOf('=');
    const key = item.slice(0, at).trim();
    if (at < 1 || !keyPattern.test(key)) {
      throw new Error(`expected KEY=VALUE pairs separated by commas, got ${item}`);
    }
    out[key] = item.slice(at + 1).trim();
  }
  return out;
}

function machine(settings, serverDescription) {
  const cpus = os.cpus();
  let postgresVersion = settings && settings.server_version;
  return {
    cores: cpus.length,
    cpuModel: cpus[0] && cpus[0].model,
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    postgres: postgresVersion,
    server: serverDescription,
    loadAverageAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
    settings,
  };
}

function reprint(file) {
  const results = JSON.parse(readFileSync(file, 'utf8'));
  for (const mode of MODES) {
    if (results[mode]) {
      process.stdout.write(`${require(`./${mode}`).report(results[mode])}\n`);
    }
  }
  const m = results.machine;
  process.stdout.write(
    `\nMachine: ${m.cores} × ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}, PostgreSQL ${m.postgres} on ${m.server}; ` +
      `load average ${m.loadAverageAtStart.join('/')} → ${(m.loadAverageAtEnd || []).join('/')}; started ${results.startedAt}\n`,
  );
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.report) {
    reprint(opts.report);
    return;
  }
  const started = Date.now();
  const log = (line) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
  let server;
  let interrupted = false;
  const onSignal = (signal) => {
    if (interrupted) {
      return;
    }
    interrupted = true;
    log(`${signal}: stopping children and dropping the bench databases`);
    killAll();
    const done = Promise.allSettled([server ? server.close() : undefined, closeAllRedis()]);
    done.finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const results = {
    startedAt: new Date(started).toISOString(),
    options: { ...opts, redisUrl: redact(opts.redisUrl) },
    timings: {},
  };
  const reports = [];
  try {
    server = await openServer(log);
    setServiceEnv(opts.serviceEnv);
    server.databaseSettings = opts.dbSet;
    if (Object.keys(opts.serviceEnv).length || Object.keys(opts.dbSet).length) {
      log(
        `what-if run: service env ${JSON.stringify(opts.serviceEnv)}, database settings ${JSON.stringify(opts.dbSet)}`,
      );
    }
    const settings = await server.settings();
    results.machine = machine(settings, server.description);
    log(
      `PostgreSQL ${settings.server_version} (${server.description}): fsync=${settings.fsync}, ` +
        `synchronous_commit=${settings.synchronous_commit}, shared_buffers=${settings.shared_buffers}; ` +
        `${results.machine.cores} cores, load ${results.machine.loadAverageAtStart.join(' ')}`,
    );
    for (const mode of opts.modes) {
      const t0 = Date.now();
      log(`--- ${mode}${opts.quick ? ' (quick)' : ''}`);
      const module = require(`./${mode}`);
      results[mode] = await module[mode]({ server, opts, log });
      results.timings[mode] = Math.round((Date.now() - t0) / 1000);
      let text;
      try {
        text = module.report(results[mode]);
      } catch (error) {
        // The figures are kept in the JSON file whatever the printing does.
        text = `${mode}: the report could not be printed (${error && error.stack ? error.stack : String(error)})`;
      }
      reports.push(text);
      process.stdout.write(`${text}\n`);
      log(`--- ${mode} took ${results.timings[mode]} s`);
    }
  } finally {
    killAll();
    await closeAllRedis();
    if (server) {
      await server.close();
    }
  }
  results.finishedAt = new Date().toISOString();
  results.machine.loadAverageAtEnd = os.loadavg().map((l) => Number(l.toFixed(2)));
  const file =
    opts.json ||
    join(
      ROOT,
      'bench',
      'results',
      `${results.startedAt.replace(/[:.]/g, '-')}-${opts.modes.join('-')}${opts.quick ? '-quick' : ''}.json`,
    );
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(
    `\nMachine: ${results.machine.cores} × ${results.machine.cpuModel}, ${results.machine.memoryGiB} GiB, Node ${results.machine.node}, ` +
      `PostgreSQL ${results.machine.postgres} on ${results.machine.server}; load average ${results.machine.loadAverageAtStart.join('/')} → ${results.machine.loadAverageAtEnd.join('/')}\n` +
      `Times: ${Object.entries(results.timings)
        .map(([k, v]) => `${k} ${v} s`)
        .join(', ')}; total ${Math.round((Date.now() - started) / 1000)} s. Figures: ${file}\n`,
  );
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error && error.stack ? error.stack : String(error)}\n`);
  killAll();
  process.exit(1);
});
