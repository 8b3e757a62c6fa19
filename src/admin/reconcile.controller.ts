import { Body, Controller, Get, HttpCode, Param, Post, Query, UseGuards } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { AdminTokenGuard } from '../common/admin-token.guard';
import { AppError, ErrorCode } from '../common/app-error';
import { ISO_TIMESTAMP, UUID } from '../common/cursor';
import { Page, readPage } from '../common/paging';
import { uuidPipe } from '../common/uuid.pipe';
import { Database } from '../database/database';
import { ReconcileRepository, RunRecord } from '../reconcile/reconcile.repository';
import { Reconciler } from '../reconcile/reconciler.service';
import { Actor } from './actor.decorator';
import { AuditService } from './audit.service';
import { PageQuery } from './dto/page.query';
import { ReconcileBody } from './dto/reconcile.body';
import { ErrorDto, ReconcileRunDto, ReconcileRunPageDto, ReconcileStartedDto } from './dto/responses';

@Controller('admin/reconcile')
@UseGuards(AdminTokenGuard)
@ApiTags('admin')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ type: ErrorDto })
@ApiBadRequestResponse({ type: ErrorDto, description: 'invalid_request' })
export class ReconcileController {
  constructor(
    private readonly db: Database,
    private readonly reconciler: Reconciler,
    private readonly runs: ReconcileRepository,
    private readonly audit: AuditService,
  ) {}

  /**
   * Lists Stripe's events created in [since, until] and stores (handles) those never received, in the
   * background; with `dry_run`, only counts them. Moves the checkpoint only when the range covers it.
   */
  @Post()
  @HttpCode(202)
  @ApiAcceptedResponse({ type: ReconcileStartedDto })
  @ApiConflictResponse({ type: ErrorDto, description: 'a sweep is running (on any replica)' })
  @ApiServiceUnavailableResponse({ type: ErrorDto, description: 'STRIPE_API_KEY is not set' })
  async start(@Body() body: ReconcileBody, @Actor() actor: string): Promise<{ run_id: string }> {
    const details = { ...body };
    const result = await this.reconciler.startAdminRun(
      {
        since: body.since === undefined ? undefined : new Date(body.since),
        until: body.until === undefined ? undefined : new Date(body.until),
        dryRun: body.dry_run === true,
        actor,
      },
      (manager, runId) =>
        this.audit.record(manager, { actor, action: 'reconcile.start', target: runId, result: 'started', details }),
    );
    if (!result.started) {
      await this.db.transaction((manager) =>
        this.audit.record(manager, { actor, action: 'reconcile.start', target: null, result: 'conflict', details }),
      );
      throw new AppError(ErrorCode.Conflict, 'A reconciliation sweep is running; try again once it has finished.');
    }
    return { run_id: result.runId };
  }

  /** Reconciliation runs, scheduled and admin, newest first. */
  @Get('runs')
  @ApiOkResponse({ type: ReconcileRunPageDto })
  list(@Query() query: PageQuery): Promise<Page<RunRecord>> {
    // started_at has millisecond precision (timestamptz(3)), so the cursor round-trips exactly.
    return readPage(
      query,
      { s: ISO_TIMESTAMP, i: UUID },
      (limit, after) => this.runs.listRuns(limit, after && { startedAt: after.s, id: after.i }),
      (last) => ({ s: last.started_at.toISOString(), i: last.id }),
    );
  }

  @Get('runs/:id')
  @ApiOkResponse({ type: ReconcileRunDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  async find(@Param('id', uuidPipe('reconciliation run')) id: string): Promise<RunRecord> {
    const run = await this.runs.findRun(id);
    if (!run) {
      throw new AppError(ErrorCode.NotFound, `No reconciliation run ${id}.`);
    }
    return run;
  }
}
