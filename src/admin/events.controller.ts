import { Controller, Get, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { AdminTokenGuard } from '../common/admin-token.guard';
import { StoredIdPipe } from '../common/stored-id.pipe';
import type { EventRecord } from '../queue/queue.repository';
import { Actor } from './actor.decorator';
import { ErrorDto, EventDto, ReprocessingDto } from './dto/responses';
import { EventsService } from './events.service';

const eventIdPipe = new StoredIdPipe('event');

@ApiTags('admin')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ type: ErrorDto })
@Controller('admin/events')
@UseGuards(AdminTokenGuard)
export class EventsController {
  constructor(private readonly events: EventsService) {}

  /** An event's processing state. */
  @Get(':stripeEventId')
  @ApiOkResponse({ type: EventDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  find(@Param('stripeEventId', eventIdPipe) stripeEventId: string): Promise<EventRecord> {
    return this.events.find(stripeEventId);
  }

  /** Runs the handler of a processed or ignored event again (after a fix): queued, due now. */
  @Post(':stripeEventId/reprocess')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: ReprocessingDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  @ApiConflictResponse({ type: ErrorDto, description: 'pending, dead (replay its dead letter instead) or discarded' })
  reprocess(
    @Param('stripeEventId', eventIdPipe) stripeEventId: string,
    @Actor() actor: string,
  ): Promise<{ reprocessing: true }> {
    return this.events.reprocess(stripeEventId, actor);
  }
}
