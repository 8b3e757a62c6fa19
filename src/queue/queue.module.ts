import { Module } from '@nestjs/common';
import { DeadLettersRepository } from './dead-letters.repository';
import { Dispatcher } from './dispatcher.service';
import { EventProcessor } from './event-processor';
import { HandlerRegistry } from './handler-registry';
import { IngestBatcher } from './ingest-batcher';
import { QueueEvents } from './queue-events';
import { QueueStatsService } from './queue-stats.service';
import { QueueRepository } from './queue.repository';
import { QueueService } from './queue.service';
import { RetentionService } from './retention.service';
import { RetryWorker } from './retry-worker.service';
import { RowReleaser } from './row-releaser';

@Module({
  providers: [
    HandlerRegistry,
    QueueRepository,
    DeadLettersRepository,
    QueueEvents,
    QueueStatsService,
    RowReleaser,
    IngestBatcher,
    EventProcessor,
    Dispatcher,
    RetryWorker,
    RetentionService,
    QueueService,
  ],
  exports: [
    QueueService,
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
