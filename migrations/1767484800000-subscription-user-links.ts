import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The user a Checkout Session links to its subscription (client_reference_id), kept by subscription
 * id so that the link holds when checkout.session.completed arrives before the subscription. A row
 * with no user_id only marks a subscription already seen: inserting it makes a concurrent checkout
 * and subscription event conflict on the key, so that neither misses the other's write.
 */
export class SubscriptionUserLinks1767484800000 implements MigrationInterface {
  name = 'SubscriptionUserLinks1767484800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE subscription_user_links (
        stripe_subscription_id text        PRIMARY KEY,
        user_id                text,
        created_at             timestamptz NOT NULL DEFAULT now(),
        updated_at             timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE subscription_user_links`);
  }
}
