'use strict';

const { readFileSync } = require('node:fs');
const Module = require('node:module');
const { join } = require('node:path');
const { ROOT, withClient } = require('./lib/db');
const { startService, RssSampler, ADMIN_TOKEN } = require('./lib/processes');
const { num, mb, table } = require('./lib/stats');

const DAY = 24 * 3600;

/**
 * Backfill: N events (customer.created, each its own customer, over the last two days) in the local
 * fake of Stripe's API (test/support/fake-stripe.ts), none stored; one replica with a key pointed at
 * the fake runs POST /admin/reconcile over them. Measured: the run's duration (it lists N/100 pages,
 * so it should take about pages ÷ STRIPE_API_MAX_RPS), the time until every recovered event is
 * handled, the service's peak RSS (a page at a time, whatever N), and the busiest second of requests.
 */
async function backfill(ctx) {
  const { server, opts, log } = ctx;
  const runs = [];
  for (const n of opts.backfillN) {
    runs.push(await backfillOnce(server, n, opts.backfillRps, log));
  }
  return { runs };
}

async function backfillOnce(server, n, rps, log) {
  const { FakeStripe, busiestWindow } = loadFake();
  const fake = await FakeStripe.start();
  const db = await server.freshDatabase(`backfill_${n}`);
  let service;
  try {
    const now = Math.floor(Date.now() / 1000);
    fake.addEvents(customerEvents(n, now - 600, 2 * DAY));
    log(`backfill: ${num(n)} events in the fake; starting the service (STRIPE_API_MAX_RPS ${rps})`);
    service = await startService(db.url, {
      name: 'backfill',
      env: {
        STRIPE_API_KEY: fake.apiKey,
        STRIPE_API_BASE: fake.url,
        STRIPE_API_MAX_RPS: String(rps),
        RECONCILE_CRON: '0 0 1 1 *',
        RETRY_CRON: '* * * * * *',
      },
    });
    const sampler = new RssSampler(service.pid);
    const auth = { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' };
    const t0 = process.hrtime.bigint();
    const started = await fetch(`${service.url}/admin/reconcile`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ since: new Date((now - 2 * DAY - 3600) * 1000).toISOString() }),
    });
    if (started.status !== 202) {
      throw new Error(`backfill: POST /admin/reconcile answered ${started.status}: ${await started.text()}`);
    }
    const { run_id: runId } = await started.json();
    let run;
    let lastLog = Date.now();
    for (;;) {
      run = await (await fetch(`${service.url}/admin/reconcile/runs/${runId}`, { headers: auth })).json();
      if (run.status !== 'running') {
        break;
      }
      if (Date.now() - lastLog > 15_000) {
        log(`backfill: ${num(run.listed)} listed, ${num(run.recovered)} stored`);
        lastLog = Date.now();
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const runSeconds = (new Date(run.finished_at) - new Date(run.started_at)) / 1000;
    const listedAfterSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await withClient(db.url, async (c) => {
      for (;;) {
        const left = (await c.query('SELECT count(*)::int AS n FROM webhook_retry_queue')).rows[0].n;
        if (left === 0) {
          return;
        }
        if (Number(process.hrtime.bigint() - t0) / 1e9 > 1_800) {
          throw new Error(`backfill: ${left} events still queued after 1,800 s`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    });
    const handledSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const memory = sampler.stop();
    const stats = await withClient(db.url, async (c) => {
      const { rows } = await c.query(
        `SELECT count(*) FILTER (WHERE status = 'processed' AND source = 'reconcile')::int AS processed,
                (SELECT count(*)::int FROM customers) AS customers
           FROM subscription_events`,
      );
      return rows[0];
    });
    const requests = fake.requestsTo('/v1/events');
    const pages = Math.ceil(n / 100);
    const row = {
      n,
      rps,
      pages,
      requests: requests.length,
      expectedSeconds: pages / rps,
      runSeconds,
      listedAfterSeconds,
      handledSeconds,
      busiestSecond: busiestWindow(requests.map((r) => r.time)),
      listed: run.listed,
      recovered: run.recovered,
      status: run.status,
      processed: stats.processed,
      customers: stats.customers,
      peakRssBytes: memory.peakRssBytes,
      warnings: service.warnings,
    };
    if (run.status !== 'succeeded' || run.recovered !== n || stats.processed !== n) {
      row.problem = `run ${run.status} (${run.error}), ${run.recovered} stored, ${stats.processed} processed of ${n}`;
      log(`backfill: WARNING ${row.problem}`);
    }
    log(
      `backfill: ${num(n)} events, ${pages} pages at ${rps}/s: run ${runSeconds.toFixed(1)} s ` +
        `(pages ÷ rps = ${row.expectedSeconds.toFixed(1)} s), all handled after ${handledSeconds.toFixed(1)} s, ` +
        `peak RSS ${mb(memory.peakRssBytes)} MB`,
    );
    return row;
  } finally {
    if (service) {
      await service.stop();
    }
    await fake.close();
    await server.dropDatabase(db.name);
  }
}

/** `n` customer.created events shaped on the fixture, one customer each, spread over `span` seconds. */
function customerEvents(n, newest, span) {
  const template = readFileSync(join(ROOT, 'test', 'fixtures', 'events', 'customer.created.json'), 'utf8');
  const events = [];
  for (let i = 0; i < n; i++) {
    const event = JSON.parse(template);
    event.id = `evt_backfill_${String(i).padStart(8, '0')}`;
    event.created = newest - Math.floor((i * span) / Math.max(1, n - 1));
    event.data.object.id = `cus_backfill_${i}`;
    event.data.object.metadata = {};
    events.push(event);
  }
  return events;
}

/** The tests' fake of Stripe's API, compiled from its TypeScript source (bench/ runs plain Node.js). */
function loadFake() {
  const ts = require('typescript');
  const file = join(ROOT, 'test', 'support', 'fake-stripe.ts');
  const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
    fileName: file,
  });
  const compiled = new Module(file);
  compiled.filename = file;
  compiled.paths = Module._nodeModulePaths(join(ROOT, 'test', 'support'));
  compiled._compile(outputText, file);
  return compiled.exports;
}

function report(results) {
  return table(
    'Backfill: POST /admin/reconcile over N events held by the local fake of Stripe (100 a page), one replica, defaults otherwise',
    [
      'N',
      'pages',
      'max rps',
      'pages ÷ rps s',
      'run s',
      'run ÷ (pages ÷ rps)',
      'busiest second',
      'all handled s',
      'peak RSS MB',
      'all stored and processed',
    ],
    results.runs.map((r) => [
      num(r.n),
      num(r.pages),
      r.rps,
      num(r.expectedSeconds, 1),
      num(r.runSeconds, 1),
      num(r.runSeconds / r.expectedSeconds, 2),
      r.busiestSecond,
      num(r.handledSeconds, 1),
      mb(r.peakRssBytes),
      r.problem ? `NO: ${r.problem}` : 'yes',
    ]),
  );
}

module.exports = { backfill, report };
