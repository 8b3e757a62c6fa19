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
 * - per-bucket counts for GET /admin/stats: received from an index on when events arrived, dead from
 *   one on when they were dead-lettered, and processed and retried from webhook_event_counts, a ring of
 *   per-minute counters (8 days of minutes, in 16 shards so that concurrent writers rarely meet) that
 *   webhook_count_events() adds to as events complete or fail. It never grows and needs no pruning;
 * - GET /admin/customers/:id/events reads one customer's events newest first from an expression index.
 *
 * Completing an event changes no indexed column of subscription_events, and its pages keep room
 * (fillfactor 70): the update stays on its page (HOT) and touches no index.
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
      CREATE TABLE IF NOT EXISTS webhook_event_counts (
        slot      integer     NOT NULL,
        shard     integer     NOT NULL,
        minute    timestamptz NOT NULL,
        processed integer     NOT NULL DEFAULT 0,
        retried   integer     NOT NULL DEFAULT 0,
        PRIMARY KEY (slot, shard)
      )`);
    await q.query('CREATE INDEX IF NOT EXISTS webhook_event_counts_minute_idx ON webhook_event_counts (minute)');
    await q.query(`
      CREATE OR REPLACE FUNCTION webhook_count_events(processed integer, retried integer) RETURNS void
      LANGUAGE sql AS $$
        INSERT INTO webhook_event_counts AS c (slot, shard, minute, processed, retried)
        SELECT (extract(epoch FROM date_trunc('minute', now()))::bigint / 60 % 11520)::integer,
               pg_backend_pid() % 16, date_trunc('minute', now()), processed, retried
         WHERE processed > 0 OR retried > 0
        ON CONFLICT (slot, shard) DO UPDATE
           SET processed = CASE WHEN c.minute = EXCLUDED.minute THEN c.processed ELSE 0 END + EXCLUDED.processed,
               retried = CASE WHEN c.minute = EXCLUDED.minute THEN c.retried ELSE 0 END + EXCLUDED.retried,
               minute = EXCLUDED.minute
      $$`);
    await q.query('ALTER TABLE subscription_events SET (fillfactor = 70)');
    await createConcurrently(q, 'subscription_events_received_at_idx', 'ON subscription_events (received_at)');
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
      'subscription_events_received_at_idx',
    ]) {
      await q.query(`DROP INDEX IF EXISTS ${index}`); // a revert runs in a transaction
    }
    await q.query('ALTER TABLE subscription_events RESET (fillfactor)');
    await q.query('DROP FUNCTION IF EXISTS webhook_count_events(integer, integer)');
    await q.query('DROP TABLE IF EXISTS webhook_event_counts');
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
