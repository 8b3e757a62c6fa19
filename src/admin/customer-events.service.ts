import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '../common/app-error';
import { BIGINT, EPOCH_MICROS } from '../common/cursor';
import { Page, PageRequest, readPage } from '../common/paging';
import { BillingRepository } from '../billing/billing.repository';
import { CustomerEventRow, CustomerEventsRepository } from './customer-events.repository';

export type CustomerEvent = Omit<CustomerEventRow, 'sort_us' | 'event_key'>;

@Injectable()
export class CustomerEventsService {
  constructor(
    private readonly events: CustomerEventsRepository,
    private readonly billing: BillingRepository,
  ) {}

  /**
   * One page of the customer's events. A customer with no row and no event at all is unknown (404);
   * one known only from its events (say, every one of them failed) is listed.
   */
  async list(customerId: string, query: PageRequest): Promise<Page<CustomerEvent>> {
    const page = await readPage(
      query,
      { t: EPOCH_MICROS, i: BIGINT },
      (limit, after) => this.events.list(customerId, limit, after && { sortUs: after.t, eventKey: after.i }),
      (last) => ({ t: last.sort_us, i: last.event_key }),
    );
    if (page.items.length === 0 && !query.cursor && !(await this.billing.customerExists(customerId))) {
      throw new AppError(ErrorCode.NotFound, `No customer ${customerId} is known, and no event names it.`);
    }
    return {
      items: page.items.map(({ sort_us: _sortUs, event_key: _eventKey, ...item }) => item),
      next_cursor: page.next_cursor,
    };
  }
}
