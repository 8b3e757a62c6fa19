import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Billing state derived from Stripe events. Every row remembers the `created` time (and a rank and
 * the id, to break ties within a second) of the last event applied to it, so that an older event
 * delivered or replayed late never overwrites a newer state; a deleted subscription or customer
 * stays deleted.
 */
export class CreateBillingTables1767312000000 implements MigrationInterface {
  name = 'CreateBillingTables1767312000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE customers (
        stripe_customer_id text        PRIMARY KEY,
        user_id            text,
        email              text,
        name               text,
        metadata           jsonb       NOT NULL DEFAULT '{}',
        deleted            boolean     NOT NULL DEFAULT false,
        last_event_created timestamptz,
        last_event_rank    smallint,
        last_event_id      text,
        created_at         timestamptz NOT NULL DEFAULT now(),
        updated_at         timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX customers_user_id_idx ON customers (user_id) WHERE user_id IS NOT NULL`);

    await q.query(`
      CREATE TABLE subscriptions (
        stripe_subscription_id text        PRIMARY KEY,
        stripe_customer_id     text        NOT NULL,
        status                 text        NOT NULL,
        user_id                text,
        price_ids              text[]      NOT NULL DEFAULT '{}',
        product_ids            text[]      NOT NULL DEFAULT '{}',
        lookup_keys            text[]      NOT NULL DEFAULT '{}',
        price_features         text[]      NOT NULL DEFAULT '{}',
        items                  jsonb       NOT NULL DEFAULT '[]',
        current_period_start   timestamptz,
        current_period_end     timestamptz,
        cancel_at_period_end   boolean     NOT NULL DEFAULT false,
        cancel_at              timestamptz,
        canceled_at            timestamptz,
        ended_at               timestamptz,
        trial_start            timestamptz,
        trial_end              timestamptz,
        metadata               jsonb       NOT NULL DEFAULT '{}',
        deleted                boolean     NOT NULL DEFAULT false,
        last_event_created     timestamptz NOT NULL,
        last_event_rank        smallint    NOT NULL,
        last_event_id          text        NOT NULL,
        created_at             timestamptz NOT NULL DEFAULT now(),
        updated_at             timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX subscriptions_customer_idx ON subscriptions (stripe_customer_id)`);
    await q.query(`CREATE INDEX subscriptions_user_id_idx ON subscriptions (user_id) WHERE user_id IS NOT NULL`);

    // The latest entitlements.active_entitlement_summary per customer: it replaces price-derived features.
    await q.query(`
      CREATE TABLE customer_entitlements (
        stripe_customer_id text        PRIMARY KEY,
        lookup_keys        text[]      NOT NULL,
        entitlements       jsonb       NOT NULL,
        has_more           boolean     NOT NULL DEFAULT false,
        last_event_created timestamptz NOT NULL,
        last_event_id      text        NOT NULL,
        updated_at         timestamptz NOT NULL DEFAULT now()
      )`);

    // Invoices: the paid (or failed) subscription periods. No foreign keys: an invoice may arrive
    // before its subscription and is kept, never dropped.
    await q.query(`
      CREATE TABLE invoices (
        stripe_invoice_id      text        PRIMARY KEY,
        stripe_customer_id     text        NOT NULL,
        stripe_subscription_id text,
        status                 text        NOT NULL,
        billing_reason         text,
        currency               text,
        amount_due             bigint,
        amount_paid            bigint,
        period_start           timestamptz,
        period_end             timestamptz,
        attempt_count          integer,
        next_payment_attempt   timestamptz,
        paid_at                timestamptz,
        payment_failed_at      timestamptz,
        last_event_created     timestamptz NOT NULL,
        last_event_rank        smallint    NOT NULL,
        last_event_id          text        NOT NULL,
        created_at             timestamptz NOT NULL DEFAULT now(),
        updated_at             timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX invoices_subscription_idx ON invoices (stripe_subscription_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE invoices`);
    await q.query(`DROP TABLE customer_entitlements`);
    await q.query(`DROP TABLE subscriptions`);
    await q.query(`DROP TABLE customers`);
  }
}
