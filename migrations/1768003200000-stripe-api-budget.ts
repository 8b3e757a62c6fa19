import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `stripe_api_budget`: the Stripe API requests made in each second of the database clock by every
 * replica together, so that STRIPE_API_MAX_RPS holds for the whole service. One row per second of a
 * minute (`slot` = the second modulo 60), reused as the minute turns: no row is ever added or pruned.
 */
export class StripeApiBudget1768003200000 implements MigrationInterface {
  name = 'StripeApiBudget1768003200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE IF NOT EXISTS stripe_api_budget (
        slot smallint PRIMARY KEY CHECK (slot BETWEEN 0 AND 59),
        second bigint NOT NULL,
        used integer NOT NULL
      )`);
    await q.query(`
      INSERT INTO stripe_api_budget (slot, second, used)
      SELECT s, 0, 0 FROM generate_series(0, 59) s
      ON CONFLICT (slot) DO NOTHING`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE IF EXISTS stripe_api_budget');
  }
}
