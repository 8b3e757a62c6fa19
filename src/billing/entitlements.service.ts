import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '../common/app-error';
import { AppConfig } from '../config/app-config';
import { BillingRepository } from './billing.repository';
import { computeEntitlements, CustomerRow, Entitlements } from './entitlements';

@Injectable()
export class EntitlementsService {
  constructor(
    private readonly config: AppConfig,
    private readonly billing: BillingRepository,
  ) {}

  async forCustomer(customerId: string): Promise<Entitlements> {
    const customers = await this.billing.customersById(customerId);
    if (customers.length === 0) {
      throw new AppError(ErrorCode.NotFound, `No customer ${customerId} is known.`);
    }
    return this.compute(customers);
  }

  /** A user may have several customers: access from any of them counts. */
  async forUser(userId: string): Promise<Entitlements> {
    const customers = await this.billing.customersOfUser(userId);
    if (customers.length === 0) {
      throw new AppError(ErrorCode.NotFound, `No customer is linked to user ${userId}.`);
    }
    return this.compute(customers, userId);
  }

  private async compute(customers: CustomerRow[], userId?: string): Promise<Entitlements> {
    const ids = customers.map((c) => c.stripe_customer_id);
    const [subscriptions, summaries] = await Promise.all([
      this.billing.subscriptionsOf(ids),
      this.billing.summariesOf(ids),
    ]);
    return computeEntitlements({ customers, subscriptions, summaries, userId }, this.config.accessStatuses);
  }
}
