'use strict';

/**
 * A BullMQ-on-Redis build of the ingest benchmark's job, the architecture many Stripe pipelines
 * use: acknowledge once the job is in Redis, store and apply it in a worker. Same front as the
 * floor (bench/lib/webhook-job.js), same tables (migrated by the service's migrations).
 *
 *   POST /webhooks/stripe
 *     1. read the raw body (413 above 1 MiB), check Stripe-Signature with stripe-node's verifier
 *        and the same secret(s) and tolerance (past and future) → 400 invalid_signature
 *     2. parse; needs id, type, data.object → 400 invalid_payload
 *     3. queue.add() the raw body and the time it arrived (job id = the Stripe event id, so that a
 *        redelivery still waiting in Redis is not queued twice) → 200 {"received":true} once Redis
 *        has acknowledged the job; 503 unavailable when Redis cannot take it. Nothing is in
 *        PostgreSQL yet: there is no {"duplicate":true}, that is only known when the worker stores it.
 *   Worker (same process; BullMQ retries a failed job with exponential backoff):
 *     4. in ONE statement: insert the event row (a known Stripe event id inserts nothing and applies
 *        nothing), the customer row and the newer-wins subscription upsert (the floor's SQL); the
 *        row is inserted already `processed` (a sibling statement could not see it to update it).
 *        Other event types are stored `ignored`, as the floor stores them.
 *   GET /health/ready → 200 once PostgreSQL and Redis answer.
 *
 * Environment: PORT, DATABASE_URL, STRIPE_WEBHOOK_SECRET (comma-separated), DB_POOL_SIZE (10),
 * STRIPE_WEBHOOK_TOLERANCE_SECONDS (300), REDIS_URL (redis://127.0.0.1:6379), BULLMQ_QUEUE
 * (stripe-webhooks), BULLMQ_PREFIX (bull), BULLMQ_CONCURRENCY (16). Not a product: no logging.
 */

const { Queue, Worker } = require('bullmq');
const IORedis = require('ioredis');
const { Pool } = require('pg');
const {
  readConfig,
  createWebhookServer,
  send,
  fail,
  eventParams,
  subscriptionParams,
  SUBSCRIPTION_TYPES,
  SUBSCRIPTION_COLUMNS,
  SUBSCRIPTION_VALUES,
  SUBSCRIPTION_UPSERT_TAIL,
} = require('./lib/webhook-job');

const config = readConfig('bullmq', 3200);
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const QUEUE_NAME = process.env.BULLMQ_QUEUE || 'stripe-webhooks';
const PREFIX = process.env.BULLMQ_PREFIX || 'bull';
// More than the pool's connections: a job holds one only for its statement and spends the rest of
// its turn in Redis (completion and the next fetch); the pool still caps PostgreSQL's share.
const CONCURRENCY = Number(process.env.BULLMQ_CONCURRENCY || 16);

const pool = new Pool({ connectionString: config.databaseUrl, max: config.poolSize });
pool.on('error', () => undefined); // an idle client's connection dropped: the pool replaces it

// The producer fails fast when Redis is away (503 at once) instead of queueing commands in memory
// behind an acknowledgement it cannot give yet.
const producer = new IORedis(REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
producer.on('error', () => undefined); // reconnects by itself; adds fail meanwhile
const queue = new Queue(QUEUE_NAME, {
  connection: producer,
  prefix: PREFIX,
  defaultJobOptions: {
    removeOnComplete: true,
    removeOnFail: false, // kept for inspection; the bench counts them
    attempts: 8,
    backoff: { type: 'exponential', delay: 500 },
  },
});
queue.on('error', () => undefined);

let accepting = 0;
let failures = 0;

// --- SQL -----------------------------------------------------------------------------------------

// $1…$22 the subscription (as the floor), $23…$29 the event ($23 id … $29 created, as the floor's
// event row), $30 when the request arrived (ms since the epoch), $31 the attempt.
const STORE_AND_APPLY = `
  WITH e AS (
    INSERT INTO subscription_events (stripe_event_id, event_type, status, payload, livemode, api_version,
                                     event_created_at, received_at, attempts, processed_at)
    VALUES ($23, $24, $25, $26::jsonb, $27, $28, to_timestamp($29), to_timestamp($30::float8 / 1000), $31, now())
    ON CONFLICT (stripe_event_id) DO NOTHING
    RETURNING id
  ), c AS (
    INSERT INTO customers (stripe_customer_id, user_id) SELECT $2::text, $4::text FROM e
    ON CONFLICT (stripe_customer_id) DO NOTHING
  ), s AS (
    INSERT INTO subscriptions ${SUBSCRIPTION_COLUMNS} SELECT ${SUBSCRIPTION_VALUES} FROM e
    ${SUBSCRIPTION_UPSERT_TAIL}
  )
  SELECT id FROM e`;

const STORE_IGNORED = `
  INSERT INTO subscription_events (stripe_event_id, event_type, status, payload, livemode, api_version,
                                   event_created_at, received_at, processed_at)
  VALUES ($1, $2, $3, $4::jsonb, $5, $6, to_timestamp($7), to_timestamp($8::float8 / 1000), now())
  ON CONFLICT (stripe_event_id) DO NOTHING`;

// --- the job -------------------------------------------------------------------------------------

// BullMQ refuses custom ids that are integers or contain ':'; such an event is queued under a
// generated id (the worker's insert still skips a duplicate).
function jobId(eventId) {
  return /^[A-Za-z]\w*$/.test(eventId) ? eventId : undefined;
}

async function accept(event, text, res) {
  accepting++;
  try {
    await queue.add(event.type, { payload: text, receivedAt: Date.now() }, { jobId: jobId(event.id) });
  } catch {
    return fail(res, 503, 'unavailable', 'The queue cannot take the event now.');
  } finally {
    accepting--;
  }
  send(res, 200, { received: true });
}

async function handle(job) {
  const { payload, receivedAt } = job.data;
  const event = JSON.parse(payload);
  if (SUBSCRIPTION_TYPES.has(event.type)) {
    await pool.query(STORE_AND_APPLY, [
      ...subscriptionParams(event),
      ...eventParams(event, payload, 'processed'),
      receivedAt,
      job.attemptsMade + 1,
    ]);
  } else {
    await pool.query(STORE_IGNORED, [...eventParams(event, payload, 'ignored'), receivedAt]);
  }
}

const worker = new Worker(QUEUE_NAME, handle, {
  connection: { url: REDIS_URL },
  prefix: PREFIX,
  concurrency: CONCURRENCY,
  autorun: false,
});
worker.on('error', () => undefined); // connection errors: the worker reconnects and goes on
worker.on('failed', (job, error) => {
  failures++;
  if (failures <= 5) {
    process.stderr.write(`bullmq: job ${job ? job.id : '?'} failed: ${error.message}\n`);
  }
});

const server = createWebhookServer({
  secrets: config.secrets,
  tolerance: config.tolerance,
  ready: () => Promise.all([pool.query('SELECT 1'), producer.ping()]),
  accept,
});
server.keepAliveTimeout = 5_000;

async function start() {
  await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
  worker.run().catch((error) => {
    process.stderr.write(`bullmq: worker stopped: ${error.message}\n`);
    process.exit(1);
  });
  server.listen(config.port, '127.0.0.1', () => {
    process.stderr.write(
      `bullmq listening on http://127.0.0.1:${config.port} (queue ${PREFIX}:${QUEUE_NAME}, concurrency ${CONCURRENCY})\n`,
    );
  });
}

let stopping = false;
async function stop() {
  if (stopping) {
    return;
  }
  stopping = true;
  server.close();
  server.closeIdleConnections();
  const deadline = Date.now() + 10_000;
  while (accepting > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  server.closeAllConnections();
  // The worker finishes the jobs it holds; what is still waiting stays in Redis for the next one.
  const forced = setTimeout(() => void worker.close(true), 10_000);
  await worker.close();
  clearTimeout(forced);
  await queue.close();
  await producer.quit();
  await pool.end();
  if (failures) {
    process.stderr.write(`bullmq: ${failures} failed attempts\n`);
  }
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());

start().catch((error) => {
  process.stderr.write(`bullmq: cannot start: ${error.message}\n`);
  process.exit(1);
});
