import { Module } from '@nestjs/common';
import { QueueModule } from '../queue/queue.module';
import { AuditLogController } from './audit-log.controller';
import { AuditService } from './audit.service';
import { DeadLettersController } from './dead-letters.controller';
import { DeadLettersService } from './dead-letters.service';
import { EventsController } from './events.controller';
import { EventsService } from './events.service';
import { RetryQueueController } from './retry-queue.controller';
import { RetryQueueService } from './retry-queue.service';

@Module({
  imports: [QueueModule],
  controllers: [DeadLettersController, RetryQueueController, EventsController, AuditLogController],
  providers: [AuditService, DeadLettersService, EventsService, RetryQueueService],
})
export class AdminModule {}
