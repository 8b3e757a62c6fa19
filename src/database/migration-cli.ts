import { DataSource } from 'typeorm';
import { readEnvironment } from '../config/environment-source';
import { dataDirectory } from '../config/environment-variables';
import { resolveDatabase } from './database-location';
import { dataSourceOptions } from './data-source-options';
import { pendingMigrations, revertLastMigrationLocked, runMigrationsLocked } from './migrator';
import { errorMessage } from '../common/error-message';

/**
 * `npm run migration:run | migration:revert | migration:show`: the same DataSource definition and
 * advisory lock as the service's boot-time migrations. Needs only DATABASE_URL (or the embedded
 * server under DATA_DIR), not the service's secrets, so that it can run as a separate deploy step.
 */
async function main(command: string | undefined): Promise<void> {
  if (command !== 'run' && command !== 'revert' && command !== 'show') {
    throw new Error('usage: migration-cli run | revert | show');
  }
  const env = readEnvironment();
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const { url, embedded } = await resolveDatabase(env.DATABASE_URL?.trim() || undefined, dataDirectory(env), log);
  const dataSource = new DataSource(dataSourceOptions({ url, applicationName: 'migration-cli' }));
  await dataSource.initialize();
  try {
    if (command === 'run') {
      const applied = await runMigrationsLocked(dataSource);
      log(applied.length ? `applied: ${applied.map((m) => m.name).join(', ')}` : 'no pending migrations');
    } else if (command === 'revert') {
      await revertLastMigrationLocked(dataSource);
      log('reverted the last applied migration');
    } else {
      const pending = await pendingMigrations((text, params) => dataSource.query(text, params));
      log(pending.length ? `pending: ${pending.join(', ')}` : 'all migrations applied');
    }
  } finally {
    await dataSource.destroy();
    await embedded?.stop();
  }
}

main(process.argv[2]).catch((error: unknown) => {
  process.stderr.write(`${errorMessage(error)}\n`);
  process.exit(1);
});
