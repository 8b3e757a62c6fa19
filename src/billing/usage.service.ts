import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '../common/app-error';
import { BillingRepository } from './billing.repository';
import { UsagePeriod, UsageRepository } from './usage.repository';

export interface UsageView {
  period_start: string;
  period_end: string;
  used: number;
}

/** Metered usage per customer and billing period; each idempotency key counts once. */
@Injectable()
export class UsageService {
  constructor(
    private readonly usage: UsageRepository,
    private readonly billing: BillingRepository,
  ) {}

  async record(customerId: string, quantity: number, idempotencyKey: string): Promise<UsageView> {
    const period = await this.periodOf(customerId);
    const recorded = await this.usage.record(customerId, idempotencyKey, quantity, period);
    if (recorded !== quantity) {
      throw new AppError(
        ErrorCode.Conflict,
        `idempotency_key ${idempotencyKey} was already used with quantity ${recorded}; use a new key for a new increment.`,
      );
    }
    return this.view(customerId, period);
  }

  async current(customerId: string): Promise<UsageView> {
    return this.view(customerId, await this.periodOf(customerId));
  }

  private async periodOf(customerId: string): Promise<UsagePeriod> {
    const period = await this.usage.currentPeriod(customerId);
    if (period) {
      return period;
    }
    if (!(await this.billing.customerExists(customerId))) {
      throw new AppError(ErrorCode.NotFound, `No customer ${customerId} is known.`);
    }
    throw new AppError(
      ErrorCode.Conflict,
      `Customer ${customerId} has no current billing period: none of its subscriptions grants access ` +
        '(none is known, or each is deleted, canceled or in a status outside ACCESS_STATUSES).',
    );
  }

  private async view(customerId: string, period: UsagePeriod): Promise<UsageView> {
    return {
      period_start: period.start.toISOString(),
      period_end: period.end.toISOString(),
      used: await this.usage.used(customerId, period),
    };
  }
}
