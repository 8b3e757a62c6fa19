import { DynamicModule, Global, Logger, Module, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { Database, DatabaseSettings } from './database';
import { dataSourceOptions } from './data-source-options';
import { runMigrationsLocked } from './migrator';
import { errorMessage } from '../common/error-message';

/** Tries to reach the database for migrations this many times, this far apart, before start-up fails. */
const MIGRATION_CONNECT_ATTEMPTS = 10;
const MIGRATION_CONNECT_DELAY_MS = 3_000;

/**
 * Applies pending migrations at boot (unless DB_MIGRATE_ON_BOOT=false), before any module starts
 * work, on a TypeORM DataSource of its own that is closed afterwards.
 */
class MigrateOnBoot implements OnModuleInit {
  private readonly logger = new Logger(MigrateOnBoot.name);

  constructor(
    private readonly url: string,
    private readonly enabled: boolean,
  ) {}

  async onModuleInit(): Promise<void> {
    if (!this.enabled) {
      return;
    }
    const dataSource = await this.initialize(new DataSource(dataSourceOptions({ url: this.url })));
    try {
      const applied = await runMigrationsLocked(dataSource);
      if (applied.length > 0) {
        this.logger.log({ migrations: applied.map((m) => m.name) }, 'migrations applied');
      }
    } finally {
      await dataSource.destroy();
    }
  }

  private async initialize(dataSource: DataSource): Promise<DataSource> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await dataSource.initialize();
      } catch (error) {
        if (attempt >= MIGRATION_CONNECT_ATTEMPTS) {
          throw error;
        }
        this.logger.warn({ attempt, error: errorMessage(error) }, 'database not reachable for migrations; retrying');
        await new Promise((resolve) => setTimeout(resolve, MIGRATION_CONNECT_DELAY_MS));
      }
    }
  }
}

/** Closes the pool once everything else has stopped. */
class DatabaseShutdown implements OnApplicationShutdown {
  constructor(private readonly database: Database) {}

  async onApplicationShutdown(): Promise<void> {
    await this.database.end();
  }
}

/** The service's pool (`Database`, injectable everywhere) and the migrations at boot. */
@Global()
@Module({})
export class DatabaseModule {
  static forRoot(settings: DatabaseSettings): DynamicModule {
    return {
      module: DatabaseModule,
      providers: [
        { provide: Database, useFactory: () => new Database(settings) },
        {
          provide: MigrateOnBoot,
          inject: [AppConfig],
          useFactory: (config: AppConfig) => new MigrateOnBoot(settings.url, config.dbMigrateOnBoot),
        },
        { provide: DatabaseShutdown, inject: [Database], useFactory: (db: Database) => new DatabaseShutdown(db) },
      ],
      exports: [Database],
    };
  }
}
