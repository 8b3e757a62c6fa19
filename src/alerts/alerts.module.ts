import { Module } from '@nestjs/common';
import { QueueModule } from '../queue/queue.module';
import { AlertService } from './alert.service';
import { DeadLetterAlerts } from './dead-letter-alerts.service';

@Module({
  imports: [QueueModule],
  providers: [AlertService, DeadLetterAlerts],
  exports: [AlertService],
})
export class AlertsModule {}
