import { join } from 'node:path';
import { embeddedPostgresPassword } from '../config/development-secrets';
import { EmbeddedDatabase, startEmbeddedPostgres } from './embedded-postgres';

/** Where the service's data lives when no DATABASE_URL is given: an embedded server under DATA_DIR. */
export async function resolveDatabase(
  databaseUrl: string | undefined,
  dataDir: string,
  log: (line: string) => void,
): Promise<{ url: string; embedded?: EmbeddedDatabase }> {
  if (databaseUrl) {
    return { url: databaseUrl };
  }
  const embedded = await startEmbeddedPostgres({
    directory: join(dataDir, 'postgres'),
    password: embeddedPostgresPassword(dataDir),
    database: 'stripe_webhooks',
    log,
  });
  return { url: embedded.url, embedded };
}
