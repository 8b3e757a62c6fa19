import { Controller, Get, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { AdminTokenGuard } from '../common/admin-token.guard';
import { BIGINT, decodeCursor, encodeCursor } from '../common/cursor';
import { AuditRecord, AuditService } from './audit.service';
import { PageQuery } from './dto/page.query';
import { AuditPageDto, ErrorDto } from './dto/responses';

@ApiTags('admin')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ type: ErrorDto })
@Controller('admin/audit-log')
@UseGuards(AdminTokenGuard)
export class AuditLogController {
  constructor(private readonly audit: AuditService) {}

  /** Admin actions, newest first: who (the token's holder), what, on what, with what result. */
  @Get()
  @ApiOkResponse({ type: AuditPageDto })
  async list(@Query() query: PageQuery): Promise<{ items: AuditRecord[]; next_cursor: string | null }> {
    const before = query.cursor ? decodeCursor(query.cursor, { id: BIGINT }).id : undefined;
    const rows = await this.audit.list(query.limit + 1, before);
    const items = rows.slice(0, query.limit);
    const last = items[items.length - 1];
    return { items, next_cursor: rows.length > query.limit && last ? encodeCursor({ id: String(last.id) }) : null };
  }
}
