import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '../common/app-error';
import { BIGINT, EPOCH_MICROS } from '../common/cursor';
import { Page, readPage } from '../common/paging';
import { Database } from '../database/database';
import { EventRecord, QueueRepository } from '../queue/queue.repository';
import { RetryWorker } from '../queue/retry-worker.service';
import { AuditService } from './audit.service';
import { AccountPageQuery } from './dto/page.query';
import { EventListRow, EventsRepository } from './events.repository';

export type EventListItem = Omit<EventListRow, 'sort_us' | 'event_key'>;

/** Stored events for operators: their state, and running a handler again (audited). */
@Injectable()
export class EventsService {
  constructor(
    private readonly db: Database,
    private readonly queue: QueueRepository,
    private readonly audit: AuditService,
    private readonly worker: RetryWorker,
    private readonly events: EventsRepository,
  ) {}

  /** Stored events, newest received first; of one connected account with `account`. */
  async list(query: AccountPageQuery): Promise<Page<EventListItem>> {
    const page = await readPage(
      query,
      { t: EPOCH_MICROS, i: BIGINT },
      (limit, after) => this.events.list(query.account, limit, after && { sortUs: after.t, eventKey: after.i }),
      (last) => ({ t: last.sort_us, i: last.event_key }),
    );
    return {
      items: page.items.map(({ sort_us: _sortUs, event_key: _eventKey, ...item }) => item),
      next_cursor: page.next_cursor,
    };
  }

  async find(stripeEventId: string, withPayload: boolean): Promise<EventRecord & { payload?: unknown }> {
    const event = await this.queue.findEvent(stripeEventId, withPayload);
    if (!event) {
      throw new AppError(ErrorCode.NotFound, `No event ${stripeEventId} has been stored.`);
    }
    return event;
  }

  async reprocess(stripeEventId: string, actor: string): Promise<{ reprocessing: true }> {
    const result = await this.db.transaction(async (tx) => {
      const outcome = await this.queue.requeue(tx, stripeEventId);
      await this.audit.record(tx, { actor, action: 'event.reprocess', target: stripeEventId, result: outcome });
      return outcome;
    });
    switch (result) {
      case 'done':
        this.worker.nudge();
        return { reprocessing: true };
      case 'not_found':
        throw new AppError(ErrorCode.NotFound, `No event ${stripeEventId} has been stored.`);
      case 'pending':
        throw new AppError(
          ErrorCode.Conflict,
          `Event ${stripeEventId} is pending: it will be handled without reprocessing.`,
        );
      case 'dead':
        throw new AppError(ErrorCode.Conflict, `Event ${stripeEventId} is dead: replay its dead letter instead.`);
      case 'discarded':
        throw new AppError(ErrorCode.Conflict, `Event ${stripeEventId} was discarded.`);
    }
  }
}
