import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/database/data-source-options';
import { createTestDatabase, TestDatabase } from '../support/database';

/**
 * The hot statements are named prepared statements. With PostgreSQL's default plan cache, a plan
 * made while a table was nearly empty (a sequential scan) is kept while the table grows, until the
 * next ANALYZE, which never comes when autovacuum is off: the service's connections plan each run.
 */
describe('plan cache of the service connections', () => {
  let db: TestDatabase;
  let source: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    source = await new DataSource(dataSourceOptions({ url: db.url, poolSize: 2 })).initialize();
  });
  afterAll(async () => {
    await source.destroy();
    await db.drop();
  });

  it('keeps using the index for a lookup prepared while the table was empty, after it grew', async () => {
    const runner = source.createQueryRunner();
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
      await runner.release();
    }
  });
});
