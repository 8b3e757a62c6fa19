import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '../common/app-error';
import { Database } from '../database/database';
import { EventRecord, QueueRepository } from '../queue/queue.repository';
import { RetryWorker } from '../queue/retry-worker.service';
import { AuditService } from './audit.service';

/** Stored events for operators: their state, and running a handler again (audited). */
@Injectable()
export class EventsService {
  constructor(
    private readonly db: Database,
    private readonly queue: QueueRepository,
    private readonly audit: AuditService,
    private readonly worker: RetryWorker,
  ) {}

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
