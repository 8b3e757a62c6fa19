import { Module } from '@nestjs/common';
import { QueueModule } from '../queue/queue.module';
import { EventsController } from './events.controller';

@Module({
  imports: [QueueModule],
  controllers: [EventsController],
})
export class AdminModule {}
