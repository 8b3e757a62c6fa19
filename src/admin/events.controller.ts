import { Controller, Get, HttpCode, Param, Post, Query, Res, UseGuards } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { Database } from '../database/database';
import { AdminTokenGuard } from '../common/admin-token.guard';
import { AppError, ErrorCode } from '../common/app-error';
import { EventRecord, QueueRepository } from '../queue/queue.repository';
import { RetryWorker } from '../queue/retry-worker.service';
import { Actor } from './actor.decorator';
import { AuditService } from './audit.service';
import { EventQuery, ReprocessQuery } from './dto/console.query';
import { DryRunDto, ErrorDto, EventDto, ReprocessingDto } from './dto/responses';
import { DryRunResult, ReprocessDryRunService } from './reprocess-dry-run.service';
import { sql } from '../database/sql';

@ApiTags('admin')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ type: ErrorDto })
@Controller('admin/events')
@UseGuards(AdminTokenGuard)
export class EventsController {
  constructor(
    private readonly db: Database,
    private readonly queue: QueueRepository,
    private readonly audit: AuditService,
    private readonly worker: RetryWorker,
    private readonly dryRun: ReprocessDryRunService,
  ) {}

  /** An event's processing state; with `include=payload`, also the event as received. */
  @Get(':stripeEventId')
  @ApiOkResponse({ type: EventDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  async find(
    @Param('stripeEventId') stripeEventId: string,
    @Query() query: EventQuery,
  ): Promise<EventRecord & { payload?: unknown }> {
    const id = checkedEventId(stripeEventId);
    const event = await this.queue.findEvent(id);
    if (!event) {
      throw new AppError(ErrorCode.NotFound, `No event ${stripeEventId} has been stored.`);
    }
    if (query.include !== 'payload') {
      return event;
    }
    const { rows } = await sql<{ payload: unknown }>(
      this.db,
      'SELECT payload FROM subscription_events WHERE stripe_event_id = $1',
      [id],
    );
    return { ...event, payload: rows[0]?.payload ?? null };
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
    @Param('stripeEventId') stripeEventId: string,
    @Query() query: ReprocessQuery,
    @Actor() actor: string,
    @Res({ passthrough: true }) response: Response,
  ): Promise<{ reprocessing: true } | DryRunResult> {
    if (query.dry_run === 'true') {
      const result = await this.dryRun.run(checkedEventId(stripeEventId), actor);
      response.status(200);
      return result;
    }
    const id = checkedEventId(stripeEventId);
    const result = await this.db.transaction(async (manager) => {
      const outcome = await this.queue.requeue(manager, id);
      await this.audit.record(manager, { actor, action: 'event.reprocess', target: id, result: outcome });
      return outcome;
    });
    switch (result) {
      case 'done':
        this.worker.nudge();
        return { reprocessing: true };
      case 'not_found':
        throw new AppError(ErrorCode.NotFound, `No event ${id} has been stored.`);
      case 'pending':
        throw new AppError(ErrorCode.Conflict, `Event ${id} is pending: it will be handled without reprocessing.`);
      case 'dead':
        throw new AppError(ErrorCode.Conflict, `Event ${id} is dead: replay its dead letter instead.`);
      case 'discarded':
        throw new AppError(ErrorCode.Conflict, `Event ${id} was discarded.`);
    }
  }
}

/**
 * Event ids are at most 255 characters and hold no NUL (ingest refuses both): such an id was never
 * stored, so it gets 404 as SPEC says, rather than reaching PostgreSQL (a NUL in text fails with 22021).
 */
function checkedEventId(id: string): string {
  if (id.length > 255) {
    throw new AppError(ErrorCode.NotFound, 'No event with an id longer than 255 characters is ever stored.');
  }
  if (id.includes('\0')) {
    throw new AppError(ErrorCode.NotFound, 'No event with a NUL character in its id is ever stored.');
  }
  return id;
}
