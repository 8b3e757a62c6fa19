import { Injectable, Logger } from '@nestjs/common';
import type { Executor } from '../../database/database';
import type { StripeEvent } from '../../common/stripe-event';
import { BillingRepository } from '../billing.repository';
import { entitlementSummaryFromStripe, eventOrder } from '../stripe-objects';

/**
 * Replaces the customer's feature list if newer. An event holds at most a first page of entitlements:
 * with `has_more`, that page is stored and a warning logged (the rest needs an API key we do not hold).
 */
@Injectable()
export class EntitlementSummaryHandlers {
  private readonly logger = new Logger(EntitlementSummaryHandlers.name);

  constructor(private readonly billing: BillingRepository) {}

  async replace(event: StripeEvent, manager: Executor): Promise<void> {
    const summary = entitlementSummaryFromStripe(event.object);
    if (summary.hasMore) {
      this.logger.warn(
        { eventId: event.id, eventType: event.type, customer: summary.customerId },
        'entitlement summary has more entries than the event carries; storing the first page',
      );
    }
    await this.billing.ensureCustomer(manager, summary.customerId, null);
    await this.billing.upsertEntitlementSummary(manager, summary, eventOrder(event, 0));
  }
}
