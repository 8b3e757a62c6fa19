import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Pre-paid wallets and metered usage.
 *
 * The wallet ledger has one row per credited PaymentIntent (unique), so a top-up is credited once
 * whichever of its events arrives first and however often they are delivered; balances per
 * currency are updated by the same statement that inserts the ledger row. Usage counters are keyed
 * by the billing period's start, so a new period starts at zero by construction, and the
 * idempotency keys already counted are kept per customer.
 */
export class CreateWalletAndUsageTables1767398400000 implements MigrationInterface {
  name = 'CreateWalletAndUsageTables1767398400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE wallet_ledger (
        id                 uuid           PRIMARY KEY DEFAULT gen_random_uuid(),
        stripe_customer_id text           NOT NULL,
        payment_intent_id  text           NOT NULL,
        amount             bigint         NOT NULL CHECK (amount > 0),
        currency           text           NOT NULL,
        source_event_id    text           NOT NULL,
        source_event_type  text           NOT NULL,
        created_at         timestamptz(3) NOT NULL DEFAULT now(),
        CONSTRAINT wallet_ledger_payment_intent_key UNIQUE (payment_intent_id)
      )`);
    await q.query(
      `CREATE INDEX wallet_ledger_customer_idx ON wallet_ledger (stripe_customer_id, created_at DESC, id DESC)`,
    );

    await q.query(`
      CREATE TABLE wallet_balances (
        stripe_customer_id text        NOT NULL,
        currency           text        NOT NULL,
        balance            bigint      NOT NULL,
        updated_at         timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (stripe_customer_id, currency)
      )`);

    await q.query(`
      CREATE TABLE wallet_failed_top_ups (
        payment_intent_id  text        PRIMARY KEY,
        stripe_customer_id text,
        amount             bigint,
        currency           text,
        failure_code       text,
        decline_code       text,
        failure_message    text,
        source_event_id    text        NOT NULL,
        failed_at          timestamptz NOT NULL,
        created_at         timestamptz NOT NULL DEFAULT now()
      )`);

    // The payment method of the latest successful top-up, for auto-recharge.
    await q.query(`ALTER TABLE customers ADD COLUMN auto_recharge_payment_method text`);
    await q.query(`ALTER TABLE customers ADD COLUMN auto_recharge_set_by_event_created timestamptz`);

    await q.query(`
      CREATE TABLE usage_periods (
        stripe_customer_id text        NOT NULL,
        period_start       timestamptz NOT NULL,
        period_end         timestamptz NOT NULL,
        used               bigint      NOT NULL DEFAULT 0,
        updated_at         timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (stripe_customer_id, period_start)
      )`);
    await q.query(`
      CREATE TABLE usage_records (
        stripe_customer_id text        NOT NULL,
        idempotency_key    text        NOT NULL,
        period_start       timestamptz NOT NULL,
        quantity           bigint      NOT NULL CHECK (quantity > 0),
        created_at         timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (stripe_customer_id, idempotency_key)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE usage_records`);
    await q.query(`DROP TABLE usage_periods`);
    await q.query(`ALTER TABLE customers DROP COLUMN auto_recharge_set_by_event_created`);
    await q.query(`ALTER TABLE customers DROP COLUMN auto_recharge_payment_method`);
    await q.query(`DROP TABLE wallet_failed_top_ups`);
    await q.query(`DROP TABLE wallet_balances`);
    await q.query(`DROP TABLE wallet_ledger`);
  }
}
