'use strict';

const { eventFactory } = require('./lib/events');
const { fire, figures } = require('./lib/load');
const { steadyLoad } = require('./lib/steady');
const { startService, startFloor, startBullmq, RssSampler, WEBHOOK_SECRET } = require('./lib/processes');
const { withClient, waitForZero } = require('./lib/db');
const { openRedis } = require('./lib/redis');
const { checkSameJob } = require('./lib/same-job');
const { CpuWindow, BackendCpuWindow } = require('./lib/cpu');
const { num, ms, mb, table } = require('./lib/stats');

/** Connections of the fixed-rate loads (the overload gets as many as the acknowledgement peak had). */
const STEADY_CONNECTIONS = 32;
const QUEUE_EMPTY = 'SELECT count(*)::int AS n FROM webhook_retry_queue';

/**
 * Ingest: the service, the floor (bench/floor.js) and, when Redis answers, the BullMQ build
 * (bench/bullmq.js), each on its own fresh database, take unique signed events at each concurrency.
 * Targets alternate within a level (so background noise hits all alike); before each measured run a
 * short warm-up, and after it the target must finish every event it acknowledged (its queue empty:
 * the queue table, or the BullMQ queue in Redis) before the next run starts. Then a fixed-rate run at
 * half the service's peak gives the acknowledgement p99 and enqueue-to-handled latency.
 */
async function ingest(ctx) {
  const { server, opts, log } = ctx;
  const levels = opts.levels;
  const targets = [];
  const results = { levels: [], steady: [], rss: {}, settings: {} };
  let redis;
  try {
    const kinds = ['service', 'floor', ...(opts.floorTx ? ['floor-tx'] : [])];
    if (opts.bullmq) {
      redis = await openRedis(opts.redisUrl);
      if (redis.unavailable) {
        results.skipped = { bullmq: redis.unavailable };
        log(
          `ingest: the bullmq target is SKIPPED: ${redis.unavailable}. Start redis-server, or pass ` +
            '--redis-url URL (or --no-bullmq to leave it out).',
        );
        redis = undefined;
      } else {
        results.redis = { version: redis.version, onThisMachine: Boolean(redis.pid), settings: redis.settings };
        log(
          `ingest: ${redis.description}; appendonly=${redis.settings.appendonly}, ` +
            `appendfsync=${redis.settings.appendfsync}, save="${redis.settings.save}"`,
        );
        kinds.push('bullmq');
      }
    }
    for (const kind of kinds) {
      const db = await server.freshDatabase(`ingest_${kind.replace('-', '_')}`);
      let target;
      if (kind === 'service') {
        target = await startService(db.url);
      } else if (kind === 'bullmq') {
        const queue = redis.newQueue('ingest');
        target = await startBullmq(db.url, { redisUrl: opts.redisUrl, queue, env: opts.bullmqEnv });
        target.redis = redis;
        target.queue = queue;
        target.drained = (wait) => redis.waitDrained(queue.name, wait);
        if (redis.pid) {
          target.redisRss = new RssSampler(redis.pid);
          target.redisIdleRssBytes = target.redisRss.peakRss;
        }
      } else {
        target = await startFloor(db.url, {
          name: kind,
          env: kind === 'floor-tx' ? { FLOOR_STYLE: 'transaction' } : {},
        });
      }
      target.drained = target.drained || ((wait) => waitForZero(db.url, QUEUE_EMPTY, wait));
      target.db = db;
      target.kind = kind;
      target.rss = new RssSampler(target.pid);
      target.idleRssBytes = target.rss.peakRss;
      targets.push(target);
      log(`ingest: ${kind} ready in ${Math.round(target.readyAfterMs)} ms (pid ${target.pid})`);
    }
    const bullmq = targets.find((t) => t.kind === 'bullmq');
    if (bullmq) {
      const floor = targets.find((t) => t.kind === 'floor');
      const checks = await checkSameJob({ reference: floor, candidate: bullmq, secret: WEBHOOK_SECRET });
      log(`ingest: bullmq answers and writes as the floor does (${checks} comparisons)`);
    }

    for (let round = 1; round <= opts.repeat; round++) {
      for (const [index, connections] of levels.entries()) {
        const order = (index + round) % 2 === 1 ? targets : [...targets].reverse();
        for (const target of order) {
          if (target.kind === 'floor-tx' && connections !== 32) {
            continue;
          }
          const row = await measure(server, target, connections, opts, log);
          row.round = round;
          results.levels.push(row);
        }
      }
    }

    const service = results.levels.filter((r) => r.target === 'service');
    const peak = Math.max(...service.map((r) => r.rps));
    results.servicePeakRps = peak;
    // Half the peak acknowledgement rate (the target), and half the peak rate at which the
    // service also handles what it acknowledges: above that its queue only grows.
    const handledPeak = Math.max(...service.map((r) => r.jobsPerSecond));
    results.serviceHandledPeak = handledPeak;
    // Overload: more than the service handles (1.5 × its handled peak, below its acknowledgement
    // peak): acknowledgements should keep their latency while the backlog grows. It gets as many
    // connections as the acknowledgement peak was measured with, so that the connections are not
    // what limits the rate.
    const peakConnections = service.find((r) => r.rps === peak)?.connections ?? STEADY_CONNECTIONS;
    const loads = [
      { load: '½ peak acks', rate: Math.max(10, Math.floor(peak / 2)) },
      { load: '½ peak handled', rate: Math.max(10, Math.floor(handledPeak / 2)) },
      {
        load: 'overload',
        rate: Math.max(10, Math.floor(Math.min(1.5 * handledPeak, 0.9 * peak))),
        connections: Math.max(STEADY_CONNECTIONS, peakConnections),
      },
      { load: 'light', rate: 50 },
    ];
    for (const { load, rate, connections } of loads) {
      for (const target of targets.filter((t) => t.kind !== 'floor-tx')) {
        results.steady.push({ load, connections, ...(await steady(target, rate, opts, log, connections)) });
      }
    }
  } finally {
    for (const target of targets) {
      const rss = target.rss.stop();
      const exit = await target.stop();
      results.rss[target.kind] = {
        idleRssBytes: target.idleRssBytes,
        ...rss,
        exitCode: exit,
        warnings: target.warnings,
      };
      if (exit !== 0) {
        log(`ingest: ${target.kind} exited ${exit}:\n${target.output(20)}`);
      }
      if (target.redisRss) {
        results.rss['redis-server (bullmq runs)'] = {
          idleRssBytes: target.redisIdleRssBytes,
          ...target.redisRss.stop(),
        };
      }
      if (target.queue) {
        results.bullmqJobsLeft = await redis.backlog(target.queue.name).catch(() => undefined);
        await redis.dropQueue(target.queue.name);
      }
      await server.dropDatabase(target.db.name);
    }
    if (redis) {
      await redis.close();
    }
  }
  return results;
}

async function measure(server, target, connections, opts, log) {
  const warm = eventFactory(`w${connections}${target.kind.replace('-', '')}`);
  await fire({ url: target.url, connections, duration: opts.warmup, factory: warm, secret: WEBHOOK_SECRET });
  await target.drained({ timeoutMs: 300_000 });

  const factory = eventFactory(`m${connections}${target.kind.replace('-', '')}`);
  const rss = new RssSampler(target.pid);
  const backends = await new BackendCpuWindow(server, target.db.name).begin();
  const redisRss = target.redis && target.redis.pid ? new RssSampler(target.redis.pid) : undefined;
  const redisCpuBefore = target.redis ? target.redis.cpuSeconds() : Number.NaN;
  const failedBefore = target.queue ? (await target.redis.backlog(target.queue.name)).failed : 0;
  const cpu = new CpuWindow([target.pid]);
  const load = await fire({ url: target.url, connections, duration: opts.duration, factory, secret: WEBHOOK_SECRET });
  const result = figures(load);
  const busy = cpu.end();
  const tailCpu = new CpuWindow([target.pid]);
  // Everything acknowledged must also be handled: the run ends when the queue is empty.
  const tailSeconds = await target.drained({ timeoutMs: 600_000, intervalMs: 50 });
  const tail = tailCpu.end();
  const backendCpu = await backends.end();
  const redisCpuSeconds = target.redis ? target.redis.cpuSeconds() - redisCpuBefore : Number.NaN;
  const memory = rss.stop();
  const redisMemory = redisRss ? redisRss.stop() : undefined;
  const failedJobs = target.queue ? (await target.redis.backlog(target.queue.name)).failed - failedBefore : 0;
  const db = await withClient(target.db.url, async (c) => {
    const { rows } = await c.query(
      `SELECT count(*)::int AS stored,
              count(*) FILTER (WHERE status = 'processed')::int AS processed,
              (SELECT count(*)::int FROM subscriptions WHERE last_event_id LIKE $1) AS subscriptions
         FROM subscription_events WHERE stripe_event_id LIKE $1`,
      [factory.pattern],
    );
    return { ...rows[0], acknowledgedProcessed: await processedOf(c, load.acknowledged) };
  });
  const targetCpu = busy.pidCpuSeconds[0] + tail.pidCpuSeconds[0];
  const row = {
    target: target.kind,
    connections,
    ...result,
    tailSeconds,
    stored: db.stored,
    processed: db.processed,
    subscriptions: db.subscriptions,
    // By event id: every request answered 200 (autocannon leaves out those in flight when it stops)
    acknowledged: load.acknowledged.length,
    acknowledgedProcessed: db.acknowledgedProcessed,
    sent: factory.count,
    // The whole job: acknowledged AND handled. The floor handles as it goes; the service may queue.
    jobsPerSecond: db.processed / (result.durationSeconds + tailSeconds),
    targetCpuMsPerEvent: db.stored ? (1000 * targetCpu) / db.stored : Number.NaN,
    postgresCpuMsPerEvent: db.stored ? (1000 * backendCpu.cpuSeconds) / db.stored : Number.NaN,
    redisCpuMsPerEvent: db.stored ? (1000 * redisCpuSeconds) / db.stored : Number.NaN,
    targetCpuPercent: (100 * busy.pidCpuSeconds[0]) / busy.wallSeconds,
    loadGeneratorCpuPercent: (100 * busy.loadGeneratorCpuSeconds) / busy.wallSeconds,
    machineBusyPercent: busy.machineBusyPercent,
    machineIowaitPercent: busy.machineIowaitPercent,
    peakRssBytes: memory.peakRssBytes,
    redisPeakRssBytes: redisMemory ? redisMemory.peakRssBytes : undefined,
    failedJobs: target.queue ? failedJobs : undefined,
  };
  if (
    db.stored < result.ok ||
    db.processed !== db.stored ||
    db.subscriptions !== db.stored ||
    db.acknowledgedProcessed !== load.acknowledged.length ||
    failedJobs > 0
  ) {
    row.problem =
      `${result.ok} acknowledged, ${db.stored} stored, ${db.processed} processed, ${db.subscriptions} subscriptions, ` +
      `${db.acknowledgedProcessed} of the ${load.acknowledged.length} acknowledged ids processed` +
      (failedJobs > 0 ? `, ${failedJobs} jobs failed for good` : '');
    log(`ingest: WARNING ${target.kind} c=${connections}: ${row.problem}`);
  }
  log(
    `ingest: ${target.kind.padEnd(8)} c=${String(connections).padStart(2)} ${num(row.rps)} req/s, ` +
      `p99 ${ms(row.latencyMs.p99)} ms, errors ${row.errors + row.non2xx + row.timeouts}, tail ${tailSeconds.toFixed(1)} s`,
  );
  return row;
}

/** How many of these event ids are stored and processed. */
async function processedOf(client, ids) {
  const { rows } = await client.query(
    `SELECT count(*)::int AS n FROM subscription_events WHERE stripe_event_id = ANY($1::text[]) AND status = 'processed'`,
    [ids],
  );
  return rows[0].n;
}

async function steady(target, rate, opts, log, connections = STEADY_CONNECTIONS) {
  const factory = eventFactory(`s${target.kind.replace('-', '')}`);
  const rss = new RssSampler(target.pid);
  const cpu = new CpuWindow([target.pid]);
  const load = await steadyLoad({
    url: target.url,
    rate,
    seconds: opts.steadyDuration,
    connections,
    factory,
    secret: WEBHOOK_SECRET,
  });
  const usage = cpu.end();
  // What is left to handle when the load stops (the backlog; BullMQ's lives in Redis).
  const backlog = await withClient(target.db.url, async (c) =>
    target.kind === 'bullmq' ? null : (await c.query('SELECT count(*)::int AS n FROM webhook_retry_queue')).rows[0].n,
  );
  const result = {
    backlogAtEnd: backlog,
    rps: load.achievedRate,
    ok: load.ok,
    errors: load.errors,
    non2xx: load.non2xx,
    timeouts: 0,
    unexpected: load.unexpected,
    latencyMs: load.latencyMs,
    targetCpuPercent: (100 * usage.pidCpuSeconds[0]) / usage.wallSeconds,
    machineBusyPercent: usage.machineBusyPercent,
  };
  await target.drained({ timeoutMs: 300_000 });
  const memory = rss.stop();
  const handled = await withClient(target.db.url, async (c) => {
    const { rows } = await c.query(
      `SELECT count(*)::int AS n,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
              max(ms) AS max
         FROM (SELECT extract(epoch FROM processed_at - received_at) * 1000 AS ms
                 FROM subscription_events WHERE stripe_event_id LIKE $1 AND processed_at IS NOT NULL) t`,
      [factory.pattern],
    );
    return { ...rows[0], acknowledgedProcessed: await processedOf(c, load.acknowledged) };
  });
  const row = {
    target: target.kind,
    rate,
    connections,
    ...result,
    handledMs: { n: handled.n, p50: Number(handled.p50), p99: Number(handled.p99), max: Number(handled.max) },
    acknowledged: load.acknowledged.length,
    acknowledgedProcessed: handled.acknowledgedProcessed,
    peakRssBytes: memory.peakRssBytes,
  };
  if (row.acknowledgedProcessed !== row.acknowledged) {
    row.problem = `${row.acknowledgedProcessed} of the ${row.acknowledged} acknowledged events processed`;
    log(`ingest: WARNING steady ${target.kind} at ${rate}/s: ${row.problem}`);
  }
  log(
    `ingest: steady ${target.kind} at ${rate}/s: ack p99 ${ms(row.latencyMs.p99)} ms, ` +
      `handled p50 ${ms(row.handledMs.p50)} / p99 ${ms(row.handledMs.p99)} ms`,
  );
  return row;
}

function report(results) {
  const out = [];
  // With several rounds, the ratios compare each target's best round (background load only slows).
  const byLevel = new Map();
  for (const r of results.levels) {
    const key = `${r.target}:${r.connections}`;
    if (!byLevel.has(key) || byLevel.get(key).jobsPerSecond < r.jobsPerSecond) {
      byLevel.set(key, r);
    }
  }
  out.push(
    table(
      'Ingest: unique signed customer.subscription.updated events (6.2 KB), keep-alive, 1 request in flight per connection',
      [
        'conn',
        'target',
        'round',
        'req/s',
        'p50 ms',
        'p99 ms',
        'max ms',
        'errors',
        'non-2xx',
        'acked',
        'tail s',
        'handled/s',
        'CPU ms/event',
        'PG CPU ms/event',
        'Redis CPU ms/event',
        'target CPU',
        'loadgen CPU',
        'machine busy',
        'peak RSS MB',
      ],
      results.levels.map((r) => [
        r.connections,
        r.target,
        r.round,
        num(r.rps),
        ms(r.latencyMs.p50),
        ms(r.latencyMs.p99),
        ms(r.latencyMs.max),
        num(r.errors + r.timeouts),
        num(r.non2xx),
        num(r.ok),
        num(r.tailSeconds, 1),
        num(r.jobsPerSecond),
        num(r.targetCpuMsPerEvent, 2),
        num(r.postgresCpuMsPerEvent, 2),
        num(r.redisCpuMsPerEvent, 2),
        `${num(r.targetCpuPercent)}%`,
        `${num(r.loadGeneratorCpuPercent)}%`,
        `${num(r.machineBusyPercent)}%`,
        mb(r.peakRssBytes),
      ]),
    ),
  );
  const ratios = [];
  for (const c of [...new Set(results.levels.map((r) => r.connections))]) {
    const s = byLevel.get(`service:${c}`);
    const f = byLevel.get(`floor:${c}`);
    const tx = byLevel.get(`floor-tx:${c}`);
    if (s && f) {
      // The same ratios within each round (service and floor measured back to back).
      const rounds = [...new Set(results.levels.map((r) => r.round))].map((round) => {
        const rs = results.levels.find((r) => r.target === 'service' && r.connections === c && r.round === round);
        const rf = results.levels.find((r) => r.target === 'floor' && r.connections === c && r.round === round);
        return rs && rf ? [rs.rps / rf.rps, rs.jobsPerSecond / rf.jobsPerSecond] : undefined;
      });
      const list = (i) =>
        rounds
          .filter(Boolean)
          .map((x) => num(x[i], 2))
          .join(', ');
      // The median of the per-round ratios (each round alternates the targets back to back).
      const median = (i) => {
        const xs = rounds
          .filter(Boolean)
          .map((x) => x[i])
          .sort((a, b) => a - b);
        const mid = Math.floor(xs.length / 2);
        return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
      };
      ratios.push([
        c,
        num(s.rps),
        num(f.rps),
        `${num(s.rps / f.rps, 2)}x`,
        list(0),
        `${num(median(0), 2)}x`,
        `${num(s.jobsPerSecond / f.jobsPerSecond, 2)}x`,
        list(1),
        `${num(median(1), 2)}x`,
        tx ? num(tx.rps) : '-',
        tx ? `${num(s.rps / tx.rps, 2)}x` : '-',
        `${num(s.latencyMs.p99 / f.latencyMs.p99, 1)}x`,
      ]);
    }
  }
  out.push(
    table(
      'Ingest: service / floor, best round of each, and the median of the per-round ratios (targets: handled ≥ 1.0x, acks ≥ 1.2x)',
      [
        'conn',
        'service req/s',
        'floor req/s',
        'ratio (acks)',
        'per round',
        'median',
        'ratio (handled/s)',
        'per round',
        'median',
        'floor-tx req/s',
        'ratio to tx',
        'p99 service/floor',
      ],
      ratios,
    ),
  );
  const bullmqRows = [];
  for (const c of [...new Set(results.levels.map((r) => r.connections))]) {
    const b = byLevel.get(`bullmq:${c}`);
    const s = byLevel.get(`service:${c}`);
    const f = byLevel.get(`floor:${c}`);
    if (b) {
      const cpu = b.targetCpuMsPerEvent + b.postgresCpuMsPerEvent + (b.redisCpuMsPerEvent || 0);
      bullmqRows.push([
        c,
        num(b.rps),
        num(b.jobsPerSecond),
        s ? `${num(s.rps / b.rps, 2)}x` : '-',
        s ? `${num(s.jobsPerSecond / b.jobsPerSecond, 2)}x` : '-',
        f ? `${num(f.jobsPerSecond / b.jobsPerSecond, 2)}x` : '-',
        `${ms(b.latencyMs.p50)} / ${ms(b.latencyMs.p99)}`,
        num(b.tailSeconds, 1),
        `${num(b.targetCpuMsPerEvent, 2)} + ${num(b.postgresCpuMsPerEvent, 2)} + ${num(b.redisCpuMsPerEvent, 2)} = ${num(cpu, 2)}`,
      ]);
    }
  }
  if (bullmqRows.length) {
    out.push(
      table(
        'Ingest: the BullMQ build (acknowledges once the job is in Redis), best round of each',
        [
          'conn',
          'bullmq req/s',
          'bullmq handled/s',
          'service ÷ bullmq (acks)',
          'service ÷ bullmq (handled/s)',
          'floor ÷ bullmq (handled/s)',
          'bullmq p50 / p99 ms',
          'tail s',
          'CPU ms/event: node + PG + Redis',
        ],
        bullmqRows,
      ),
    );
  }
  if (results.skipped && results.skipped.bullmq) {
    out.push(`\nThe bullmq target was skipped: ${results.skipped.bullmq}`);
  }
  out.push(
    table(
      `Steady open-loop load at a fixed rate, ≤ ${STEADY_CONNECTIONS} keep-alive connections (overload: as many as the peak's) (ack: from the time each request was due to its response; handled: processed_at − received_at)`,
      [
        'load',
        'target',
        'rate/s',
        'achieved',
        'ack p50',
        'ack p99',
        'ack max',
        'handled p50',
        'handled p99',
        'handled max',
        'backlog at end',
        'errors',
        'target CPU',
        'machine busy',
      ],
      results.steady.map((r) => [
        r.load,
        r.target,
        num(r.rate),
        num(r.rps),
        ms(r.latencyMs.p50),
        ms(r.latencyMs.p99),
        ms(r.latencyMs.max),
        ms(r.handledMs.p50),
        ms(r.handledMs.p99),
        ms(r.handledMs.max),
        r.backlogAtEnd === null || r.backlogAtEnd === undefined ? '-' : num(r.backlogAtEnd),
        num(r.errors + r.non2xx + r.timeouts),
        `${num(r.targetCpuPercent)}%`,
        `${num(r.machineBusyPercent)}%`,
      ]),
    ),
  );
  out.push(
    table(
      'Memory during the ingest benchmark (sampled every 100 ms from /proc; target ≤ 250 MB)',
      ['process', 'RSS when ready MB', 'peak VmRSS MB', 'VmHWM MB', 'samples', 'exit', 'warn/error log lines'],
      Object.entries(results.rss).map(([k, v]) => [
        k,
        mb(v.idleRssBytes),
        mb(v.peakRssBytes),
        mb(v.vmHwmBytes),
        num(v.samples),
        v.exitCode === undefined ? '-' : String(v.exitCode),
        num(v.warnings),
      ]),
    ),
  );
  return out.join('\n');
}

module.exports = { ingest, report };
