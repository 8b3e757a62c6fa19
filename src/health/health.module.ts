import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { DatabaseIndicators } from './database.indicators';
import { HealthController } from './health.controller';
import { WebhooksIndicator } from './webhooks.indicator';
import { QueueModule } from '../queue/queue.module';

@Module({
  imports: [TerminusModule.forRoot({ logger: false }), QueueModule],
  controllers: [HealthController],
  providers: [DatabaseIndicators, WebhooksIndicator],
})
export class HealthModule {}
