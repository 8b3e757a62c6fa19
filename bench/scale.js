'use strict';

const { startService, RssSampler, ADMIN_TOKEN } = require('./lib/processes');
const { withClient } = require('./lib/db');
const { insertEvents, enqueuePending } = require('./lib/seed');
const { summarise, num, ms, mb, table } = require('./lib/stats');

/** The claim statement of QueueRepository.claimDue, from the build (npm run bench builds first). */
const { CLAIM_DUE_SQL: CLAIM_SQL } = require('../dist/src/queue/claim-sql');

const DEAD_TYPES = ['customer.subscription.updated', 'invoice.paid', 'invoice.payment_failed', 'customer.updated'];

/**
 * Scale check: with M processed events, D open dead letters (events `dead`) and 1,000 queued events
 * in the tables, the latency of the claim query (run directly, each claim rolled back so that every
 * run sees the same queue), and of GET /health/webhooks and GET /admin/dead-letters (first page and a
 * page deep via next_cursor). Routes that answer 404 are skipped (not in this build yet).
 */
async function scale(ctx) {
  const { server, opts, log } = ctx;
  const db = await server.freshDatabase('scale');
  const out = {
    processedEvents: opts.scaleEvents,
    deadLetters: opts.scaleDead,
    due: opts.scaleDue,
    claim: [],
    routes: [],
  };
  let service;
  try {
    const t0 = Date.now();
    await withClient(db.url, async (c) => {
      const spacing = (29 * 86_400) / opts.scaleEvents; // spread over 29 days: retention (30) prunes none
      await insertEvents(c, {
        n: opts.scaleEvents,
        tag: 'p',
        status: 'processed',
        attempts: '1',
        receivedAt: `now() - (${opts.scaleEvents} - i) * interval '${spacing.toFixed(6)} seconds'`,
        processedAt: `now() - (${opts.scaleEvents} - i) * interval '${spacing.toFixed(6)} seconds' + interval '40 milliseconds'`,
        onChunk: (to) => to % 200_000 === 0 && log(`scale: ${num(to)} processed events inserted`),
      });
      const deadSpacing = (20 * 86_400) / opts.scaleDead;
      await insertEvents(c, {
        n: opts.scaleDead,
        tag: 'x',
        status: 'dead',
        attempts: '10',
        lastError: `'Error: upstream answered 503 (attempt 10 of 10) while applying the event'`,
        eventType: `(ARRAY[${DEAD_TYPES.map((t) => `'${t}'`).join(',')}])[1 + i % ${DEAD_TYPES.length}]`,
        receivedAt: `now() - (${opts.scaleDead} - i) * interval '${deadSpacing.toFixed(6)} seconds' - interval '9 hours'`,
      });
      await c.query(
        `INSERT INTO webhook_dead_letter_queue
           (event_id, stripe_event_id, event_type, retry_count, error, original_timestamp, created_at)
         SELECT id, stripe_event_id, event_type, attempts, last_error, event_created_at, received_at + interval '9 hours'
           FROM subscription_events WHERE status = 'dead'`,
      );
      await insertEvents(c, { n: opts.scaleDue, tag: 'q', receivedAt: `now() - interval '1 second' * i` });
      await enqueuePending(c, 'q', `now() - random() * interval '10 minutes'`);
      await c.query('VACUUM ANALYZE');
      const sizes = await c.query(
        `SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) AS size
           FROM pg_class WHERE relname IN ('subscription_events', 'webhook_retry_queue', 'webhook_dead_letter_queue')`,
      );
      out.sizes = Object.fromEntries(sizes.rows.map((r) => [r.relname, r.size]));
    });
    out.seedSeconds = (Date.now() - t0) / 1000;
    log(`scale: seeded in ${out.seedSeconds.toFixed(0)} s (${JSON.stringify(out.sizes)})`);

    // The claim query, as the worker runs it (limit = free slots, at most WORKER_BATCH_SIZE).
    await withClient(db.url, async (c) => {
      for (const limit of [5, 100]) {
        const times = [];
        for (let i = 0; i < opts.scaleRequests; i++) {
          await c.query('BEGIN');
          const t = process.hrtime.bigint();
          const { rowCount } = await c.query(CLAIM_SQL, [limit, 'bench:claim', 35_000]);
          times.push(Number(process.hrtime.bigint() - t) / 1e6);
          await c.query('ROLLBACK');
          if (rowCount !== limit) {
            throw new Error(`claim returned ${rowCount} rows, expected ${limit}`);
          }
        }
        await c.query('VACUUM webhook_retry_queue');
        out.claim.push({ limit, ...summarise(times) });
      }
      await c.query('BEGIN');
      const plan = await c.query(`EXPLAIN (ANALYZE, BUFFERS) ${CLAIM_SQL}`, [100, 'bench:claim', 35_000]);
      await c.query('ROLLBACK');
      out.claimPlan = plan.rows.map((r) => r['QUERY PLAN']).join('\n');
      // From here the queued rows are retries not yet due, so the service leaves them alone and
      // /health/webhooks sees pending = pending_retries = 1,000.
      await c.query(
        `UPDATE webhook_retry_queue SET attempts = 1, last_error = 'Error: timeout', next_retry_at = now() + interval '1 day'`,
      );
      await c.query(`UPDATE subscription_events SET attempts = 1 WHERE status = 'pending'`);
      await c.query('VACUUM ANALYZE webhook_retry_queue');
    });
    log(`scale: claim p99 ${out.claim.map((r) => `${ms(r.p99)} ms (limit ${r.limit})`).join(', ')}`);

    service = await startService(db.url);
    const rss = new RssSampler(service.pid);
    await measureRoutes(service.url, opts, out);
    out.rss = rss.stop();
  } finally {
    if (service) {
      out.exitCode = await service.stop();
    }
    await server.dropDatabase(db.name);
  }
  for (const r of out.routes) {
    log(
      r.skipped
        ? `scale: ${r.name}: SKIPPED, ${r.skipped} (${r.body}); run again once it lands`
        : `scale: ${r.name}: p50 ${ms(r.p50)} / p99 ${ms(r.p99)} ms`,
    );
  }
  return out;
}

/** Times the HTTP routes of the scale check against `base` (the service), adding to `out.routes`. */
async function measureRoutes(base, opts, out) {
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };

  out.routes.push(await timeRoute('GET /health/ready (baseline: SELECT 1)', `${base}/health/ready`, {}, opts));

  const health = await timeRoute('GET /health/webhooks', `${base}/health/webhooks`, {}, opts, {
    pauseMs: 30, // 200 requests over more than 5 s: a figure cached for 5 s is recomputed at least once
    check: (status, body) =>
      (status === 200 || status === 503) &&
      body &&
      body.info &&
      body.info.webhooks &&
      ['pending', 'pending_retries', 'dlq_items', 'oldest_pending_age_seconds'].every(
        (k) => typeof body.info.webhooks[k] === 'number',
      ),
  });
  out.routes.push(health);

  const listCheck = (status, body) => status === 200 && body && Array.isArray(body.items) && 'next_cursor' in body;
  const first = await timeRoute(
    'GET /admin/dead-letters?limit=50 (first page)',
    `${base}/admin/dead-letters?limit=50`,
    auth,
    opts,
    { check: listCheck },
  );
  out.routes.push(first);
  if (!first.skipped && first.ok) {
    // Walk next_cursor to a deep page, then time that page.
    let url = `${base}/admin/dead-letters?limit=50`;
    const walk = [];
    let pages = 0;
    for (; pages < opts.scaleDeepPages; pages++) {
      const t = process.hrtime.bigint();
      const response = await fetch(url, { headers: auth });
      const body = await response.json();
      walk.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (response.status !== 200 || !body.next_cursor) {
        break;
      }
      url = `${base}/admin/dead-letters?limit=50&cursor=${encodeURIComponent(body.next_cursor)}`;
    }
    out.deepWalk = { pages, ...summarise(walk) };
    out.routes.push(
      await timeRoute(
        `GET /admin/dead-letters?limit=50&cursor=… (page ${pages + 1}, ${num(pages * 50)} items in)`,
        url,
        auth,
        opts,
        { check: listCheck },
      ),
    );
    out.routes.push(
      await timeRoute(
        'GET /admin/dead-letters?event_type=invoice.paid&limit=50',
        `${base}/admin/dead-letters?event_type=invoice.paid&limit=50`,
        auth,
        opts,
        { check: listCheck },
      ),
    );
  }
  const ids = Array.from({ length: opts.scaleRequests }, (_, i) => `evt_p_${1 + ((i * 7919) % opts.scaleEvents)}`);
  out.routes.push(
    await timeRoute(
      'GET /admin/events/:id (baseline: one indexed lookup)',
      (i) => `${base}/admin/events/${ids[i]}`,
      auth,
      opts,
      {
        check: (status, body) => status === 200 && body.status === 'processed',
      },
    ),
  );
}

/**
 * Times `opts.scaleRequests` sequential requests on one keep-alive connection. A route that answers
 * 404 is reported as skipped (the route is not in this build); `check` validates the response shape.
 */
async function timeRoute(name, url, headers, opts, { pauseMs = 0, check } = {}) {
  const urlOf = typeof url === 'function' ? url : () => url;
  const probe = await fetch(urlOf(0), { headers });
  const probeText = await probe.text();
  if (probe.status === 404) {
    return { name, skipped: 'answered 404: the route is not in this build yet', body: probeText.slice(0, 200) };
  }
  let sample;
  try {
    sample = JSON.parse(probeText);
  } catch {
    sample = probeText.slice(0, 200);
  }
  const times = [];
  const statuses = {};
  let bad = 0;
  for (let i = 0; i < opts.scaleRequests; i++) {
    const t = process.hrtime.bigint();
    const response = await fetch(urlOf(i), { headers });
    const text = await response.text();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
    statuses[response.status] = (statuses[response.status] || 0) + 1;
    if (check) {
      let body;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      if (!check(response.status, body)) {
        bad++;
      }
    }
    if (pauseMs) {
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  }
  return { name, ...summarise(times), statuses, unexpected: bad, ok: bad === 0, sample: truncateSample(sample) };
}

function truncateSample(sample) {
  if (sample && Array.isArray(sample.items)) {
    return { ...sample, items: sample.items.slice(0, 1), itemsOnPage: sample.items.length };
  }
  return sample;
}

function report(out) {
  const lines = [];
  lines.push(
    table(
      `Scale check: ${num(out.processedEvents)} processed events, ${num(out.deadLetters)} open dead letters, ${num(out.due)} queued (target ≤ 50 ms)`,
      ['what', 'n', 'p50 ms', 'p99 ms', 'max ms', 'note'],
      [
        ...out.claim.map((c) => [
          `claim query (claimDue), LIMIT ${c.limit}, ${num(out.due)} due rows`,
          c.n,
          ms(c.p50),
          ms(c.p99),
          ms(c.max),
          'pg, rolled back',
        ]),
        ...out.routes.map((r) =>
          r.skipped
            ? [r.name, 0, '-', '-', '-', `SKIPPED: ${r.skipped}`]
            : [
                r.name,
                r.n,
                ms(r.p50),
                ms(r.p99),
                ms(r.max),
                `${Object.entries(r.statuses)
                  .map(([s, k]) => `${k}×${s}`)
                  .join(' ')}${r.unexpected ? `, ${r.unexpected} not in the documented shape` : ''}`,
              ],
        ),
        ...(out.deepWalk
          ? [
              [
                `walk of ${out.deepWalk.pages} pages via next_cursor`,
                out.deepWalk.n,
                ms(out.deepWalk.p50),
                ms(out.deepWalk.p99),
                ms(out.deepWalk.max),
                'one request per page',
              ],
            ]
          : []),
      ],
    ),
  );
  lines.push(
    `Seeded in ${num(out.seedSeconds)} s; sizes ${JSON.stringify(out.sizes)}; service peak RSS ${mb(out.rss && out.rss.peakRssBytes)} MB.`,
  );
  return lines.join('\n');
}

module.exports = { scale, report, measureRoutes, CLAIM_SQL };
