import { CUSTOMERS_OF_USER } from '../../src/billing/billing.repository';
import { Database } from '../../src/database/database';
import { createTestDatabase, TestDatabase } from '../support/database';

/**
 * The hot statements are named prepared statements. With PostgreSQL's default plan cache, a plan
 * made while a table was nearly empty (a sequential scan) is kept while the table grows, until the
 * next ANALYZE, which never comes when autovacuum is off: the service's connections plan each run.
 */
describe('query plans on the service connections', () => {
  let db: TestDatabase;
  let source: Database;

  beforeAll(async () => {
    db = await createTestDatabase();
    source = new Database({ url: db.url, poolSize: 2, statementTimeoutMs: 10_000 });
  });
  afterAll(async () => {
    await source.end();
    await db.drop();
  });

  it('keeps using the index for a lookup prepared while the table was empty, after it grew', async () => {
    const runner = await rowsOf(source);
    try {
      expect(await runner.query('SHOW plan_cache_mode')).toEqual([{ plan_cache_mode: 'force_custom_plan' }]);
      await runner.query('ANALYZE customers');
      await runner.query('PREPARE lookup(text) AS SELECT 1 FROM customers WHERE stripe_customer_id = $1');
      for (let i = 0; i < 8; i++) {
        await runner.query(`EXECUTE lookup('cus_${i}')`); // past the five runs after which a generic plan may stick
      }
      await runner.query(
        `INSERT INTO customers (stripe_customer_id) SELECT 'cus_bulk_' || g FROM generate_series(1, 20000) g`,
      );
      const plan = (await runner.query(`EXPLAIN EXECUTE lookup('cus_bulk_7')`)) as Array<{ 'QUERY PLAN': string }>;
      const text = plan.map((row) => row['QUERY PLAN']).join('\n');
      expect(text).toMatch(/Index (Only )?Scan/);
      expect(text).not.toMatch(/Seq Scan/);
    } finally {
      runner.release();
    }
  });

  // GET /v1/users/:userId/entitlements looks up the user's customers on every request.
  it('uses indexes, not a scan of every customer, with a few thousand customers', async () => {
    await db.pool.query(
      `INSERT INTO customers (stripe_customer_id, user_id)
       SELECT 'cus_plan_' || g, CASE WHEN g % 2 = 0 THEN 'user_plan_' || g END FROM generate_series(1, 5000) g`,
    );
    await db.pool.query(
      `INSERT INTO subscriptions (stripe_subscription_id, stripe_customer_id, status, user_id,
                                  last_event_created, last_event_rank, last_event_id)
       SELECT 'sub_plan_' || g, 'cus_plan_' || g, 'active', 'user_plan_' || g, now(), 1, 'evt_plan_' || g
         FROM generate_series(1, 5000) g`,
    );
    await db.pool.query('ANALYZE customers');
    await db.pool.query('ANALYZE subscriptions');

    const runner = await rowsOf(source);
    try {
      // Through the service's own connection settings (plan_cache_mode) and with a bound parameter.
      const plan = (await runner.query(`EXPLAIN ${CUSTOMERS_OF_USER}`, ['user_plan_7'])) as Array<{
        'QUERY PLAN': string;
      }>;
      const text = plan.map((row) => row['QUERY PLAN']).join('\n');
      expect(text).not.toMatch(/Seq Scan/);
      expect(text).toMatch(/Index (Only )?Scan using customers_user_id_idx|Bitmap Index Scan on customers_user_id_idx/);
      expect(text).toMatch(
        /Index (Only )?Scan using subscriptions_user_id_idx|Bitmap Index Scan on subscriptions_user_id_idx/,
      );
      // And it answers: user_plan_7 only through its subscription, user_plan_8 both ways (once).
      expect(await runner.query(CUSTOMERS_OF_USER, ['user_plan_7'])).toEqual([
        expect.objectContaining({ stripe_customer_id: 'cus_plan_7', user_id: null }),
      ]);
      expect(await runner.query(CUSTOMERS_OF_USER, ['user_plan_8'])).toEqual([
        expect.objectContaining({ stripe_customer_id: 'cus_plan_8', user_id: 'user_plan_8' }),
      ]);
    } finally {
      runner.release();
    }
  });
});

/** One of the service's connections, answering rows (as the assertions read them). */
async function rowsOf(source: Database) {
  const connection = await source.connect();
  return {
    query: async (text: string, params: unknown[] = []) => (await connection.query(text, params)).rows,
    release: () => connection.release(),
  };
}
