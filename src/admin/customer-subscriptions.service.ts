import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '../common/app-error';
import { BillingRepository, CustomerSubscriptionRow } from '../billing/billing.repository';

/** The most subscriptions listed for one customer (a customer has a handful). */
export const MAX_CUSTOMER_SUBSCRIPTIONS = 100;

export interface CustomerSubscription extends Omit<
  CustomerSubscriptionRow,
  'current_period_end' | 'canceled_at' | 'updated_at'
> {
  current_period_end: string | null;
  canceled_at: string | null;
  updated_at: string;
}

@Injectable()
export class CustomerSubscriptionsService {
  constructor(private readonly billing: BillingRepository) {}

  /** Every stored subscription of the customer, whatever its status; 404 for a customer never seen. */
  async list(customerId: string): Promise<{ items: CustomerSubscription[] }> {
    const rows = await this.billing.subscriptionsOfCustomer(customerId, MAX_CUSTOMER_SUBSCRIPTIONS);
    if (rows.length === 0 && !(await this.billing.customerExists(customerId))) {
      throw new AppError(ErrorCode.NotFound, `No customer ${customerId} is known.`);
    }
    return {
      items: rows.map((row) => ({
        ...row,
        current_period_end: row.current_period_end?.toISOString() ?? null,
        canceled_at: row.canceled_at?.toISOString() ?? null,
        updated_at: row.updated_at.toISOString(),
      })),
    };
  }
}
