'use strict';

const { mkdirSync, readdirSync, readFileSync, existsSync } = require('node:fs');
const { join } = require('node:path');
const { eventFactory } = require('./lib/events');
const { fire, figures } = require('./lib/load');
const { startService, startFloor, WEBHOOK_SECRET } = require('./lib/processes');
const { withClient, waitForZero, ROOT } = require('./lib/db');
const { insertEvents, enqueuePending } = require('./lib/seed');
const { summariseProfile } = require('./lib/cpuprofile');
const { CpuWindow } = require('./lib/cpu');

const COUNTER = join(__dirname, 'lib', 'query-counter.js');
const { num, table } = require('./lib/stats');

const QUEUE_EMPTY = 'SELECT count(*)::int AS n FROM webhook_retry_queue';

/**
 * CPU profiles (node --cpu-prof) of the service and of the floor under the same ingest load
 * (32 connections), and of the service draining a 10,000-event backlog; each summarised over the
 * measured window only (boot and warm-up excluded): self time by function and by package.
 */
async function profile(ctx) {
  const { server, opts, log } = ctx;
  const dir = join(ROOT, 'bench', 'results', `profiles-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const out = { dir, runs: [] };
  for (const kind of ['service', 'floor']) {
    out.runs.push(await profileIngest(server, kind, join(dir, `ingest-${kind}`), opts, log));
  }
  out.runs.push(await profileDrain(server, join(dir, 'drain-service'), log));
  return out;
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

async function profileIngest(server, kind, profileDir, opts, log) {
  mkdirSync(profileDir, { recursive: true });
  const db = await server.freshDatabase(`profile_${kind}`);
  const nodeArgs = ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--require', COUNTER];
  const countFile = join(profileDir, 'queries.json');
  const env = { BENCH_QUERY_COUNT_FILE: countFile };
  const target =
    kind === 'service' ? await startService(db.url, { nodeArgs, env }) : await startFloor(db.url, { nodeArgs, env });
  let result;
  let fromUs;
  let toUs;
  let events;
  let cpu;
  let database;
  try {
    await fire({ url: target.url, connections: 32, duration: 2, factory: eventFactory('pw'), secret: WEBHOOK_SECRET });
    await waitForZero(db.url, QUEUE_EMPTY);
    const factory = eventFactory('pm');
    fromUs = nowUs();
    const window = new CpuWindow([target.pid]);
    result = figures(
      await fire({ url: target.url, connections: 32, duration: opts.profileDuration, factory, secret: WEBHOOK_SECRET }),
    );
    await waitForZero(db.url, QUEUE_EMPTY, { intervalMs: 50 });
    toUs = nowUs();
    cpu = window.end();
    events = await withClient(
      db.url,
      async (c) =>
        (
          await c.query(`SELECT count(*)::int AS n FROM subscription_events WHERE stripe_event_id LIKE $1`, [
            factory.pattern,
          ])
        ).rows[0].n,
    );
    await target.stop();
    database = await databaseWork(server, db);
  } finally {
    await target.stop();
    await server.dropDatabase(db.name);
  }
  const summary = summariseProfile(newestProfile(profileDir), { fromUs, toUs });
  const queries = readQueries(countFile, database.events);
  log(
    `profile: ingest ${kind}: ${num(result.rps)} req/s, ${num(summary.busyMs / events, 2)} ms sampled on the main ` +
      `thread and ${num((1000 * cpu.pidCpuSeconds[0]) / events, 2)} ms CPU (all threads) per event; ` +
      `${num(queries.perEvent, 1)} statements and ${num(database.commitsPerEvent, 1)} commits per event`,
  );
  return {
    scenario: `ingest, 32 connections, ${kind}`,
    rps: result.rps,
    events,
    cpuMsPerEvent: (1000 * cpu.pidCpuSeconds[0]) / events,
    queries,
    database,
    ...summary,
  };
}

async function profileDrain(server, profileDir, log) {
  mkdirSync(profileDir, { recursive: true });
  const n = 10_000;
  const db = await server.freshDatabase('profile_drain');
  const countFile = join(profileDir, 'queries.json');
  let fromUs;
  let toUs;
  let cpu;
  let database;
  try {
    await withClient(db.url, async (c) => {
      await insertEvents(c, { n, tag: 'pd' });
      await enqueuePending(c, 'pd');
      await c.query('VACUUM ANALYZE');
    });
    const service = await startService(db.url, {
      env: { RETRY_CRON: '* * * * * *', BENCH_QUERY_COUNT_FILE: countFile },
      nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--require', COUNTER],
      wait: false,
    });
    try {
      fromUs = nowUs();
      const window = new CpuWindow([service.pid]);
      await waitForZero(db.url, QUEUE_EMPTY, { intervalMs: 50 });
      toUs = nowUs();
      cpu = window.end();
    } finally {
      await service.stop();
    }
    database = await databaseWork(server, db);
  } finally {
    await server.dropDatabase(db.name);
  }
  const summary = summariseProfile(newestProfile(profileDir), { fromUs, toUs });
  const queries = readQueries(countFile, n);
  log(
    `profile: drain: ${num(summary.busyMs / n, 2)} ms sampled on the main thread and ` +
      `${num((1000 * cpu.pidCpuSeconds[0]) / n, 2)} ms CPU per event (boot included); ` +
      `${num(queries.perEvent, 1)} statements and ${num(database.commitsPerEvent, 1)} commits per event`,
  );
  return {
    scenario: `drain ${num(n)} events, 1 replica (boot included)`,
    events: n,
    cpuMsPerEvent: (1000 * cpu.pidCpuSeconds[0]) / n,
    queries,
    database,
    ...summary,
  };
}

/**
 * What the database did for the target, from pg_stat_database once the target has exited (its
 * backends then have flushed their statistics): transactions and rows per stored event.
 */
async function databaseWork(server, db) {
  await new Promise((r) => setTimeout(r, 1_500));
  return withClient(db.url, async (c) => {
    const events = (await c.query('SELECT count(*)::int AS n FROM subscription_events')).rows[0].n;
    const { rows } = await c.query(
      `SELECT xact_commit::bigint AS commits, xact_rollback::bigint AS rollbacks, tup_inserted, tup_updated, tup_deleted,
              tup_returned, tup_fetched
         FROM pg_stat_database WHERE datname = current_database()`,
    );
    const r = rows[0];
    return {
      events,
      commitsPerEvent: Number(r.commits) / events,
      rollbacksPerEvent: Number(r.rollbacks) / events,
      rowsWrittenPerEvent: (Number(r.tup_inserted) + Number(r.tup_updated) + Number(r.tup_deleted)) / events,
      note: 'includes the bench’s own polling and seeding transactions (a few hundred)',
    };
  });
}

function readQueries(file, events) {
  if (!existsSync(file)) {
    return { total: 0, perEvent: Number.NaN, byStatement: {} };
  }
  const counts = JSON.parse(readFileSync(file, 'utf8'));
  return { ...counts, perEvent: counts.total / events };
}

function newestProfile(dir) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) {
    throw new Error(`no .cpuprofile in ${dir}: did the process exit cleanly?`);
  }
  return join(dir, files.sort().pop());
}

function report(out) {
  const parts = [`Profiles in ${out.dir} (open them in Chrome DevTools → Performance, or speedscope)`];
  for (const run of out.runs) {
    parts.push(
      table(
        `Profile: ${run.scenario}: ${num(run.events)} events; main thread sampled busy ${num(run.busyMs)} ms of ${num(run.windowMs)} ms = ${num(run.busyMs / run.events, 2)} ms per event, of which native socket writes ${num(run.socketWriteMs / run.events, 2)} ms and the rest (JS, GC, parsing) ${num((run.busyMs - run.socketWriteMs) / run.events, 2)} ms. By origin (self time; "attributed" charges Node-core and native frames to the nearest package or app frame above them)`,
        ['origin', 'ms', '% of busy', 'attributed ms', 'attributed %'],
        run.byOrigin.slice(0, 14).map((o) => {
          const a = run.attributed.find((x) => x.name === o.name);
          return [
            o.name,
            num(o.ms),
            `${num(o.percentOfBusy, 1)}%`,
            a ? num(a.ms) : '-',
            a ? `${num(a.percentOfBusy, 1)}%` : '-',
          ];
        }),
      ),
    );
    if (run.queries && run.queries.total) {
      parts.push(
        table(
          `Statements sent per event (pg Client#query, counted by a preload): ${num(run.queries.perEvent, 2)} in all; ${num(run.database.commitsPerEvent, 2)} commits per event (pg_stat_database); OS CPU ${num(run.cpuMsPerEvent, 2)} ms per event; peak heap used ${num((run.queries.peakMemoryBytes || {}).heapUsed / 2 ** 20)} MB of ${num((run.queries.peakMemoryBytes || {}).heapTotal / 2 ** 20)} MB heap, RSS ${num((run.queries.peakMemoryBytes || {}).rss / 2 ** 20)} MB`,
          ['statement (first words)', 'count', 'per event'],
          Object.entries(run.queries.byStatement)
            .slice(0, 12)
            .map(([k, v]) => [k, num(v), num(v / run.database.events, 2)]),
        ),
      );
    }
    parts.push(
      table(
        'Top functions by self time',
        ['function  file:line', 'ms', '% of busy'],
        run.topSelf.slice(0, 20).map((f) => [f.name, num(f.ms), `${num(f.percentOfBusy, 1)}%`]),
      ),
    );
  }
  return parts.join('\n');
}

module.exports = { profile, report };
