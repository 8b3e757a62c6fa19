import { Module } from '@nestjs/common';
import { QueueModule } from '../queue/queue.module';
import { AdminTokenGuard } from './admin-token.guard';
import { EventsController } from './events.controller';

@Module({
  imports: [QueueModule],
  controllers: [EventsController],
  providers: [AdminTokenGuard],
  exports: [AdminTokenGuard],
})
export class AdminModule {}
