import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/database/data-source-options';
import { startEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { runMigrationsLocked } from '../../src/database/migrator';
import { TEST_BUILD_DIR } from './test-env';

/**
 * Real PostgreSQL for the whole run: TEST_DATABASE_URL when set (only used to create and drop the
 * suite's own swp_test_* databases), else an embedded server in a temporary directory. A template database is migrated once;
 * each test file clones it (CREATE DATABASE … TEMPLATE), which is fast and isolates files running
 * in parallel. The service is also compiled once, for the tests that run it as a real process.
 */
export default async function globalSetup(): Promise<void> {
  let adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) {
    const embedded = await startEmbeddedPostgres({
      directory: join('/tmp', `swp-test-pg-${process.pid}`),
      password: 'test',
      database: 'swp_test',
      persistent: false,
    });
    (globalThis as Record<string, unknown>).__SWP_EMBEDDED__ = embedded;
    adminUrl = embedded.adminUrl;
  }
  const template = `swp_test_template_${process.pid}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${template}`);
    await admin.query(`CREATE DATABASE ${template}`);
  } finally {
    await admin.end();
  }
  const templateUrl = withDatabase(adminUrl, template);
  const dataSource = new DataSource(dataSourceOptions({ url: templateUrl }));
  await dataSource.initialize();
  try {
    await runMigrationsLocked(dataSource);
  } finally {
    await dataSource.destroy();
  }
  process.env.SWP_TEST_ADMIN_URL = adminUrl;
  process.env.SWP_TEST_TEMPLATE = template;

  rmSync(TEST_BUILD_DIR, { recursive: true, force: true });
  execFileSync(
    process.execPath,
    [
      require.resolve('typescript/bin/tsc'),
      '-p',
      'tsconfig.build.json',
      '--outDir',
      TEST_BUILD_DIR,
      '--incremental',
      'false',
    ],
    { stdio: 'inherit' },
  );
  // The console's bundle, where the service (run from its sources or from the test build) serves it.
  execFileSync(
    process.execPath,
    [join(TEST_BUILD_DIR, 'scripts', 'build-console.js'), join(__dirname, '..', '..', 'dist', 'console')],
    { stdio: 'inherit' },
  );
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}
