import { Controller, Get, HttpCode, Param, Post, Query, Res, UseGuards } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { AdminTokenGuard } from '../common/admin-token.guard';
import { StoredIdPipe } from '../common/stored-id.pipe';
import type { Page } from '../common/paging';
import type { EventRecord } from '../queue/queue.repository';
import { Actor } from './actor.decorator';
import { EventQuery, ReprocessQuery } from './dto/console.query';
import { AccountPageQuery } from './dto/page.query';
import { DryRunDto, ErrorDto, EventDto, EventPageDto, ReprocessingDto } from './dto/responses';
import { EventListItem, EventsService } from './events.service';
import { DryRunResult, ReprocessDryRunService } from './reprocess-dry-run.service';

const eventIdPipe = new StoredIdPipe('event');

@ApiTags('admin')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ type: ErrorDto })
@Controller('admin/events')
@UseGuards(AdminTokenGuard)
export class EventsController {
  constructor(
    private readonly events: EventsService,
    private readonly dryRun: ReprocessDryRunService,
  ) {}

  /** Stored events, newest received first; `account` keeps those of one connected account. */
  @Get()
  @ApiOkResponse({ type: EventPageDto })
  @ApiBadRequestResponse({ type: ErrorDto, description: 'invalid_request (account, limit, cursor)' })
  list(@Query() query: AccountPageQuery): Promise<Page<EventListItem>> {
    return this.events.list(query);
  }

  /** An event's processing state; with `include=payload`, also the event as received. */
  @Get(':stripeEventId')
  @ApiOkResponse({ type: EventDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  find(
    @Param('stripeEventId', eventIdPipe) stripeEventId: string,
    @Query() query: EventQuery,
  ): Promise<EventRecord & { payload?: unknown }> {
    return this.events.find(stripeEventId, query.include === 'payload');
  }

  /**
   * Runs the handler of a processed or ignored event again (after a fix): queued, due now. With
   * `dry_run=true`, whatever the event's status, runs it in a transaction that is rolled back and
   * answers 200 with the rows it would insert, update or delete.
   */
  @Post(':stripeEventId/reprocess')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: ReprocessingDto })
  @ApiOkResponse({ type: DryRunDto, description: 'dry_run=true: what reprocessing would change; nothing is kept' })
  @ApiNotFoundResponse({ type: ErrorDto })
  @ApiConflictResponse({ type: ErrorDto, description: 'pending, dead (replay its dead letter instead) or discarded' })
  async reprocess(
    @Param('stripeEventId', eventIdPipe) stripeEventId: string,
    @Query() query: ReprocessQuery,
    @Actor() actor: string,
    @Res({ passthrough: true }) response: Response,
  ): Promise<{ reprocessing: true } | DryRunResult> {
    if (query.dry_run === 'true') {
      const result = await this.dryRun.run(stripeEventId, actor);
      response.status(200);
      return result;
    }
    return this.events.reprocess(stripeEventId, actor);
  }
}
