import { Module } from '@nestjs/common';
import { Dispatcher } from './dispatcher.service';
import { EventProcessor } from './event-processor';
import { HandlerRegistry } from './handler-registry';
import { QueueEvents } from './queue-events';
import { QueueRepository } from './queue.repository';
import { RetentionService } from './retention.service';
import { RetryWorker } from './retry-worker.service';

@Module({
  providers: [HandlerRegistry, QueueRepository, QueueEvents, EventProcessor, Dispatcher, RetryWorker, RetentionService],
  exports: [HandlerRegistry, QueueRepository, QueueEvents, Dispatcher, RetryWorker, RetentionService],
})
export class QueueModule {}
