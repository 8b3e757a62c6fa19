import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/database/data-source-options';
import { MIGRATIONS } from '../../src/database/migrations';
import { pendingMigrations, revertLastMigrationLocked, runMigrationsLocked } from '../../src/database/migrator';
import { createTestDatabase, TestDatabase } from '../support/database';

describe('migrations', () => {
  let db: TestDatabase;
  const sources: DataSource[] = [];

  async function dataSource(): Promise<DataSource> {
    const source = new DataSource(dataSourceOptions({ url: db.url }));
    sources.push(source);
    return source.initialize();
  }

  beforeEach(async () => {
    db = await createTestDatabase({ migrated: false });
  });
  afterEach(async () => {
    await Promise.all(sources.splice(0).map((s) => s.destroy()));
    await db.drop();
  });

  it('migrates a fresh database, creating the tables operators query', async () => {
    const source = await dataSource();
    expect(await pendingMigrations((text, params) => source.query(text, params))).toEqual(
      MIGRATIONS.map((m) => m.name),
    );
    await runMigrationsLocked(source);
    expect(await pendingMigrations((text, params) => source.query(text, params))).toEqual([]);
    const { rows } = await db.pool.query<{ t: string }>(
      `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
    );
    expect(rows.map((r) => r.t)).toEqual(
      expect.arrayContaining([
        'subscription_events',
        'webhook_retry_queue',
        'webhook_dead_letter_queue',
        'admin_audit_log',
      ]),
    );
  });

  it("records each event's source (webhook by default, checked) and account, and the reconciliation tables", async () => {
    const source = await dataSource();
    await runMigrationsLocked(source);
    await db.pool.query(
      `INSERT INTO subscription_events (stripe_event_id, event_type, payload) VALUES ('evt_a', 't', '{}')`,
    );
    const { rows } = await db.pool.query(`SELECT source, account_id FROM subscription_events`);
    expect(rows).toEqual([{ source: 'webhook', account_id: null }]);
    await expect(
      db.pool.query(
        `INSERT INTO subscription_events (stripe_event_id, event_type, payload, source) VALUES ('evt_b', 't', '{}', 'pigeon')`,
      ),
    ).rejects.toMatchObject({ code: '23514' });
    await db.pool.query(
      `INSERT INTO reconcile_runs (trigger, scheduled_for, since, until) VALUES ('schedule', 'epoch', now(), now())`,
    );
    await expect(
      db.pool.query(
        `INSERT INTO reconcile_runs (trigger, scheduled_for, since, until) VALUES ('schedule', 'epoch', now(), now())`,
      ),
    ).rejects.toMatchObject({ code: '23505' }); // one run per cron tick
    await db.pool.query(`INSERT INTO reconcile_checkpoints (account_id, checkpoint_at) VALUES ('', now())`);
  });

  it('lets several replicas migrate at once: all succeed, each migration applied once', async () => {
    const replicas = await Promise.all([dataSource(), dataSource(), dataSource(), dataSource()]);
    const results = await Promise.all(replicas.map((source) => runMigrationsLocked(source)));
    expect(results.map((applied) => applied.length).sort()).toEqual([0, 0, 0, MIGRATIONS.length]);
    const { rows } = await db.pool.query('SELECT name FROM typeorm_migrations');
    expect(rows).toHaveLength(MIGRATIONS.length);
  });

  it('reverts the last migration and applies it again', async () => {
    const source = await dataSource();
    await runMigrationsLocked(source);
    await revertLastMigrationLocked(source);
    expect(await pendingMigrations((text, params) => source.query(text, params))).toEqual([
      MIGRATIONS[MIGRATIONS.length - 1].name,
    ]);
    await runMigrationsLocked(source);
    expect(await pendingMigrations((text, params) => source.query(text, params))).toEqual([]);
  });
});
