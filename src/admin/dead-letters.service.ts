import { Injectable } from '@nestjs/common';
import { Database } from '../database/database';
import { AppError, ErrorCode } from '../common/app-error';
import { ISO_TIMESTAMP, UUID } from '../common/cursor';
import { Page, readPage } from '../common/paging';
import {
  DeadLetterDetail,
  DeadLetterItem,
  DeadLettersRepository,
  ResolveResult,
} from '../queue/dead-letters.repository';
import { RetryWorker } from '../queue/retry-worker.service';
import { AuditService } from './audit.service';
import { DeadLettersQuery } from './dto/page.query';
import { ReplayDeadLettersBody } from './dto/replay-dead-letters.body';

const DEFAULT_BULK_LIMIT = 100;

/** Dead-letter operations for operators; every change is written to the audit log with it. */
@Injectable()
export class DeadLettersService {
  constructor(
    private readonly db: Database,
    private readonly deadLetters: DeadLettersRepository,
    private readonly audit: AuditService,
    private readonly worker: RetryWorker,
  ) {}

  list(query: DeadLettersQuery): Promise<Page<DeadLetterItem>> {
    return readPage(
      query,
      { c: ISO_TIMESTAMP, i: UUID },
      (limit, after) =>
        this.deadLetters.listOpen(
          { eventType: query.event_type, account: query.account },
          limit,
          after && { createdAt: after.c, id: after.i },
        ),
      // created_at has millisecond precision (timestamptz(3)), so the cursor round-trips exactly.
      (last) => ({ c: last.created_at.toISOString(), i: last.id }),
    );
  }

  async find(id: string): Promise<DeadLetterDetail> {
    const item = await this.deadLetters.find(id);
    if (!item) {
      throw new AppError(ErrorCode.NotFound, `No dead letter ${id}.`);
    }
    return item;
  }

  async replayOne(id: string, actor: string): Promise<{ replayed: 1 }> {
    const result = await this.db.transaction(async (manager) => {
      const outcome = await this.deadLetters.replayOne(manager, id, actor);
      await this.audit.record(manager, { actor, action: 'dead_letter.replay', target: id, result: outcome });
      return outcome;
    });
    this.refuse(result, id);
    this.worker.nudge();
    return { replayed: 1 };
  }

  async replayMany(
    body: ReplayDeadLettersBody,
    actor: string,
  ): Promise<{ replayed: number } | { would_replay: number }> {
    const limit = body.limit ?? DEFAULT_BULK_LIMIT;
    const filter = {
      ids: body.ids,
      eventType: body.event_type,
      failedAfter: body.failed_after ? new Date(body.failed_after) : undefined,
      failedBefore: body.failed_before ? new Date(body.failed_before) : undefined,
    };
    const details = { ...body, limit };
    if (body.dry_run) {
      const count = await this.deadLetters.countReplayable(filter, limit);
      await this.db.transaction((manager) =>
        this.audit.record(manager, {
          actor,
          action: 'dead_letter.replay_bulk',
          target: null,
          result: `would_replay ${count}`,
          details,
        }),
      );
      return { would_replay: count };
    }
    const replayed = await this.db.transaction(async (manager) => {
      const ids = await this.deadLetters.replay(manager, filter, limit, actor);
      await this.audit.record(manager, {
        actor,
        action: 'dead_letter.replay_bulk',
        target: null,
        result: `replayed ${ids.length}`,
        details: { ...details, replayed_ids: ids },
      });
      return ids.length;
    });
    if (replayed > 0) {
      this.worker.nudge();
    }
    return { replayed };
  }

  async discard(id: string, actor: string): Promise<void> {
    const result = await this.db.transaction(async (manager) => {
      const outcome = await this.deadLetters.discard(manager, id, actor);
      await this.audit.record(manager, { actor, action: 'dead_letter.discard', target: id, result: outcome });
      return outcome;
    });
    this.refuse(result, id);
  }

  private refuse(result: ResolveResult, id: string): void {
    switch (result) {
      case 'done':
        return;
      case 'not_found':
        throw new AppError(ErrorCode.NotFound, `No dead letter ${id}.`);
      case 'already_replayed':
        throw new AppError(ErrorCode.Conflict, `Dead letter ${id} was already replayed.`);
      case 'already_discarded':
        throw new AppError(ErrorCode.Conflict, `Dead letter ${id} was already discarded.`);
    }
  }
}
