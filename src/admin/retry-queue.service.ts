import { Injectable } from '@nestjs/common';
import { BIGINT, EPOCH_MICROS } from '../common/cursor';
import { Page, PageRequest, readPage } from '../common/paging';
import { QueueRepository } from '../queue/queue.repository';
import type { PendingItemDto } from './dto/responses';

/** The retry queue as operators see it: every event still to be handled, in the order they were queued. */
@Injectable()
export class RetryQueueService {
  constructor(private readonly queue: QueueRepository) {}

  async list(query: PageRequest): Promise<Page<PendingItemDto>> {
    const page = await readPage(
      query,
      { q: EPOCH_MICROS, e: BIGINT },
      (limit, after) => this.queue.listPending(limit, after && { enqueuedUs: after.q, eventId: after.e }),
      (last) => ({ q: last.enqueued_us, e: last.event_key }),
    );
    return {
      items: page.items.map((r) => ({
        stripe_event_id: r.stripe_event_id,
        event_type: r.event_type,
        retry_count: r.retry_count,
        next_retry_at: r.next_retry_at.toISOString(),
        last_error: r.last_error,
        locked_by: r.locked_by,
        enqueued_at: r.enqueued_at.toISOString(),
      })),
      next_cursor: page.next_cursor,
    };
  }
}
