import { DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { LoggerModule } from 'nestjs-pino';
import { AdminModule } from './admin/admin.module';
import { BillingModule } from './billing/billing.module';
import { loggerOptions } from './common/logger-options';
import { AppConfig } from './config/app-config';
import { CoreModule } from './core/core.module';
import { DatabaseModule } from './database/database.module';
import { HealthModule } from './health/health.module';
import { MetricsModule } from './metrics/metrics.module';
import { QueueModule } from './queue/queue.module';
import { ReconcileModule } from './reconcile/reconcile.module';
import { leaseMs } from './queue/retry-policy';
import { WebhooksModule } from './webhooks/webhooks.module';

@Module({})
export class AppModule {
  static register(config: AppConfig): DynamicModule {
    if (!config.databaseUrl) {
      throw new Error('DATABASE_URL is not resolved: main starts the embedded server before building the app');
    }
    return {
      module: AppModule,
      imports: [
        CoreModule.forRoot(config),
        LoggerModule.forRoot(loggerOptions(config)),
        DatabaseModule.forRoot({
          url: config.databaseUrl,
          poolSize: config.dbPoolSize,
          // No statement waits on a silent database much longer than a queue row's lease.
          statementTimeoutMs: leaseMs(config.handlerTimeoutMs),
        }),
        ScheduleModule.forRoot(),
        QueueModule,
        MetricsModule,
        BillingModule,
        ReconcileModule,
        WebhooksModule,
        AdminModule,
        HealthModule,
      ],
    };
  }
}
