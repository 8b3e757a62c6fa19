import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Connected accounts (Connect): their events are found, listed and swept by account.
 *
 * - `subscription_events_account_idx`: one account's events newest first (GET /admin/events?account=),
 *   and the accounts the sweep covers (each account's newest event, one index probe each).
 * - `webhook_dead_letter_queue.account_id`: the event's account, copied when it is dead-lettered like
 *   its type, so that GET /admin/dead-letters?account= reads one index range. Events stored before
 *   this release have no account, so there is nothing to copy for existing rows.
 * - `reconcile_checkpoints.deauthorized_at`: the `created` of the account's latest
 *   `account.application.deauthorized`; the sweep skips the account until an event created later
 *   arrives from it (it was authorized again), and then clears it.
 *
 * The index on subscription_events is built CONCURRENTLY (outside a transaction), so that ingest keeps
 * writing while a large table is indexed; every step can run again after a failed attempt.
 */
export class ConnectAccounts1767920400000 implements MigrationInterface {
  name = 'ConnectAccounts1767920400000';
  transaction = false;

  async up(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE reconcile_checkpoints ADD COLUMN IF NOT EXISTS deauthorized_at timestamptz');
    await q.query('ALTER TABLE webhook_dead_letter_queue ADD COLUMN IF NOT EXISTS account_id text');
    await q.query(`
      CREATE INDEX IF NOT EXISTS webhook_dead_letter_queue_open_account_created_idx
        ON webhook_dead_letter_queue (account_id, created_at DESC, id DESC)
        WHERE resolution IS NULL AND account_id IS NOT NULL`);
    const invalid = (await q.query(
      `SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relname = 'subscription_events_account_idx' AND c.relnamespace = 'public'::regnamespace
          AND NOT i.indisvalid`,
    )) as unknown[];
    if (invalid.length > 0) {
      await q.query('DROP INDEX CONCURRENTLY IF EXISTS subscription_events_account_idx');
    }
    await q.query(`
      CREATE INDEX CONCURRENTLY IF NOT EXISTS subscription_events_account_idx
        ON subscription_events (account_id, received_at DESC, id DESC) WHERE account_id IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP INDEX IF EXISTS subscription_events_account_idx');
    await q.query('DROP INDEX IF EXISTS webhook_dead_letter_queue_open_account_created_idx');
    await q.query('ALTER TABLE webhook_dead_letter_queue DROP COLUMN IF EXISTS account_id');
    await q.query('ALTER TABLE reconcile_checkpoints DROP COLUMN IF EXISTS deauthorized_at');
  }
}
