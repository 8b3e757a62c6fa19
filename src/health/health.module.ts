import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { DatabaseIndicators } from './database.indicators';
import { HealthController } from './health.controller';
import { WebhooksIndicator } from './webhooks.indicator';
import { QueueModule } from '../queue/queue.module';
import { ReconcileModule } from '../reconcile/reconcile.module';

@Module({
  imports: [TerminusModule.forRoot({ logger: false }), QueueModule, ReconcileModule],
  controllers: [HealthController],
  providers: [DatabaseIndicators, WebhooksIndicator],
})
export class HealthModule {}
