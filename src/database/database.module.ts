import { DynamicModule, Injectable, Logger, Module, OnModuleInit } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { dataSourceOptions } from './data-source-options';
import { runMigrationsLocked } from './migrator';

/** Applies pending migrations at boot (unless DB_MIGRATE_ON_BOOT=false), before any module starts work. */
@Injectable()
export class MigrateOnBoot implements OnModuleInit {
  private readonly logger = new Logger(MigrateOnBoot.name);

  constructor(
    private readonly config: AppConfig,
    private readonly dataSource: DataSource,
  ) {}

  async onModuleInit(): Promise<void> {
    if (!this.config.dbMigrateOnBoot) {
      return;
    }
    const applied = await runMigrationsLocked(this.dataSource);
    if (applied.length > 0) {
      this.logger.log({ migrations: applied.map((m) => m.name) }, 'migrations applied');
    }
  }
}

@Module({})
export class DatabaseModule {
  static forRoot(): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          inject: [AppConfig],
          useFactory: (config: AppConfig) => {
            if (!config.databaseUrl) {
              throw new Error('DATABASE_URL is not resolved: main starts the embedded server before building the app');
            }
            return {
              ...dataSourceOptions({ url: config.databaseUrl, poolSize: config.dbPoolSize }),
              retryAttempts: 10,
              retryDelay: 3_000,
            };
          },
        }),
      ],
      providers: [MigrateOnBoot],
    };
  }
}
