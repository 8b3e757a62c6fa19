import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Pulling from Stripe: where each stored event came from, the reconciliation checkpoint, and the
 * record of every reconciliation run.
 *
 * `subscription_events.source` is `webhook` (pushed to POST /webhooks/stripe), `reconcile` (found
 * by a sweep of the Events API) or `thin` (fetched for a thin event); `account_id` names the
 * connected account of an event from a Connect endpoint (null for the platform's own). The check is
 * added NOT VALID: every existing row holds the default, which passes it, and validating would scan
 * the whole table while ADD COLUMN holds its exclusive lock; new rows are checked all the same.
 *
 * `reconcile_checkpoints` has one row per swept account ('' is the platform): every event created
 * up to `checkpoint_at` has been listed, and the outcome of the last sweep (what the health check
 * and the alerts report). `reconcile_runs` records each run for the admin API; a scheduled run
 * names its cron tick (`scheduled_for`), unique per account, so that replicas whose schedules fire
 * together sweep once.
 */
export class PullFromStripe1767744000000 implements MigrationInterface {
  name = 'PullFromStripe1767744000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE subscription_events
        ADD COLUMN source     text NOT NULL DEFAULT 'webhook',
        ADD COLUMN account_id text`);
    await q.query(`
      ALTER TABLE subscription_events
        ADD CONSTRAINT subscription_events_source_check
        CHECK (source IN ('webhook', 'reconcile', 'thin')) NOT VALID`);

    await q.query(`
      CREATE TABLE reconcile_checkpoints (
        account_id        text        PRIMARY KEY,
        checkpoint_at     timestamptz,
        last_outcome      text,
        last_failure_kind text,
        last_error        text,
        last_success_at   timestamptz,
        updated_at        timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT reconcile_checkpoints_last_outcome_check CHECK (last_outcome IN ('succeeded', 'failed')),
        CONSTRAINT reconcile_checkpoints_last_failure_kind_check CHECK (last_failure_kind IN ('key_refused', 'failing'))
      )`);

    await q.query(`
      CREATE TABLE reconcile_runs (
        id            uuid           PRIMARY KEY DEFAULT gen_random_uuid(),
        account_id    text           NOT NULL DEFAULT '',
        trigger       text           NOT NULL,
        actor         text,
        scheduled_for timestamptz,
        since         timestamptz    NOT NULL,
        until         timestamptz    NOT NULL,
        dry_run       boolean        NOT NULL DEFAULT false,
        status        text           NOT NULL DEFAULT 'running',
        listed        integer        NOT NULL DEFAULT 0,
        recovered     integer        NOT NULL DEFAULT 0,
        error         text,
        started_at    timestamptz(3) NOT NULL DEFAULT now(),
        finished_at   timestamptz,
        CONSTRAINT reconcile_runs_trigger_check CHECK (trigger IN ('schedule', 'admin')),
        CONSTRAINT reconcile_runs_status_check CHECK (status IN ('running', 'succeeded', 'failed'))
      )`);
    await q.query(`CREATE INDEX reconcile_runs_started_idx ON reconcile_runs (started_at DESC, id DESC)`);
    await q.query(`
      CREATE UNIQUE INDEX reconcile_runs_tick_idx
        ON reconcile_runs (account_id, scheduled_for) WHERE scheduled_for IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE reconcile_runs`);
    await q.query(`DROP TABLE reconcile_checkpoints`);
    await q.query(`ALTER TABLE subscription_events DROP COLUMN account_id, DROP COLUMN source`);
  }
}
