import { Module } from '@nestjs/common';
import { BillingModule } from '../billing/billing.module';
import { QueueModule } from '../queue/queue.module';
import { ReconcileModule } from '../reconcile/reconcile.module';
import { AuditLogController } from './audit-log.controller';
import { AuditService } from './audit.service';
import { ConsoleController } from './console.controller';
import { CustomerEventsRepository } from './customer-events.repository';
import { CustomerEventsService } from './customer-events.service';
import { CustomerSubscriptionsService } from './customer-subscriptions.service';
import { CustomersController } from './customers.controller';
import { DeadLettersController } from './dead-letters.controller';
import { DeadLettersService } from './dead-letters.service';
import { EventsController } from './events.controller';
import { EventsRepository } from './events.repository';
import { ReconcileController } from './reconcile.controller';
import { EventsService } from './events.service';
import { ReprocessDryRunService } from './reprocess-dry-run.service';
import { RetryQueueController } from './retry-queue.controller';
import { RetryQueueService } from './retry-queue.service';
import { StatsController } from './stats.controller';
import { StatsRepository } from './stats.repository';
import { StatsService } from './stats.service';

@Module({
  imports: [QueueModule, BillingModule, ReconcileModule],
  controllers: [
    DeadLettersController,
    RetryQueueController,
    EventsController,
    AuditLogController,
    CustomersController,
    StatsController,
    ConsoleController,
    ReconcileController,
  ],
  providers: [
    AuditService,
    DeadLettersService,
    EventsService,
    EventsRepository,
    RetryQueueService,
    CustomerEventsRepository,
    CustomerEventsService,
    CustomerSubscriptionsService,
    StatsRepository,
    StatsService,
    ReprocessDryRunService,
  ],
})
export class AdminModule {}
