'use strict';

/**
 * What the bare builds of the job (bench/floor.js, bench/bullmq.js) share, so that they verify,
 * answer and write exactly alike: the HTTP front (raw body with a 1 MiB limit, stripe-node's
 * verifier with the configured secrets and tolerance, past and future, the event's shape), the
 * error bodies, and the subscription row with its newer-wins upsert (as
 * BillingRepository.upsertSubscription writes it).
 */

const http = require('node:http');
const StripeModule = require('stripe');

const Stripe = StripeModule.default || StripeModule;
const MAX_BODY = 1_048_576;
const SUBSCRIPTION_TYPES = new Set([
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
  'customer.subscription.paused',
  'customer.subscription.resumed',
  'customer.subscription.trial_will_end',
]);

/** PORT, DATABASE_URL, STRIPE_WEBHOOK_SECRET (comma-separated), tolerance and pool size; exits if unset. */
function readConfig(name, defaultPort) {
  const config = {
    port: Number(process.env.PORT || defaultPort),
    databaseUrl: process.env.DATABASE_URL,
    secrets: (process.env.STRIPE_WEBHOOK_SECRET || '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    tolerance: Number(process.env.STRIPE_WEBHOOK_TOLERANCE_SECONDS || 300),
    poolSize: Number(process.env.DB_POOL_SIZE || 10),
  };
  if (config.secrets.length === 0 || !config.databaseUrl) {
    process.stderr.write(`${name}: STRIPE_WEBHOOK_SECRET and DATABASE_URL are required\n`);
    process.exit(1);
  }
  return config;
}

// --- SQL -----------------------------------------------------------------------------------------

const EVENT_COLUMNS = `(stripe_event_id, event_type, status, payload, livemode, api_version, event_created_at, processed_at)`;
const EVENT_VALUES = `($1, $2, $3, $4::jsonb, $5, $6, to_timestamp($7), CASE WHEN $3 = 'ignored' THEN now() END)`;

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

/** The event row's parameters $1…$7 of EVENT_VALUES. */
function eventParams(event, raw, status) {
  return [
    event.id,
    event.type,
    status,
    raw,
    typeof event.livemode === 'boolean' ? event.livemode : null,
    typeof event.api_version === 'string' ? event.api_version : null,
    Number.isFinite(event.created) ? Math.floor(event.created) : null,
  ];
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

function verifier(secrets, tolerance) {
  return (raw, header) => {
    if (typeof header !== 'string') {
      return false;
    }
    const t = /(?:^|,)t=(\d+)/.exec(header);
    if (!t || Math.abs(Math.floor(Date.now() / 1000) - Number(t[1])) > tolerance) {
      return false;
    }
    for (const secret of secrets) {
      try {
        Stripe.webhooks.signature.verifyHeader(raw, header, secret, tolerance);
        return true;
      } catch {
        // next secret
      }
    }
    return false;
  };
}

/**
 * The node:http server both builds run: GET /health/ready answers 200 when `ready()` resolves;
 * POST /webhooks/stripe reads the body (413 above 1 MiB), verifies it (400 invalid_signature),
 * parses it (400 invalid_payload unless it has id, type and data.object), then hands the event and
 * its text to `accept(event, text, res)`, which answers. Anything else is 404.
 */
function createWebhookServer({ secrets, tolerance, ready, accept }) {
  const verified = verifier(secrets, tolerance);

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
    return accept(event, text, res);
  }

  return http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/health/ready') {
      ready().then(
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
}

module.exports = {
  readConfig,
  createWebhookServer,
  send,
  fail,
  eventParams,
  subscriptionParams,
  SUBSCRIPTION_TYPES,
  EVENT_COLUMNS,
  EVENT_VALUES,
  SUBSCRIPTION_COLUMNS,
  SUBSCRIPTION_VALUES,
  SUBSCRIPTION_UPSERT_TAIL,
};
