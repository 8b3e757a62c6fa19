import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The customer an event concerns: the event's object itself when it is a customer, else the
 * object's `customer` (an id, or an expanded customer object). Immutable, so it can be indexed; the
 * admin query repeats it word for word so that PostgreSQL matches it to the index.
 */
export const EVENT_CUSTOMER_SQL = `(CASE
         WHEN payload #>> '{data,object,object}' = 'customer' THEN payload #>> '{data,object,id}'
         WHEN jsonb_typeof(payload #> '{data,object,customer}') = 'object' THEN payload #>> '{data,object,customer,id}'
         ELSE payload #>> '{data,object,customer}'
       END)`;

/** The order of a customer's events: newest `created` first (the receipt time when Stripe gave none). */
export const EVENT_CREATED_SQL = 'coalesce(event_created_at, received_at)';

/**
 * The admin console's reads, kept fast with millions of events:
 * - per-bucket counts for GET /admin/stats come from index-only scans of when events were received,
 *   processed (or ignored) and dead-lettered, and from webhook_retry_counts for retries;
 * - GET /admin/customers/:id/events reads one customer's events newest first from an expression index.
 *
 * webhook_retry_counts is a ring of per-minute counters, one row per minute of the last 8 days
 * (slot = minute since the epoch modulo 11,520): a retry scheduled in a minute adds to its slot, or
 * resets a slot still holding the same minute of an older week. It never grows and needs no pruning,
 * and counting retries stays cheap however many there are.
 *
 * The indexes on subscription_events are built CONCURRENTLY (outside a transaction), so that ingest
 * keeps writing while a large table is indexed during a rolling deploy. An index a failed build left
 * invalid is dropped and built again.
 */
export class AdminConsoleIndexes1767830400000 implements MigrationInterface {
  name = 'AdminConsoleIndexes1767830400000';
  transaction = false;

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE IF NOT EXISTS webhook_retry_counts (
        slot    integer     PRIMARY KEY,
        minute  timestamptz NOT NULL,
        retried integer     NOT NULL
      )`);
    await q.query('CREATE INDEX IF NOT EXISTS webhook_retry_counts_minute_idx ON webhook_retry_counts (minute)');
    await createConcurrently(q, 'subscription_events_received_at_idx', 'ON subscription_events (received_at)');
    await createConcurrently(
      q,
      'subscription_events_processed_at_idx',
      'ON subscription_events (processed_at) WHERE processed_at IS NOT NULL',
    );
    await createConcurrently(
      q,
      'subscription_events_customer_idx',
      `ON subscription_events (${EVENT_CUSTOMER_SQL}, (${EVENT_CREATED_SQL}) DESC, id DESC)
        WHERE ${EVENT_CUSTOMER_SQL} IS NOT NULL`,
    );
    // All dead letters, resolved or not: the open-only indexes cannot count what died in a bucket.
    await createConcurrently(q, 'webhook_dead_letter_queue_created_idx', 'ON webhook_dead_letter_queue (created_at)');
  }

  async down(q: QueryRunner): Promise<void> {
    for (const index of [
      'webhook_dead_letter_queue_created_idx',
      'subscription_events_customer_idx',
      'subscription_events_processed_at_idx',
      'subscription_events_received_at_idx',
    ]) {
      await q.query(`DROP INDEX IF EXISTS ${index}`); // a revert runs in a transaction
    }
    await q.query('DROP TABLE IF EXISTS webhook_retry_counts');
  }
}

async function createConcurrently(q: QueryRunner, name: string, definition: string): Promise<void> {
  const invalid = (await q.query(
    `SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE c.relname = $1 AND c.relnamespace = 'public'::regnamespace AND NOT i.indisvalid`,
    [name],
  )) as unknown[];
  if (invalid.length > 0) {
    await q.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`);
  }
  await q.query(`CREATE INDEX CONCURRENTLY IF NOT EXISTS ${name} ${definition}`);
}
