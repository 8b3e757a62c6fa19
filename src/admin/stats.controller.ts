import { Controller, Get, Query, UseGuards } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiOkResponse, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { AdminTokenGuard } from '../common/admin-token.guard';
import { StatsQuery } from './dto/console.query';
import { ErrorDto, StatsDto } from './dto/responses';
import { StatsBucket } from './stats.repository';
import { StatsService } from './stats.service';

@ApiTags('admin')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ type: ErrorDto })
@Controller('admin/stats')
@UseGuards(AdminTokenGuard)
export class StatsController {
  constructor(private readonly stats: StatsService) {}

  /**
   * Events received, processed (or ignored), retried and dead-lettered per bucket, counted from the
   * database so that every replica's work is included; the last bucket is the current one.
   */
  @Get()
  @ApiOkResponse({ type: StatsDto })
  @ApiBadRequestResponse({ type: ErrorDto, description: 'invalid_request: window is not 1h, 24h or 7d' })
  buckets(@Query() query: StatsQuery): Promise<{ buckets: StatsBucket[] }> {
    return this.stats.buckets(query.window);
  }
}
