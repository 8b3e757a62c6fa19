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

const http = require('node:http');
const { Pool } = require('pg');
const StripeModule = require('stripe');

const Stripe = StripeModule.default || StripeModule;
const PORT = Number(process.env.PORT || 3100);
const SECRETS = (process.env.STRIPE_WEBHOOK_SECRET || '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const TOLERANCE = Number(process.env.STRIPE_WEBHOOK_TOLERANCE_SECONDS || 300);
const MAX_BODY = 1_048_576;
const STYLE = process.env.FLOOR_STYLE === 'transaction' ? 'transaction' : 'statement';
const LEASE_MS = 35_000; // the service's lease for HANDLER_TIMEOUT_MS=30000
const SUBSCRIPTION_TYPES = new Set([
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
  'customer.subscription.paused',
  'customer.subscription.resumed',
  'customer.subscription.trial_will_end',
]);

if (SECRETS.length === 0 || !process.env.DATABASE_URL) {
  process.stderr.write('floor: STRIPE_WEBHOOK_SECRET and DATABASE_URL are required\n');
  process.exit(1);
}

const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.DB_POOL_SIZE || 10) });
pool.on('error', () => undefined); // an idle client's connection dropped: the pool replaces it

let applying = 0;
let applyErrors = 0;

// --- SQL -----------------------------------------------------------------------------------------

const EVENT_COLUMNS = `(stripe_event_id, event_type, status, payload, livemode, api_version, event_created_at, processed_at)`;
const EVENT_VALUES = `($1, $2, $3, $4::jsonb, $5, $6, to_timestamp($7), CASE WHEN $3 = 'ignored' THEN now() END)`;

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

// $1 stripe_subscription_id … $19 deleted, $20 last_event_created, $21 rank, $22 last_event_id
const SUBSCRIPTION_VALUES = `$1::text, $2::text, $3::text, $4::text, $5::text[], $6::text[], $7::text[], $8::text[],
  $9::jsonb, $10::timestamptz, $11::timestamptz, $12::boolean, $13::timestamptz, $14::timestamptz, $15::timestamptz,
  $16::timestamptz, $17::timestamptz, $18::jsonb, $19::boolean, $20::timestamptz, $21::smallint, $22::text`;
const SUBSCRIPTION_UPSERT_TAIL = `
  ON CONFLICT (stripe_subscription_id) DO UPDATE
     SET stripe_customer_id = EXCLUDED.stripe_customer_id, status = EXCLUDED.status,
         user_id = coalesce(EXCLUDED.user_id, subscriptions.user_id),
         price_ids = EXCLUDED.price_ids, product_ids = EXCLUDED.product_ids, lookup_keys = EXCLUDED.lookup_keys,
         price_features = EXCLUDED.price_features, items = EXCLUDED.items,
         current_period_start = EXCLUDED.current_period_start, current_period_end = EXCLUDED.current_period_end,
         cancel_at_period_end = EXCLUDED.cancel_at_period_end, cancel_at = EXCLUDED.cancel_at,
         canceled_at = EXCLUDED.canceled_at, ended_at = EXCLUDED.ended_at,
         trial_start = EXCLUDED.trial_start, trial_end = EXCLUDED.trial_end, metadata = EXCLUDED.metadata,
         deleted = EXCLUDED.deleted, last_event_created = EXCLUDED.last_event_created,
         last_event_rank = EXCLUDED.last_event_rank, last_event_id = EXCLUDED.last_event_id, updated_at = now()
   WHERE NOT subscriptions.deleted
     AND (EXCLUDED.last_event_created, EXCLUDED.last_event_rank, EXCLUDED.last_event_id)
       > (subscriptions.last_event_created, subscriptions.last_event_rank, subscriptions.last_event_id)`;
const SUBSCRIPTION_COLUMNS = `(stripe_subscription_id, stripe_customer_id, status, user_id, price_ids, product_ids,
  lookup_keys, price_features, items, current_period_start, current_period_end, cancel_at_period_end, cancel_at,
  canceled_at, ended_at, trial_start, trial_end, metadata, deleted, last_event_created, last_event_rank, last_event_id)`;

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
  const created = Number.isFinite(event.created) ? Math.floor(event.created) : null;
  const eventParams = [
    event.id,
    event.type,
    status,
    raw,
    typeof event.livemode === 'boolean' ? event.livemode : null,
    typeof event.api_version === 'string' ? event.api_version : null,
    created,
  ];
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

/** The row BillingRepository.upsertSubscription writes, from the event (both API shapes). */
function subscriptionParams(event) {
  const s = event.data.object;
  const items = s.items && Array.isArray(s.items.data) ? s.items.data : [];
  const rows = items.map((item) => {
    const price = isObject(item.price) ? item.price : isObject(item.plan) ? item.plan : null;
    const features =
      price && isObject(price.metadata) && typeof price.metadata.features === 'string'
        ? price.metadata.features
            .split(',')
            .map((f) => f.trim())
            .filter(Boolean)
        : [];
    return {
      item: {
        id: item.id || null,
        priceId: price ? price.id || null : typeof item.price === 'string' ? item.price : null,
        productId: price
          ? typeof price.product === 'string'
            ? price.product
            : (price.product && price.product.id) || null
          : null,
        lookupKey: price ? price.lookup_key || null : null,
        quantity: typeof item.quantity === 'number' ? item.quantity : null,
        currentPeriodStart: iso(item.current_period_start),
        currentPeriodEnd: iso(item.current_period_end),
      },
      features,
    };
  });
  const list = (key) => [...new Set(rows.map((r) => r.item[key]).filter(Boolean))];
  const starts = rows
    .map((r) => r.item.currentPeriodStart)
    .filter(Boolean)
    .sort();
  const ends = rows
    .map((r) => r.item.currentPeriodEnd)
    .filter(Boolean)
    .sort();
  const metadata = isObject(s.metadata) ? s.metadata : {};
  const deleted =
    event.type === 'customer.subscription.deleted' || s.status === 'canceled' || s.status === 'incomplete_expired';
  const rank = deleted ? 2 : event.type === 'customer.subscription.created' ? 0 : 1;
  return [
    s.id,
    s.customer,
    s.status,
    typeof metadata.user_id === 'string' && metadata.user_id ? metadata.user_id : null,
    list('priceId'),
    list('productId'),
    list('lookupKey'),
    [...new Set(rows.flatMap((r) => r.features))],
    JSON.stringify(rows.map((r) => r.item)),
    iso(s.current_period_start) || starts[0] || null,
    iso(s.current_period_end) || ends[ends.length - 1] || null,
    s.cancel_at_period_end === true,
    iso(s.cancel_at),
    iso(s.canceled_at),
    iso(s.ended_at),
    iso(s.trial_start),
    iso(s.trial_end),
    metadata,
    deleted,
    new Date((Number(event.created) || 0) * 1000).toISOString(),
    rank,
    event.id,
  ];
}

function iso(seconds) {
  return typeof seconds === 'number' && Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : null;
}

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// --- HTTP ----------------------------------------------------------------------------------------

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function fail(res, status, error, message) {
  send(res, status, { statusCode: status, error, message });
}

function verified(raw, header) {
  if (typeof header !== 'string') {
    return false;
  }
  const t = /(?:^|,)t=(\d+)/.exec(header);
  if (!t || Math.abs(Math.floor(Date.now() / 1000) - Number(t[1])) > TOLERANCE) {
    return false;
  }
  for (const secret of SECRETS) {
    try {
      Stripe.webhooks.signature.verifyHeader(raw, header, secret, TOLERANCE);
      return true;
    } catch {
      // next secret
    }
  }
  return false;
}

async function receive(req, res, raw) {
  if (!verified(raw, req.headers['stripe-signature'])) {
    return fail(res, 400, 'invalid_signature', 'No valid Stripe-Signature.');
  }
  const text = raw.toString('utf8');
  let event;
  try {
    event = JSON.parse(text);
  } catch {
    return fail(res, 400, 'invalid_payload', 'The body is not valid JSON.');
  }
  if (
    !isObject(event) ||
    typeof event.id !== 'string' ||
    typeof event.type !== 'string' ||
    !isObject(event.data) ||
    !isObject(event.data.object)
  ) {
    return fail(res, 400, 'invalid_payload', 'Not a Stripe event.');
  }
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

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/health/ready') {
    pool.query('SELECT 1').then(
      () => send(res, 200, { status: 'ok' }),
      () => send(res, 503, { status: 'error' }),
    );
    return;
  }
  if (req.method !== 'POST' || req.url !== '/webhooks/stripe') {
    return fail(res, 404, 'not_found', 'Not found.');
  }
  const chunks = [];
  let size = 0;
  let tooLarge = false;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) {
      tooLarge = true;
    } else {
      chunks.push(chunk);
    }
  });
  req.on('end', () => {
    if (tooLarge) {
      return fail(res, 413, 'payload_too_large', 'The body is too large.');
    }
    receive(req, res, Buffer.concat(chunks, size)).catch(() => {
      if (!res.headersSent) {
        fail(res, 500, 'internal_error', 'Unexpected error.');
      }
    });
  });
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
