import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The durable core: every accepted Stripe event, the queue of events still to be handled, the
 * dead letters, and the admin audit trail.
 *
 * Indexes are only those the hot paths use: the unique Stripe event id (duplicate detection at
 * ingest), the queue's due time (the claim query), and the open dead letters newest first (the
 * admin list, with and without an event type filter). The queue is keyed by the event, so an
 * event can be queued at most once, and an event with a queue row cannot be deleted (RESTRICT):
 * nothing may silently drop a queued event.
 */
export class CreateWebhookTables1767225600000 implements MigrationInterface {
  name = 'CreateWebhookTables1767225600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE subscription_events (
        id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        stripe_event_id  text        NOT NULL,
        event_type       text        NOT NULL,
        status           text        NOT NULL DEFAULT 'pending',
        attempts         integer     NOT NULL DEFAULT 0,
        last_error       text,
        payload          jsonb       NOT NULL,
        livemode         boolean,
        api_version      text,
        event_created_at timestamptz,
        received_at      timestamptz NOT NULL DEFAULT now(),
        processed_at     timestamptz,
        CONSTRAINT subscription_events_stripe_event_id_key UNIQUE (stripe_event_id),
        CONSTRAINT subscription_events_status_check
          CHECK (status IN ('pending', 'processed', 'ignored', 'dead', 'discarded'))
      )`);

    await q.query(`
      CREATE TABLE webhook_retry_queue (
        event_id        bigint      PRIMARY KEY REFERENCES subscription_events (id) ON DELETE RESTRICT,
        stripe_event_id text        NOT NULL,
        event_type      text        NOT NULL,
        attempts        integer     NOT NULL DEFAULT 0,
        next_retry_at   timestamptz NOT NULL DEFAULT now(),
        lock_token      uuid,
        locked_by       text,
        last_error      text,
        enqueued_at     timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX webhook_retry_queue_next_retry_at_idx ON webhook_retry_queue (next_retry_at)`);

    await q.query(`
      CREATE TABLE webhook_dead_letter_queue (
        id                 uuid           PRIMARY KEY DEFAULT gen_random_uuid(),
        event_id           bigint         NOT NULL REFERENCES subscription_events (id) ON DELETE CASCADE,
        stripe_event_id    text           NOT NULL,
        event_type         text           NOT NULL,
        retry_count        integer        NOT NULL,
        error              text,
        original_timestamp timestamptz,
        created_at         timestamptz(3) NOT NULL DEFAULT now(),
        resolution         text,
        resolved_at        timestamptz,
        resolved_by        text,
        CONSTRAINT webhook_dead_letter_queue_resolution_check CHECK (resolution IN ('replayed', 'discarded'))
      )`);
    // At most one open dead letter per event; also what replay and discard look up.
    await q.query(`
      CREATE UNIQUE INDEX webhook_dead_letter_queue_open_event_idx
        ON webhook_dead_letter_queue (event_id) WHERE resolution IS NULL`);
    await q.query(`
      CREATE INDEX webhook_dead_letter_queue_open_created_idx
        ON webhook_dead_letter_queue (created_at DESC, id DESC) WHERE resolution IS NULL`);
    await q.query(`
      CREATE INDEX webhook_dead_letter_queue_open_type_created_idx
        ON webhook_dead_letter_queue (event_type, created_at DESC, id DESC) WHERE resolution IS NULL`);

    await q.query(`
      CREATE TABLE admin_audit_log (
        id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        actor      text        NOT NULL,
        action     text        NOT NULL,
        target     text,
        result     text        NOT NULL,
        details    jsonb,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE admin_audit_log`);
    await q.query(`DROP TABLE webhook_dead_letter_queue`);
    await q.query(`DROP TABLE webhook_retry_queue`);
    await q.query(`DROP TABLE subscription_events`);
  }
}
