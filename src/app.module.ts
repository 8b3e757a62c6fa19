import { DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { LoggerModule } from 'nestjs-pino';
import { AdminModule } from './admin/admin.module';
import { BillingModule } from './billing/billing.module';
import { loggerOptions } from './common/logger-options';
import { AppConfig } from './config/app-config';
import { CoreModule } from './config/core.module';
import { DatabaseModule } from './database/database.module';
import { HealthModule } from './health/health.module';
import { MetricsModule } from './metrics/metrics.module';
import { QueueModule } from './queue/queue.module';
import { ReconcileModule } from './reconcile/reconcile.module';
import { WebhooksModule } from './webhooks/webhooks.module';

@Module({})
export class AppModule {
  static register(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        CoreModule.forRoot(config),
        LoggerModule.forRoot(loggerOptions(config)),
        DatabaseModule.forRoot(),
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
