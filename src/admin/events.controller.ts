import { Controller, Get, Param, UseGuards } from '@nestjs/common';
import { AppError, ErrorCode } from '../common/app-error';
import { EventRecord, QueueRepository } from '../queue/queue.repository';
import { AdminTokenGuard } from '../common/admin-token.guard';

@Controller('admin/events')
@UseGuards(AdminTokenGuard)
export class EventsController {
  constructor(private readonly queue: QueueRepository) {}

  /** An event's processing state. */
  @Get(':stripeEventId')
  async find(@Param('stripeEventId') stripeEventId: string): Promise<EventRecord> {
    if (stripeEventId.length > 255) {
      throw new AppError(ErrorCode.InvalidRequest, 'The event id is too long.');
    }
    const event = await this.queue.findEvent(stripeEventId);
    if (!event) {
      throw new AppError(ErrorCode.NotFound, `No event ${stripeEventId} has been stored.`);
    }
    return event;
  }
}
