import { Injectable, Logger } from '@nestjs/common';
import type { Executor } from '../../database/database';
import type { StripeEvent } from '../../common/stripe-event';
import { StripeApi } from '../../stripe/stripe-api.service';
import { describeStripeError } from '../../stripe/stripe-errors';
import { BillingRepository } from '../billing.repository';
import { entitlementSummaryFromStripe, eventOrder, withFullList } from '../stripe-objects';

/**
 * Replaces the customer's feature list if newer. An event holds at most a first page of
 * entitlements: with `has_more` and STRIPE_API_KEY set, the whole list is read from
 * `GET /v1/entitlements/active_entitlements` (every page) within the attempt, so a failed read fails
 * the attempt and the event is retried. Without a key the first page is stored (logged).
 */
@Injectable()
export class EntitlementSummaryHandlers {
  private readonly logger = new Logger(EntitlementSummaryHandlers.name);

  constructor(
    private readonly billing: BillingRepository,
    private readonly stripe: StripeApi,
  ) {}

  async replace(event: StripeEvent, manager: Executor): Promise<void> {
    let summary = entitlementSummaryFromStripe(event.object);
    if (summary.hasMore && this.stripe.enabled) {
      const customer = summary.customerId;
      // Stripe's own messages quote part of the key: the attempt's error (shown to operators) says it our way.
      // A connected account's event: its customer lives in that account, so every page is read for it.
      const entitlements = await this.stripe
        .activeEntitlements(customer, { account: event.account })
        .catch((error: unknown) => {
          const where = event.account ? ` (account ${event.account})` : '';
          throw new Error(
            `reading the active entitlements of ${customer}${where} failed: ${describeStripeError(error)}`,
          );
        });
      summary = withFullList(summary, entitlements);
      this.logger.log(
        {
          eventId: event.id,
          eventType: event.type,
          customer,
          account: event.account,
          entitlements: entitlements.length,
        },
        'entitlement summary has more entries than the event carries; read the full list from Stripe',
      );
    } else if (summary.hasMore) {
      this.logger.warn(
        { eventId: event.id, eventType: event.type, customer: summary.customerId },
        'entitlement summary has more entries than the event carries and STRIPE_API_KEY is not set; storing the first page',
      );
    }
    await this.billing.ensureCustomer(manager, summary.customerId, null);
    await this.billing.upsertEntitlementSummary(manager, summary, eventOrder(event, 0));
  }
}
