import { Controller, Get, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { AdminTokenGuard } from '../common/admin-token.guard';
import type { Page } from '../common/paging';
import { PageQuery } from './dto/page.query';
import { ErrorDto, PendingItemDto, PendingPageDto } from './dto/responses';
import { RetryQueueService } from './retry-queue.service';

@ApiTags('admin')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ type: ErrorDto })
@Controller('admin/retry-queue')
@UseGuards(AdminTokenGuard)
export class RetryQueueController {
  constructor(private readonly retryQueue: RetryQueueService) {}

  /** Events still to be handled, in the order they were queued (`next_retry_at` says when each runs). */
  @Get()
  @ApiOkResponse({ type: PendingPageDto })
  list(@Query() query: PageQuery): Promise<Page<PendingItemDto>> {
    return this.retryQueue.list(query);
  }
}
