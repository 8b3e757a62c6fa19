import { CUSTOMER_EVENTS_SQL } from '../../src/admin/customer-events.repository';
import { STATS_SQL } from '../../src/admin/stats.repository';
import { CUSTOMERS_OF_USER } from '../../src/billing/billing.repository';
import { Database, Executor } from '../../src/database/database';
import { createTestDatabase, TestDatabase } from '../support/database';
import { FAST_QUEUE, settle } from '../support/queue';
import { randomId, stripeEvent } from '../support/stripe';
import { useTestApp } from '../support/test-app';

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

  // The console's charts and customer page: index range scans, never a scan of every event.
  describe('with 30,000 events over ten days', () => {
    beforeAll(async () => {
      await db.pool.query(
        `INSERT INTO subscription_events (stripe_event_id, event_type, status, payload, event_created_at,
                                          received_at, processed_at)
         SELECT 'evt_plan_' || g, 'customer.subscription.updated', 'processed',
                jsonb_build_object('id', 'evt_plan_' || g, 'data', jsonb_build_object('object',
                  jsonb_build_object('object', 'subscription', 'id', 'sub_plan_' || g, 'customer', 'cus_plan_' || CASE WHEN g % 10 = 0 THEN 'busy' ELSE (g % 3000)::text END,
                                     'filler', repeat('x', 500)))),
                now() - g * interval '28.8 seconds', now() - g * interval '28.8 seconds', now() - g * interval '28.8 seconds'
           FROM generate_series(1, 30000) g`,
      );
      await db.pool.query(
        `INSERT INTO webhook_dead_letter_queue (event_id, stripe_event_id, event_type, retry_count, created_at)
         SELECT id, stripe_event_id, event_type, 10, received_at FROM subscription_events WHERE id % 50 = 0`,
      );
      await db.pool.query('VACUUM ANALYZE subscription_events');
      await db.pool.query('VACUUM ANALYZE webhook_dead_letter_queue');
    });

    const explain = async (text: string, params: unknown[]): Promise<string> => {
      const runner = await rowsOf(source);
      try {
        const plan = (await runner.query(`EXPLAIN ${text}`, params)) as Array<{ 'QUERY PLAN': string }>;
        return plan.map((row) => row['QUERY PLAN']).join('\n');
      } finally {
        runner.release();
      }
    };

    it.each([
      ['1 minute', 60],
      ['15 minutes', 96],
      ['1 hour', 168],
    ])('GET /admin/stats (%s buckets) counts each source through its index', async (width, count) => {
      const text = await explain(STATS_SQL, [width, count]);
      expect(text).not.toMatch(/Seq Scan on (subscription_events|webhook_dead_letter_queue)/);
      expect(text).toMatch(/Index Only Scan using subscription_events_received_at_idx/);

      expect(text).toMatch(/Index Only Scan using webhook_dead_letter_queue_created_idx/);
      expect(text).toMatch(/webhook_event_counts_minute_idx/);
    });

    it('GET /admin/stats counts what the window holds', async () => {
      const runner = await rowsOf(source);
      try {
        const rows = (await runner.query(STATS_SQL, ['1 hour', 168])) as Array<{ received: number; dead: number }>;
        const [direct] = (await runner.query(
          `SELECT (SELECT count(*)::int FROM subscription_events WHERE received_at >= w) AS received,
                  (SELECT count(*)::int FROM webhook_dead_letter_queue WHERE created_at >= w) AS dead
             FROM (SELECT date_bin('1 hour', now(), timestamptz 'epoch') - interval '167 hours' AS w) b`,
        )) as Array<{ received: number; dead: number }>;
        expect(direct.received).toBeGreaterThan(20_000); // about 7 of the 10 days
        expect({
          received: rows.reduce((sum, r) => sum + r.received, 0),
          dead: rows.reduce((sum, r) => sum + r.dead, 0),
        }).toEqual(direct);
      } finally {
        runner.release();
      }
    });

    it.each([false, true])(
      'GET /admin/customers/:id/events (cursor: %s) reads the customer index (in its order for a first page)',
      async (after) => {
        // A cursor in the middle of the ten days.
        const middle = String((Date.now() - 5 * 86_400_000) * 1000);
        const params = (customer: string): unknown[] => (after ? [customer, 51, middle, '999999'] : [customer, 51]);
        // 3,000 events: the first page walks the index in order and stops after the page.
        const busy = await explain(CUSTOMER_EVENTS_SQL(after), params('cus_plan_busy'));
        expect(busy).toMatch(/(Index Scan using|Bitmap Index Scan on) subscription_events_customer_idx/);
        expect(busy).not.toMatch(/Seq Scan on subscription_events/);
        if (!after) {
          expect(busy).toMatch(/Index Scan using subscription_events_customer_idx/);
          expect(busy).not.toMatch(/Sort/);
        }
        // A handful of events: fetched through the index (sorting ten rows may then be cheaper).
        const quiet = await explain(CUSTOMER_EVENTS_SQL(after), params('cus_plan_7'));
        expect(quiet).toMatch(/(Index Scan using|Bitmap Index Scan on) subscription_events_customer_idx/);
        expect(quiet).not.toMatch(/Seq Scan on subscription_events/);
      },
    );
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

/**
 * Within an attempt, handlers' statements keep their cached (generic) plans instead of being planned
 * for every event, and those plans stay index lookups although they were made while a table was
 * nearly empty and no ANALYZE followed.
 */
describe('query plans within an attempt', () => {
  const found: { plan?: string; generic?: number } = {};
  const { db, t } = useTestApp(FAST_QUEUE, {
    'test.plan': async (_event, tx: Executor) => {
      await tx.query('ANALYZE customers'); // statistics of a nearly empty table, as on a new install
      await tx.query('PREPARE attempt_lookup(text) AS SELECT 1 FROM customers WHERE stripe_customer_id = $1');
      for (let i = 0; i < 8; i++) {
        await tx.query(`EXECUTE attempt_lookup('cus_attempt_${i}')`); // past the five custom plans
      }
      await tx.query(
        `INSERT INTO customers (stripe_customer_id) SELECT 'cus_attempt_bulk_' || g FROM generate_series(1, 20000) g`,
      );
      const plan = await tx.query<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE attempt_lookup('cus_attempt_bulk_7')`);
      found.plan = plan.rows.map((row) => row['QUERY PLAN']).join('\n');
      const { rows } = await tx.query<{ generic_plans: string }>(
        `SELECT generic_plans FROM pg_prepared_statements WHERE name = 'attempt_lookup'`,
      );
      found.generic = Number(rows[0].generic_plans);
      await tx.query('DEALLOCATE attempt_lookup');
    },
  });

  it('a lookup prepared while the table was small is planned once and stays an index scan as it grows', async () => {
    const event = stripeEvent('test.plan', { id: randomId('obj') });
    expect((await t.deliver(event)).status).toBe(200);
    expect(await settle(t, db.pool, event.id as string)).toMatchObject({ status: 'processed' });
    expect(found.generic).toBeGreaterThan(0);
    expect(found.plan).toMatch(/Index (Only )?Scan/);
    expect(found.plan).not.toMatch(/Seq Scan/);
  });
});
