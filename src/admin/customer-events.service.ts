import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '../common/app-error';
import { BIGINT, decodeCursor, encodeCursor, EPOCH_MICROS } from '../common/cursor';
import { CustomerEventRow, CustomerEventsRepository } from './customer-events.repository';

export type CustomerEvent = Omit<CustomerEventRow, 'sort_us' | 'event_key'>;

@Injectable()
export class CustomerEventsService {
  constructor(private readonly events: CustomerEventsRepository) {}

  /**
   * One page of the customer's events. A customer with no row and no event at all is unknown (404);
   * one known only from its events (say, every one of them failed) is listed.
   */
  async list(
    customerId: string,
    limit: number,
    cursor: string | undefined,
  ): Promise<{ items: CustomerEvent[]; next_cursor: string | null }> {
    const after = cursor ? decodeCursor(cursor, { t: EPOCH_MICROS, i: BIGINT }) : undefined;
    const rows = await this.events.list(customerId, limit + 1, after && { sortUs: after.t, eventKey: after.i });
    if (rows.length === 0 && !after && !(await this.events.customerExists(customerId))) {
      throw new AppError(ErrorCode.NotFound, `No customer ${customerId} is known, and no event names it.`);
    }
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(({ sort_us: _sortUs, event_key: _eventKey, ...item }) => item),
      next_cursor: rows.length > limit && last ? encodeCursor({ t: last.sort_us, i: last.event_key }) : null,
    };
  }
}
