import type { DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from './migrations';

export interface DatabaseSettings {
  url: string;
  poolSize: number;
  /** Shown in pg_stat_activity, so that operators can tell replicas and tools apart. */
  applicationName?: string;
}

/** The one DataSource definition, shared by the Nest app and the migration CLI. */
export function dataSourceOptions(settings: DatabaseSettings): DataSourceOptions {
  return {
    type: 'postgres',
    url: settings.url,
    poolSize: settings.poolSize,
    applicationName: settings.applicationName ?? 'stripe-webhook-processor',
    // Fail fast when the database is unreachable: a webhook then gets 503 in seconds and Stripe retries.
    connectTimeoutMS: 5_000,
    extra: {
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      // Hot statements are named prepared statements. PostgreSQL would switch each to a generic plan
      // after five runs and keep it until the next ANALYZE: planned while a table was nearly empty,
      // that is a sequential scan, and without autovacuum it stays one while the table grows (a
      // 100,000-event drain fell from ~650 to ~320 events/s). A custom plan per run costs about
      // 0.2 ms of PostgreSQL CPU per event (BENCHMARKS.md): the price of plans that stay right.
      options: '-c plan_cache_mode=force_custom_plan',
    },
    entities: [],
    synchronize: false,
    migrations: MIGRATIONS,
    migrationsTableName: 'typeorm_migrations',
    migrationsTransactionMode: 'each',
    logging: false,
  };
}
