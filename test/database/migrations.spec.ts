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
