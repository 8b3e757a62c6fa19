import { Module } from '@nestjs/common';
import { QueueModule } from '../queue/queue.module';
import { ReconcileModule } from '../reconcile/reconcile.module';
import { AuditLogController } from './audit-log.controller';
import { AuditService } from './audit.service';
import { DeadLettersController } from './dead-letters.controller';
import { DeadLettersService } from './dead-letters.service';
import { EventsController } from './events.controller';
import { ReconcileController } from './reconcile.controller';
import { RetryQueueController } from './retry-queue.controller';

@Module({
  imports: [QueueModule, ReconcileModule],
  controllers: [DeadLettersController, RetryQueueController, EventsController, AuditLogController, ReconcileController],
  providers: [AuditService, DeadLettersService],
})
export class AdminModule {}
