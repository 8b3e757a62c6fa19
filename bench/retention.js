'use strict';

const { startService, WEBHOOK_SECRET } = require('./lib/processes');
const { withClient } = require('./lib/db');
const { insertEvents } = require('./lib/seed');
const { eventFactory } = require('./lib/events');
const { steadyLoad } = require('./lib/steady');
const { num, ms, summarise, table } = require('./lib/stats');

/** How far ahead of the service's start the pruning run is scheduled (RETENTION_CRON), in seconds. */
const LEAD_SECONDS = 30;
const OLD = `processed_at < now() - interval '30 days'`;

/**
 * Retention at scale: N processed events older than EVENT_RETENTION_DAYS (30) and 100,000 recent
 * ones; the service starts with RETENTION_CRON set to fire a little later, while an open-loop
 * ingest load at a fixed rate runs before, during and after the pruning run. Reports how long the
 * run took (until no old event is left) and the acknowledgement latency in each phase.
 */
async function retention(ctx) {
  const { server, opts, log } = ctx;
  const db = await server.freshDatabase('retention');
  const out = { oldEvents: opts.retentionEvents, rate: opts.retentionRate, phases: [] };
  let service;
  try {
    await withClient(db.url, async (c) => {
      const t0 = Date.now();
      await insertEvents(c, {
        n: opts.retentionEvents,
        tag: 'old',
        status: 'processed',
        attempts: '1',
        receivedAt: `now() - interval '40 days' + i * interval '1 millisecond'`,
        processedAt: `now() - interval '40 days' + i * interval '1 millisecond'`,
        onChunk: (to) => to % 200_000 === 0 && log(`retention: ${num(to)} old events inserted`),
      });
      await insertEvents(c, {
        n: 100_000,
        tag: 'recent',
        status: 'processed',
        attempts: '1',
        receivedAt: `now() - interval '10 days' + i * interval '1 second'`,
        processedAt: `now() - interval '10 days' + i * interval '1 second'`,
      });
      await c.query('VACUUM ANALYZE subscription_events');
      // The seed's gigabytes are written out now, not by the checkpointer while latency is measured.
      await c.query('CHECKPOINT');
      out.seedSeconds = (Date.now() - t0) / 1000;
      out.tableBytes = Number((await c.query(`SELECT pg_total_relation_size('subscription_events') AS b`)).rows[0].b);
    });
    log(
      `retention: seeded in ${num(out.seedSeconds, 0)} s (subscription_events ${num(out.tableBytes / 2 ** 30, 2)} GiB)`,
    );

    const fireAt = new Date(Date.now() + LEAD_SECONDS * 1000);
    const cron = `${fireAt.getSeconds()} ${fireAt.getMinutes()} ${fireAt.getHours()} * * *`;
    service = await startService(db.url, { env: { RETENTION_CRON: cron } });
    const factory = eventFactory('rt');
    const load = (seconds) =>
      steadyLoad({
        url: service.url,
        rate: opts.retentionRate,
        seconds,
        connections: 32,
        factory,
        secret: WEBHOOK_SECRET,
      });

    // Before: until the run starts.
    const before = await load(Math.max(5, (fireAt.getTime() - Date.now()) / 1000 - 1));
    out.phases.push(phase('before', before));
    // During: in slices, until no old event is left.
    const started = Date.now();
    const during = [];
    let left = Infinity;
    while (left > 0 && Date.now() - started < 20 * 60_000) {
      during.push(await load(5));
      left = await withClient(db.url, async (c) =>
        Number((await c.query(`SELECT count(*) AS n FROM subscription_events WHERE ${OLD}`)).rows[0].n),
      );
      log(`retention: ${num(left)} old events left after ${num((Date.now() - started) / 1000, 0)} s`);
    }
    out.pruneSeconds = (Date.now() - started) / 1000;
    out.finished = left === 0;
    out.phases.push(phase('during', merge(during)));
    out.phases.push(phase('after', await load(10)));
    out.recentLeft = await withClient(db.url, async (c) =>
      Number(
        (await c.query(`SELECT count(*) AS n FROM subscription_events WHERE stripe_event_id LIKE 'evt\\_recent\\_%'`))
          .rows[0].n,
      ),
    );
    await service.stop();
    out.serviceExit = service.exitCode;
    return out;
  } finally {
    if (service) {
      await service.stop();
    }
  }
}

function phase(name, result) {
  return {
    name,
    sent: result.sent,
    ok: result.ok,
    errors: result.errors + result.non2xx,
    achievedRate: result.achievedRate,
    latencyMs: result.latencyMs,
  };
}

/** Several slices of one open-loop load, as one. */
function merge(results) {
  const latencies = results.flatMap((r) => r.rawLatencies);
  return {
    sent: results.reduce((a, r) => a + r.sent, 0),
    ok: results.reduce((a, r) => a + r.ok, 0),
    errors: results.reduce((a, r) => a + r.errors, 0),
    non2xx: results.reduce((a, r) => a + r.non2xx, 0),
    achievedRate: results.reduce((a, r) => a + r.achievedRate, 0) / Math.max(1, results.length),
    latencyMs: summarise(latencies),
  };
}

function report(r) {
  return [
    `Retention: ${num(r.oldEvents)} processed events older than 30 days (and 100,000 recent) pruned by the service while ` +
      `ingesting at ${num(r.rate)}/s; subscription_events ${num(r.tableBytes / 2 ** 30, 2)} GiB`,
    `pruning run: ${r.finished ? 'finished' : 'NOT finished'} in ${num(r.pruneSeconds, 0)} s ` +
      `(${num(r.oldEvents / r.pruneSeconds, 0)} events/s); recent events kept: ${num(r.recentLeft)}; service exit ${r.serviceExit}`,
    table(
      'Acknowledgements before, during and after the pruning run (open loop, 32 connections)',
      ['phase', 'sent', '200', 'errors', 'rate/s', 'ack p50 ms', 'ack p99 ms', 'ack max ms'],
      r.phases.map((p) => [
        p.name,
        num(p.sent),
        num(p.ok),
        num(p.errors),
        num(p.achievedRate),
        ms(p.latencyMs.p50),
        ms(p.latencyMs.p99),
        ms(p.latencyMs.max),
      ]),
    ),
  ].join('\n');
}

module.exports = { retention, report };
