'use strict';

const { randomBytes } = require('node:crypto');
const { fixtureEvent, Stripe } = require('./events');
const { withClient } = require('./db');

/**
 * Before another build of the job is measured beside the floor: the same deliveries to both must
 * get the same answers (status and error code) and leave the same rows, or the two would not be
 * measuring the same job. Deliveries: a new subscription event; an older one for the same
 * subscription (newer-wins: not applied); a newer one that cancels it (applied); a redelivery of
 * the first (nothing changes); an event of another type (stored, ignored); and the refusals
 * (wrong secret, no signature, stale and future timestamps, invalid JSON, not an event, a body
 * over 1 MiB). Throws with the differences; resolves with the number of comparisons made.
 */
async function checkSameJob({ reference, candidate, secret, tolerance = 300 }) {
  const tag = randomBytes(4).toString('hex');
  const ids = { subscription: `sub_chk_${tag}`, customer: `cus_chk_${tag}` };
  const now = Math.floor(Date.now() / 1000);
  const subscriptionEvent = (n, created, change = {}) => {
    const event = fixtureEvent();
    event.id = `evt_chk_${tag}_${n}`;
    event.created = created;
    Object.assign(event.data.object, { id: ids.subscription, customer: ids.customer }, change);
    return JSON.stringify(event, null, 2);
  };
  const signed = (body, timestamp = Math.floor(Date.now() / 1000), key = secret) => ({
    body,
    headers: {
      'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload: body, secret: key, timestamp }),
    },
  });
  const first = subscriptionEvent(1, now - 50);
  const deliveries = [
    ['new subscription', signed(first)],
    ['older event, same subscription', signed(subscriptionEvent(2, now - 100, { status: 'past_due' }))],
    ['newer event cancels it', signed(subscriptionEvent(3, now - 10, { status: 'canceled', ended_at: now - 10 }))],
    ['redelivery of the first', signed(first)],
    [
      'another event type',
      signed(
        JSON.stringify({
          id: `evt_chk_${tag}_4`,
          type: 'invoice.paid',
          created: now,
          data: { object: { id: 'in_1' } },
        }),
      ),
    ],
    ['wrong secret', signed(first, undefined, `${secret}x`)],
    ['no signature', { body: first, headers: {} }],
    ['stale timestamp', signed(first, now - tolerance - 30)],
    ['future timestamp', signed(first, now + tolerance + 30)],
    ['invalid JSON', signed('{"id": "evt_x", ')],
    ['not an event', signed(JSON.stringify({ id: `evt_chk_${tag}_5`, type: 'invoice.paid', data: {} }))],
    ['body over 1 MiB', signed(`{"id":"evt_big","pad":"${'x'.repeat(1_048_576)}"}`)],
  ];

  const rows = async (target) =>
    withClient(target.db.url, async (c) => ({
      events: (
        await c.query(
          `SELECT stripe_event_id, event_type, status, attempts, payload, livemode, api_version, event_created_at,
                  processed_at IS NOT NULL AS done
             FROM subscription_events WHERE stripe_event_id LIKE $1 ORDER BY stripe_event_id`,
          [`evt\\_chk\\_${tag}\\_%`],
        )
      ).rows,
      subscription: (
        await c.query(
          `SELECT to_jsonb(s) - 'created_at' - 'updated_at' AS row FROM subscriptions s WHERE stripe_subscription_id = $1`,
          [ids.subscription],
        )
      ).rows,
      customer: (
        await c.query(
          `SELECT to_jsonb(c) - 'created_at' - 'updated_at' AS row FROM customers c WHERE stripe_customer_id = $1`,
          [ids.customer],
        )
      ).rows,
    }));

  // Compared after every delivery: a later one must not hide what an earlier one did wrong.
  const differences = [];
  let comparisons = 0;
  let last;
  for (const [what, delivery] of deliveries) {
    const answers = [];
    for (const target of [reference, candidate]) {
      answers.push(await post(target.url, delivery));
      await target.drained({ timeoutMs: 30_000, intervalMs: 20 }); // one at a time, as Stripe retries
    }
    const [a, b] = answers;
    if (a.status !== b.status || a.error !== b.error) {
      differences.push(
        `${what}: ${reference.kind} ${a.status} ${a.error || ''}, ${candidate.kind} ${b.status} ${b.error || ''}`,
      );
    }
    const [ra, rb] = [await rows(reference), await rows(candidate)];
    for (const table of ['events', 'subscription', 'customer']) {
      comparisons++;
      if (JSON.stringify(ra[table]) !== JSON.stringify(rb[table])) {
        differences.push(
          `after "${what}", ${table} rows differ:\n  ${reference.kind}: ${JSON.stringify(ra[table]).slice(0, 600)}\n` +
            `  ${candidate.kind}: ${JSON.stringify(rb[table]).slice(0, 600)}`,
        );
      }
    }
    comparisons++;
    last = ra;
  }
  if (last.events.length !== 4 || last.subscription.length !== 1 || last.subscription[0].row.status !== 'canceled') {
    differences.push(`${reference.kind} did not do the job this check expects: ${JSON.stringify(last).slice(0, 400)}`);
  }
  if (differences.length) {
    throw new Error(`${candidate.kind} does not do the same job as ${reference.kind}:\n${differences.join('\n')}`);
  }
  return comparisons;
}

async function post(url, { body, headers }) {
  const response = await fetch(`${url}/webhooks/stripe`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
  const text = await response.text();
  let error;
  try {
    error = JSON.parse(text).error;
  } catch {
    error = undefined;
  }
  return { status: response.status, error };
}

module.exports = { checkSameJob };
