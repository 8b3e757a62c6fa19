import { EventsRepository } from '../../src/admin/events.repository';
import { Database } from '../../src/database/database';
import { DeadLettersRepository } from '../../src/queue/dead-letters.repository';
import { ReconcileRepository } from '../../src/reconcile/reconcile.repository';
import { createTestDatabase, TestDatabase } from '../support/database';

/** A Database that records the statement a repository method sends instead of running it. */
function recorder(): { db: Database; last: () => { text: string; params: unknown[] } } {
  let last: { text: string; params: unknown[] } | undefined;
  const db = {
    query: (text: string, params: unknown[] = []) => {
      last = { text, params };
      return Promise.resolve({ rows: [{ now: '0' }], rowCount: 0 });
    },
  } as unknown as Database;
  return { db, last: () => last as { text: string; params: unknown[] } };
}

/**
 * With many events and accounts, the Connect reads go through their indexes: an account's events
 * (GET /admin/events?account=), its open dead letters (GET /admin/dead-letters?account=), and the
 * accounts a sweep covers (one probe per account, not a scan of every event).
 */
describe('query plans of the Connect reads', () => {
  let db: TestDatabase;
  let source: Database;

  beforeAll(async () => {
    db = await createTestDatabase();
    source = new Database({ url: db.url, poolSize: 1, statementTimeoutMs: 10_000 });
    await db.pool.query(
      `INSERT INTO subscription_events (stripe_event_id, event_type, status, payload, account_id, received_at, event_created_at)
       SELECT 'evt_plan_' || g, 'customer.updated', 'processed', jsonb_build_object('filler', repeat('x', 300)),
              CASE WHEN g % 3 = 0 THEN NULL ELSE 'acct_plan' || (g % 300) END,
              now() - g * interval '20 seconds', now() - g * interval '20 seconds'
         FROM generate_series(1, 40000) g`,
    );
    await db.pool.query(
      `INSERT INTO webhook_dead_letter_queue (event_id, stripe_event_id, event_type, retry_count, account_id, created_at)
       SELECT id, stripe_event_id, event_type, 10, account_id, received_at FROM subscription_events WHERE id % 4 = 0`,
    );
    await db.pool.query('VACUUM ANALYZE subscription_events');
    await db.pool.query('VACUUM ANALYZE webhook_dead_letter_queue');
  });
  afterAll(async () => {
    await source.end();
    await db.drop();
  });

  /** The plan of a statement on one of the service's connections (its plan settings). */
  async function explain(statement: { text: string; params: unknown[] }): Promise<string> {
    const connection = await source.connect();
    try {
      const { rows } = await connection.query(`EXPLAIN ${statement.text}`, statement.params);
      return (rows as Array<{ 'QUERY PLAN': string }>).map((row) => row['QUERY PLAN']).join('\n');
    } finally {
      connection.release();
    }
  }

  it.each([false, true])('GET /admin/events?account= (cursor: %s) reads the account index', async (after) => {
    const { db: fake, last } = recorder();
    await new EventsRepository(fake).list(
      'acct_plan7',
      51,
      after ? { sortUs: String((Date.now() - 3_600_000) * 1000), eventKey: '999999' } : undefined,
    );
    const plan = await explain(last());
    expect(plan).toMatch(/(Index Scan using|Bitmap Index Scan on) subscription_events_account_idx/);
    expect(plan).not.toMatch(/Seq Scan on subscription_events/);
  });

  it('GET /admin/dead-letters?account= reads the open dead letters of the account from their index', async () => {
    const { db: fake, last } = recorder();
    await new DeadLettersRepository(fake).listOpen({ account: 'acct_plan7' }, 51);
    const plan = await explain(last());
    expect(plan).toMatch(/(Index Scan using|Bitmap Index Scan on) webhook_dead_letter_queue_open_account_created_idx/);
    expect(plan).not.toMatch(/Seq Scan/);
  });

  it('finds the accounts to sweep by probing the account index, and finds each of them once', async () => {
    const { db: fake, last } = recorder();
    await new ReconcileRepository(fake).accountsToSweep(30 * 24 * 3600);
    const plan = await explain(last());
    expect(plan).toMatch(/Index Only Scan using subscription_events_account_idx/);
    expect(plan).not.toMatch(/Seq Scan on subscription_events/);

    const accounts = await new ReconcileRepository(source).accountsToSweep(30 * 24 * 3600);
    const { rows } = await db.pool.query<{ account_id: string }>(
      `SELECT DISTINCT account_id FROM subscription_events
        WHERE account_id IS NOT NULL AND received_at >= now() - interval '30 days' ORDER BY 1`,
    );
    expect(accounts).toEqual(rows.map((r) => r.account_id));
    expect(accounts).toHaveLength(200); // g % 300 over the two thirds with an account: 200 of 300 values
  });
});
