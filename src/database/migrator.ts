import type { DataSource, Migration, QueryRunner } from 'typeorm';
import { MIGRATIONS_TABLE } from './data-source-options';
import { MIGRATIONS } from './migrations';

/** Any constant shared by every replica; pg_advisory_lock serialises whoever migrates. */
const MIGRATION_LOCK_KEY = 4_242_001;
/** How often a replica waiting for another's migrations tries the lock again. */
const LOCK_POLL_MS = 250;

/**
 * Applies pending migrations while holding a session-level advisory lock on a connection of its
 * own, so that when many replicas boot at once one migrates and the others wait for it, then find
 * nothing left to do. Each migration runs in its own transaction.
 */
export async function runMigrationsLocked(dataSource: DataSource): Promise<Migration[]> {
  return withMigrationLock(dataSource, () => dataSource.runMigrations({ transaction: 'each' }));
}

export async function revertLastMigrationLocked(dataSource: DataSource): Promise<void> {
  await withMigrationLock(dataSource, () => dataSource.undoLastMigration({ transaction: 'each' }));
}

async function withMigrationLock<T>(dataSource: DataSource, work: () => Promise<T>): Promise<T> {
  const lock = dataSource.createQueryRunner();
  await lock.connect();
  try {
    // Tried, not waited for inside one statement: a replica blocked in pg_advisory_lock would hold a
    // snapshot open, and CREATE INDEX CONCURRENTLY in the migration it waits for waits for that
    // snapshot in turn.
    while (!(await tryLock(lock))) {
      await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
    }
    try {
      return await work();
    } finally {
      await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await lock.release();
  }
}

async function tryLock(lock: QueryRunner): Promise<boolean> {
  const [{ locked }] = (await lock.query('SELECT pg_try_advisory_lock($1) AS locked', [MIGRATION_LOCK_KEY])) as Array<{
    locked: boolean;
  }>;
  return locked;
}

/** Runs one statement and returns its rows. */
export type RowQuery = (text: string, params: unknown[]) => Promise<Array<Record<string, unknown>>>;

/**
 * Names of the migrations this build knows and the database has not applied; `query` runs the two
 * reads (the service passes a bounded one, the CLI its DataSource).
 */
export async function pendingMigrations(query: RowQuery): Promise<string[]> {
  const [table] = await query('SELECT to_regclass($1) IS NOT NULL AS exists', [MIGRATIONS_TABLE]);
  const applied = new Set(
    table?.exists === true ? (await query(`SELECT name FROM ${MIGRATIONS_TABLE}`, [])).map((r) => r.name) : [],
  );
  return MIGRATIONS.map((m) => m.name).filter((name) => !applied.has(name));
}
