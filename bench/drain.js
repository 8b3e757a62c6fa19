'use strict';

const { startService, RssSampler } = require('./lib/processes');
const { withClient } = require('./lib/db');
const { CpuWindow, BackendCpuWindow } = require('./lib/cpu');
const { insertEvents, enqueuePending } = require('./lib/seed');
const { num, ms, mb, table } = require('./lib/stats');

/**
 * Drain: a backlog of N pending customer.subscription.updated events (each a different subscription
 * and customer), inserted with SQL into subscription_events + webhook_retry_queue, all due now; then
 * R replicas start with RETRY_CRON every second and the clock runs until the queue is empty.
 */
async function drain(ctx) {
  const { server, opts, log } = ctx;
  const runs = [];
  for (const n of opts.drainN) {
    for (const replicas of opts.replicas) {
      runs.push(await drainOnce(server, n, replicas, log));
    }
  }
  return { runs };
}

async function drainOnce(server, n, replicas, log) {
  const db = await server.freshDatabase(`drain_${n}_${replicas}`);
  const services = [];
  try {
    const seedStart = Date.now();
    await withClient(db.url, async (c) => {
      await insertEvents(c, { n, tag: `d${n}` });
      await enqueuePending(c, `d${n}`);
      await c.query('VACUUM ANALYZE');
    });
    const seedSeconds = (Date.now() - seedStart) / 1000;
    log(`drain: ${num(n)} pending events seeded in ${seedSeconds.toFixed(1)} s; starting ${replicas} replica(s)`);

    const backends = await new BackendCpuWindow(server, db.name).begin();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < replicas; i++) {
      services.push(
        await startService(db.url, { name: `replica-${i + 1}`, env: { RETRY_CRON: '* * * * * *' }, wait: false }),
      );
    }
    const samplers = services.map((s) => new RssSampler(s.pid));
    const cpu = new CpuWindow(services.map((s) => s.pid));
    const readies = services.map((s) => s.ready(120_000));
    const timeoutMs = Math.max(180_000, n * 20); // 50 events/s at worst
    let left = n;
    let lastLog = Date.now();
    await withClient(db.url, async (c) => {
      for (;;) {
        left = (await c.query('SELECT count(*)::int AS n FROM webhook_retry_queue')).rows[0].n;
        if (left === 0) {
          break;
        }
        const elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
        if (elapsed > timeoutMs) {
          throw new Error(`drain: ${left} of ${n} events still queued after ${elapsed / 1000} s`);
        }
        if (services.some((s) => s.child.exitCode !== null)) {
          throw new Error(`drain: a replica exited:\n${services.map((s) => s.output(20)).join('\n')}`);
        }
        if (Date.now() - lastLog > 15_000) {
          log(`drain: ${num(n - left)} / ${num(n)} handled after ${(elapsed / 1000).toFixed(0)} s`);
          lastLog = Date.now();
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    });
    const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const usage = cpu.end();
    const backendCpu = await backends.end();
    await Promise.all(readies);
    const memory = samplers.map((s) => s.stop());
    const bootMs = Math.max(...services.map((s) => s.readyAfterMs));
    const exits = [];
    for (const s of services) {
      exits.push(await s.stop());
    }
    const stats = await withClient(db.url, async (c) => {
      const { rows } = await c.query(
        `SELECT count(*) FILTER (WHERE status = 'processed')::int AS processed,
                count(*) FILTER (WHERE status <> 'processed')::int AS other,
                extract(epoch FROM max(processed_at) - min(processed_at)) AS span,
                extract(epoch FROM min(processed_at) - min(received_at)) AS first_after_seed,
                max(attempts)::int AS max_attempts,
                (SELECT count(*)::int FROM subscriptions) AS subscriptions
           FROM subscription_events`,
      );
      return rows[0];
    });
    const cpuSeconds = usage.pidCpuSeconds.reduce((a, b) => a + b, 0);
    const row = {
      n,
      replicas,
      seedSeconds,
      wallSeconds,
      bootMs,
      eventsPerSecondWall: n / wallSeconds,
      processingSpanSeconds: Number(stats.span),
      eventsPerSecondProcessing: n / Number(stats.span),
      processed: stats.processed,
      notProcessed: stats.other,
      subscriptions: stats.subscriptions,
      maxAttempts: stats.max_attempts,
      serviceCpuMsPerEvent: (1000 * cpuSeconds) / n,
      serviceCpuPercent: (100 * cpuSeconds) / usage.wallSeconds,
      postgresCpuMsPerEvent: (1000 * backendCpu.cpuSeconds) / n,
      machineBusyPercent: usage.machineBusyPercent,
      peakRssBytes: Math.max(...memory.map((m) => m.peakRssBytes)),
      exitCodes: exits,
      warnings: services.reduce((a, s) => a + s.warnings, 0),
    };
    if (row.processed !== n || row.subscriptions !== n) {
      row.problem = `${row.processed} processed, ${row.notProcessed} not, ${row.subscriptions} subscriptions of ${n}`;
      log(`drain: WARNING ${row.problem}`);
    }
    if (row.warnings) {
      log(`drain: ${row.warnings} warning/error log lines, e.g.:\n${services.map((s) => s.output(3)).join('\n')}`);
    }
    log(
      `drain: ${num(n)} events, ${replicas} replica(s): ${wallSeconds.toFixed(1)} s from spawn ` +
        `(${num(row.eventsPerSecondWall)}/s), ${num(row.eventsPerSecondProcessing)}/s between first and last`,
    );
    return row;
  } finally {
    for (const s of services) {
      await s.stop();
    }
    await server.dropDatabase(db.name);
  }
}

function report(results) {
  return table(
    'Drain: N pending customer.subscription.updated events (distinct subscriptions), RETRY_CRON every second, service defaults per replica (pool 10, WORKER_CONCURRENCY 8) unless --service-env says otherwise (target ≥ 1,000 events/s on one replica)',
    [
      'N',
      'replicas',
      'seed s',
      'boot ms',
      'wall s',
      'events/s (wall)',
      'events/s (first→last)',
      'service CPU ms/event',
      'PG CPU ms/event',
      'service CPU',
      'machine busy',
      'peak RSS MB',
      'all processed',
    ],
    results.runs.map((r) => [
      num(r.n),
      r.replicas,
      num(r.seedSeconds, 1),
      num(r.bootMs),
      num(r.wallSeconds, 1),
      num(r.eventsPerSecondWall),
      num(r.eventsPerSecondProcessing),
      num(r.serviceCpuMsPerEvent, 2),
      num(r.postgresCpuMsPerEvent, 2),
      `${num(r.serviceCpuPercent)}%`,
      `${num(r.machineBusyPercent)}%`,
      mb(r.peakRssBytes),
      r.problem ? `NO: ${r.problem}` : 'yes',
    ]),
  );
}

module.exports = { drain, report, ms };
