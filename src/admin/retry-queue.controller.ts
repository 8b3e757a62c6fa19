import { Controller, Get, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { AdminTokenGuard } from '../common/admin-token.guard';
import { BIGINT, decodeCursor, encodeCursor, EPOCH_MICROS } from '../common/cursor';
import { QueueRepository } from '../queue/queue.repository';
import { PageQuery } from './dto/page.query';
import { ErrorDto, PendingItemDto, PendingPageDto } from './dto/responses';

@ApiTags('admin')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ type: ErrorDto })
@Controller('admin/retry-queue')
@UseGuards(AdminTokenGuard)
export class RetryQueueController {
  constructor(private readonly queue: QueueRepository) {}

  /** Events still to be handled, in the order they were queued (`next_retry_at` says when each runs). */
  @Get()
  @ApiOkResponse({ type: PendingPageDto })
  async list(@Query() query: PageQuery): Promise<{ items: PendingItemDto[]; next_cursor: string | null }> {
    const after = query.cursor ? decodeCursor(query.cursor, { q: EPOCH_MICROS, e: BIGINT }) : undefined;
    const rows = await this.queue.listPending(query.limit + 1, after && { enqueuedUs: after.q, eventId: after.e });
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((r) => ({
        stripe_event_id: r.stripe_event_id,
        event_type: r.event_type,
        retry_count: r.retry_count,
        next_retry_at: r.next_retry_at.toISOString(),
        last_error: r.last_error,
        locked_by: r.locked_by,
        enqueued_at: r.enqueued_at.toISOString(),
      })),
      next_cursor: rows.length > query.limit && last ? encodeCursor({ q: last.enqueued_us, e: last.event_key }) : null,
    };
  }
}
