import { randomBytes } from 'node:crypto';
import { Client, Pool } from 'pg';

export interface TestDatabase {
  url: string;
  /** A small pool for the test's own assertions and setup. */
  pool: Pool;
  drop(): Promise<void>;
}

function adminUrl(): string {
  const url = process.env.SWP_TEST_ADMIN_URL;
  if (!url) {
    throw new Error('SWP_TEST_ADMIN_URL is not set: run the tests through Jest (global setup provides it)');
  }
  return url;
}

/** A fresh, migrated database cloned from the run's template; dropped by `drop()`. */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const template = process.env.SWP_TEST_TEMPLATE as string;
  const name = `${template}_${randomBytes(5).toString('hex')}`;
  const admin = new Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(
          options.migrated === false ? `CREATE DATABASE ${name}` : `CREATE DATABASE ${name} TEMPLATE ${template}`,
        );
        break;
      } catch (error) {
        // 55006: the template is briefly in use by another worker's CREATE DATABASE.
        if ((error as { code?: string }).code !== '55006' || attempt >= 20) {
          throw error;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } finally {
    await admin.end();
  }
  const parsed = new URL(adminUrl());
  parsed.pathname = `/${name}`;
  const url = parsed.toString();
  const pool = new Pool({ connectionString: url, max: 4 });
  return {
    url,
    pool,
    drop: async () => {
      // pool.end() resolves before the server has closed every backend; DROP … WITH (FORCE) then
      // terminates the stragglers, whose "terminating connection" would otherwise crash the run.
      pool.on('error', () => undefined);
      await pool.end();
      const client = new Client({ connectionString: adminUrl() });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

export async function count(pool: Pool, table: string, where = 'true', params: unknown[] = []): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE ${where}`, params);
  return Number(rows[0].n);
}
