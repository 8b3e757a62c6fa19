import type { DataSourceOptions } from 'typeorm';
import { CONNECTION_OPTIONS } from './database';
import { MIGRATIONS } from './migrations';

export const MIGRATIONS_TABLE = 'typeorm_migrations';

export interface MigrationSettings {
  url: string;
  /** Shown in pg_stat_activity. */
  applicationName?: string;
}

/**
 * The TypeORM DataSource that runs migrations, for the service at boot and for the migration CLI.
 * Its statements are not bounded like the service's: a migration, and waiting for the migration
 * lock while another replica migrates, may take as long as they take.
 */
export function dataSourceOptions(settings: MigrationSettings): DataSourceOptions {
  return {
    type: 'postgres',
    url: settings.url,
    poolSize: 2,
    applicationName: settings.applicationName ?? 'stripe-webhook-processor',
    connectTimeoutMS: 5_000,
    extra: { keepAlive: true, options: CONNECTION_OPTIONS },
    entities: [],
    synchronize: false,
    migrations: MIGRATIONS,
    migrationsTableName: MIGRATIONS_TABLE,
    migrationsTransactionMode: 'each',
    logging: false,
  };
}
