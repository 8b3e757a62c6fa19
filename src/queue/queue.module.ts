import { Module } from '@nestjs/common';
import { DeadLettersRepository } from './dead-letters.repository';
import { Dispatcher } from './dispatcher.service';
import { EventProcessor } from './event-processor';
import { HandlerRegistry } from './handler-registry';
import { QueueEvents } from './queue-events';
import { QueueStatsService } from './queue-stats.service';
import { QueueRepository } from './queue.repository';
import { RetentionService } from './retention.service';
import { RetryWorker } from './retry-worker.service';

@Module({
  providers: [
    HandlerRegistry,
    QueueRepository,
    DeadLettersRepository,
    QueueEvents,
    QueueStatsService,
    EventProcessor,
    Dispatcher,
    RetryWorker,
    RetentionService,
  ],
  exports: [
    HandlerRegistry,
    QueueRepository,
    DeadLettersRepository,
    QueueEvents,
    QueueStatsService,
    Dispatcher,
    RetryWorker,
    RetentionService,
  ],
})
export class QueueModule {}
