'use strict';

/**
 * The FLOOR for the ingest benchmark: the service's whole job for a customer.subscription.* event,
 * done by the smallest program that can do it: node:http and pg, no framework, no logging.
 *
 *   POST /webhooks/stripe
 *     1. read the raw body (413 above 1 MiB), check Stripe-Signature with stripe-node's verifier
 *        and the same secret(s) and tolerance (past and future) as the service → 400 invalid_signature
 *     2. parse; needs id, type, data.object → 400 invalid_payload
 *     3. store the event row and its queue row in ONE transaction (same tables, migrated by the
 *        service's migrations) → 200 {"received":true} ({"duplicate":true} for a known id),
 *        503 unavailable when the database cannot take it
 *     4. after answering: apply the subscription (newer-wins upsert into `subscriptions`, as
 *        BillingRepository.upsertSubscription; the customer row as ensureCustomer), mark the event
 *        processed and delete its queue row, in a SECOND transaction.
 *   GET /health/ready → 200 once the database answers.
 *
 * FLOOR_STYLE=statement (default): each transaction is one SQL statement (data-modifying CTEs), one
 * round trip each: the least work PostgreSQL can be asked for. FLOOR_STYLE=transaction: BEGIN, one
 * statement per row, COMMIT, as most hand-written code would do it (4 + 6 round trips).
 *
 * Environment: PORT, DATABASE_URL, STRIPE_WEBHOOK_SECRET (comma-separated), DB_POOL_SIZE (10),
 * STRIPE_WEBHOOK_TOLERANCE_SECONDS (300), FLOOR_STYLE. Not a product: no retries, no worker.
 */

const { Pool } = require('pg');
const {
  readConfig,
  createWebhookServer,
  send,
  fail,
  eventParams: eventRowParams,
  subscriptionParams,
  SUBSCRIPTION_TYPES,
  EVENT_COLUMNS,
  EVENT_VALUES,
  SUBSCRIPTION_COLUMNS,
  SUBSCRIPTION_VALUES,
  SUBSCRIPTION_UPSERT_TAIL,
} = require('./lib/webhook-job');

const { port: PORT, databaseUrl, secrets: SECRETS, tolerance: TOLERANCE, poolSize } = readConfig('floor', 3100);
const STYLE = process.env.FLOOR_STYLE === 'transaction' ? 'transaction' : 'statement';
const LEASE_MS = 35_000; // the service's lease for HANDLER_TIMEOUT_MS=30000

const pool = new Pool({ connectionString: databaseUrl, max: poolSize });
pool.on('error', () => undefined); // an idle client's connection dropped: the pool replaces it

let applying = 0;
let applyErrors = 0;

// --- SQL -----------------------------------------------------------------------------------------

const INSERT_EVENT_AND_QUEUE = `
  WITH event AS (
    INSERT INTO subscription_events ${EVENT_COLUMNS} VALUES ${EVENT_VALUES}
    ON CONFLICT (stripe_event_id) DO NOTHING
    RETURNING id, status
  ), queued AS (
    INSERT INTO webhook_retry_queue (event_id, stripe_event_id, event_type, attempts, next_retry_at)
    SELECT id, $1, $2, 1, clock_timestamp() + $8 * interval '1 millisecond' FROM event WHERE status = 'pending'
  )
  SELECT id FROM event`;

const INSERT_EVENT = `
  INSERT INTO subscription_events ${EVENT_COLUMNS} VALUES ${EVENT_VALUES}
  ON CONFLICT (stripe_event_id) DO NOTHING
  RETURNING id`;
const INSERT_QUEUE = `
  INSERT INTO webhook_retry_queue (event_id, stripe_event_id, event_type, attempts, next_retry_at)
  VALUES ($1, $2, $3, 1, clock_timestamp() + $4 * interval '1 millisecond')`;

// One statement: the queue row goes, the customer and subscription are written, the event is done.
// $23 = the event's row id. Nothing is written unless this process still holds the queue row.
const APPLY_ONE_STATEMENT = `
  WITH q AS (
    DELETE FROM webhook_retry_queue WHERE event_id = $23 RETURNING event_id
  ), c AS (
    INSERT INTO customers (stripe_customer_id, user_id) SELECT $2::text, $4::text FROM q
    ON CONFLICT (stripe_customer_id) DO NOTHING
  ), s AS (
    INSERT INTO subscriptions ${SUBSCRIPTION_COLUMNS} SELECT ${SUBSCRIPTION_VALUES} FROM q
    ${SUBSCRIPTION_UPSERT_TAIL}
  )
  UPDATE subscription_events SET status = 'processed', attempts = 1, last_error = NULL, processed_at = now()
   WHERE id IN (SELECT event_id FROM q)`;

const DELETE_QUEUE = `DELETE FROM webhook_retry_queue WHERE event_id = $1 RETURNING event_id`;
const INSERT_CUSTOMER = `INSERT INTO customers (stripe_customer_id, user_id) VALUES ($1, $2)
  ON CONFLICT (stripe_customer_id) DO NOTHING`;
const UPSERT_SUBSCRIPTION = `INSERT INTO subscriptions ${SUBSCRIPTION_COLUMNS} VALUES (${SUBSCRIPTION_VALUES})
  ${SUBSCRIPTION_UPSERT_TAIL}`;
const COMPLETE_EVENT = `UPDATE subscription_events
  SET status = 'processed', attempts = 1, last_error = NULL, processed_at = now() WHERE id = $1`;

// --- the job -------------------------------------------------------------------------------------

async function store(event, raw) {
  const status = SUBSCRIPTION_TYPES.has(event.type) ? 'pending' : 'ignored';
  const eventParams = eventRowParams(event, raw, status);
  if (STYLE === 'statement') {
    const { rows } = await pool.query(INSERT_EVENT_AND_QUEUE, [...eventParams, LEASE_MS]);
    return rows.length ? { id: rows[0].id, status } : null;
  }
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query(INSERT_EVENT, eventParams);
    if (rows.length && status === 'pending') {
      await client.query(INSERT_QUEUE, [rows[0].id, event.id, event.type, LEASE_MS]);
    }
    await client.query('COMMIT');
    client.release();
    return rows.length ? { id: rows[0].id, status } : null;
  } catch (error) {
    client.release(error); // discard the connection: its transaction is not ours to reuse
    throw error;
  }
}

async function apply(event, eventRowId) {
  const params = subscriptionParams(event);
  if (STYLE === 'statement') {
    await pool.query(APPLY_ONE_STATEMENT, [...params, eventRowId]);
    return;
  }
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query(DELETE_QUEUE, [eventRowId]);
    if (rows.length) {
      await client.query(INSERT_CUSTOMER, [params[1], params[3]]);
      await client.query(UPSERT_SUBSCRIPTION, params);
      await client.query(COMPLETE_EVENT, [eventRowId]);
    }
    await client.query('COMMIT');
    client.release();
  } catch (error) {
    client.release(error);
    throw error;
  }
}

async function accept(event, text, res) {
  let stored;
  try {
    stored = await store(event, text);
  } catch {
    return fail(res, 503, 'unavailable', 'The database cannot take the event now.');
  }
  if (!stored) {
    return send(res, 200, { received: true, duplicate: true });
  }
  send(res, 200, { received: true });
  if (stored.status === 'pending') {
    applying++;
    apply(event, stored.id)
      .catch((error) => {
        applyErrors++;
        if (applyErrors <= 5) {
          process.stderr.write(`floor: apply failed for ${event.id}: ${error.message}\n`);
        }
      })
      .finally(() => applying--);
  }
}

const server = createWebhookServer({
  secrets: SECRETS,
  tolerance: TOLERANCE,
  ready: () => pool.query('SELECT 1'),
  accept,
});

server.keepAliveTimeout = 5_000;
server.listen(PORT, '127.0.0.1', () => {
  process.stderr.write(`floor (${STYLE}) listening on http://127.0.0.1:${PORT}\n`);
});

let stopping = false;
async function stop() {
  if (stopping) {
    return;
  }
  stopping = true;
  server.close();
  server.closeIdleConnections();
  const deadline = Date.now() + 10_000;
  while (applying > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  server.closeAllConnections();
  await pool.end();
  if (applyErrors) {
    process.stderr.write(`floor: ${applyErrors} apply errors\n`);
  }
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
