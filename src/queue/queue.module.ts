import { Module } from '@nestjs/common';
import { HandlerRegistry } from './handler-registry';
import { QueueRepository } from './queue.repository';

@Module({
  providers: [HandlerRegistry, QueueRepository],
  exports: [HandlerRegistry, QueueRepository],
})
export class QueueModule {}
