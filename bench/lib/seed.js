'use strict';

const { fixtureEvent } = require('./events');

const CHUNK = 50_000;

/**
 * Inserts `n` customer.subscription.updated events built in SQL from the fixture (each with its own
 * event, subscription and customer id, `created` one second apart), with the given status and
 * timestamps, in chunks of 50,000 rows. `extra` may set columns from `i` (the row number):
 * { status, attempts, lastError, receivedAt, processedAt } as SQL expressions.
 */
async function insertEvents(
  client,
  {
    n,
    tag,
    status = 'pending',
    receivedAt = 'now()',
    processedAt = 'NULL',
    attempts = '0',
    lastError = 'NULL',
    eventType = "'customer.subscription.updated'",
    onChunk,
  },
) {
  const fixture = fixtureEvent();
  delete fixture.data.previous_attributes; // kept small-ish and the same for every type
  const created = 1_767_225_660;
  for (let from = 1; from <= n; from += CHUNK) {
    const to = Math.min(n, from + CHUNK - 1);
    await client.query(
      `INSERT INTO subscription_events
         (stripe_event_id, event_type, status, attempts, last_error, payload, livemode, api_version,
          event_created_at, received_at, processed_at)
       SELECT 'evt_' || $2 || '_' || i, t, ${status === 'pending' ? "'pending'" : `'${status}'`}, ${attempts}, ${lastError},
              jsonb_set(jsonb_set(jsonb_set(jsonb_set(jsonb_set(jsonb_set($1::jsonb,
                '{id}', to_jsonb('evt_' || $2 || '_' || i)),
                '{type}', to_jsonb(t)),
                '{created}', to_jsonb($3::bigint + i)),
                '{data,object,id}', to_jsonb('sub_' || $2 || '_' || i)),
                '{data,object,customer}', to_jsonb('cus_' || $2 || '_' || i)),
                '{data,object,items,data,0,subscription}', to_jsonb('sub_' || $2 || '_' || i)),
              false, '2025-10-29.clover', to_timestamp($3::bigint + i), ${receivedAt}, ${processedAt}
         FROM generate_series($4::int, $5::int) AS i, LATERAL (SELECT ${eventType}::text AS t) AS type`,
      [JSON.stringify(fixture), tag, created, from, to],
    );
    if (onChunk) {
      onChunk(to);
    }
  }
}

/** Queue rows for every pending event whose id matches `tag`, due `dueSql`. */
async function enqueuePending(client, tag, dueSql = 'now()') {
  await client.query(
    `INSERT INTO webhook_retry_queue (event_id, stripe_event_id, event_type, attempts, next_retry_at, enqueued_at)
     SELECT id, stripe_event_id, event_type, attempts, ${dueSql}, received_at
       FROM subscription_events
      WHERE status = 'pending' AND stripe_event_id LIKE 'evt\\_' || $1 || '\\_%'`,
    [tag],
  );
}

module.exports = { insertEvents, enqueuePending };
