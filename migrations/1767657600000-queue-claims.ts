import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Attempts count handler runs only; claims are counted apart. `webhook_retry_queue.attempts` becomes
 * the number of failed runs recorded (a claim no longer adds to it), and `claims` the claims since
 * the last recorded result: a row claimed again and again without one (the process handling it
 * dies each time) is dead-lettered by that count. A row held right now had its current claim counted
 * as an attempt: it moves to `claims`.
 *
 * The admin list of the queue pages on (enqueued_at, event_id), which a claim or a retry never changes.
 */
export class QueueClaims1767657600000 implements MigrationInterface {
  name = 'QueueClaims1767657600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE webhook_retry_queue ADD COLUMN claims integer NOT NULL DEFAULT 0`);
    await q.query(`
      UPDATE webhook_retry_queue SET attempts = greatest(attempts - 1, 0), claims = 1 WHERE lock_token IS NOT NULL`);
    await q.query(`CREATE INDEX webhook_retry_queue_enqueued_idx ON webhook_retry_queue (enqueued_at, event_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX webhook_retry_queue_enqueued_idx`);
    await q.query(`UPDATE webhook_retry_queue SET attempts = attempts + 1 WHERE lock_token IS NOT NULL`);
    await q.query(`ALTER TABLE webhook_retry_queue DROP COLUMN claims`);
  }
}
