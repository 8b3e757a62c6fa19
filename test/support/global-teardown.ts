import { Client } from 'pg';

export default async function globalTeardown(): Promise<void> {
  const adminUrl = process.env.SWP_TEST_ADMIN_URL;
  const template = process.env.SWP_TEST_TEMPLATE;
  if (adminUrl && template) {
    const admin = new Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      // Databases left by a test file that crashed before its own cleanup, then the template.
      const { rows } = await admin.query<{ datname: string }>(
        `SELECT datname FROM pg_database WHERE datname LIKE $1 OR datname = $2`,
        [`${template}_%`, template],
      );
      for (const { datname } of rows) {
        await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(datname)} WITH (FORCE)`);
      }
    } finally {
      await admin.end();
    }
  }
  const embedded = (globalThis as Record<string, unknown>).__SWP_EMBEDDED__ as { stop(): Promise<void> } | undefined;
  await embedded?.stop();
}
