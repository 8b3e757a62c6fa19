import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The payment method of each succeeded PaymentIntent not (yet) known as a wallet top-up.
 *
 * A Checkout Session's webhook names its PaymentIntent only by id, and the PaymentIntent carries
 * `metadata.purpose` only when the session was created with `payment_intent_data.metadata`. When
 * such a PaymentIntent's `payment_intent.succeeded` arrives before the session that makes it a
 * top-up, its payment method is kept here, so that the session can make it the customer's
 * auto-recharge method. The session removes the row it uses; rows no session claims are removed
 * after 30 days (a few at a time, by later PaymentIntent events), so the table stays bounded.
 */
export class CreateWalletIntentPaymentMethods1767571200000 implements MigrationInterface {
  name = 'CreateWalletIntentPaymentMethods1767571200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE wallet_intent_payment_methods (
        payment_intent_id  text        PRIMARY KEY,
        stripe_customer_id text,
        payment_method_id  text        NOT NULL,
        event_created      timestamptz NOT NULL,
        created_at         timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(
      `CREATE INDEX wallet_intent_payment_methods_created_idx ON wallet_intent_payment_methods (created_at)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE wallet_intent_payment_methods`);
  }
}
