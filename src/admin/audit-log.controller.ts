import { Controller, Get, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { AdminTokenGuard } from '../common/admin-token.guard';
import type { Page } from '../common/paging';
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
  list(@Query() query: PageQuery): Promise<Page<AuditRecord>> {
    return this.audit.list(query);
  }
}
