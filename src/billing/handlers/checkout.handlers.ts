import { Injectable } from '@nestjs/common';
import type { Executor } from '../../database/database';
import type { StripeEvent } from '../../common/stripe-event';
import type { HandlerContext } from '../../queue/handler-registry';
import { BillingRepository } from '../billing.repository';
import { checkoutSessionFromStripe, topUpFromCheckoutSession } from '../stripe-objects';
import { WalletService } from '../wallet.service';

/**
 * checkout.session.completed links the session's client_reference_id (our user) to its customer,
 * and credits a paid wallet top-up (mode payment, metadata.purpose wallet_top_up).
 */
@Injectable()
export class CheckoutHandlers {
  constructor(
    private readonly billing: BillingRepository,
    private readonly wallet: WalletService,
  ) {}

  async completed(event: StripeEvent, manager: Executor, context: HandlerContext): Promise<void> {
    const session = checkoutSessionFromStripe(event.object);
    const topUp = topUpFromCheckoutSession(event.object);
    if (topUp?.paymentIntentId) {
      // Before the customer row is locked below, as payment_intent.succeeded takes it (no deadlock).
      await this.wallet.lockPaymentIntent(manager, topUp.paymentIntentId);
    }
    if (session.customerId) {
      if (session.userId) {
        await this.billing.linkUser(manager, session.customerId, session.subscriptionId, session.userId);
      }
      await this.billing.ensureCustomer(manager, session.customerId, session.userId, session.email);
    }
    if (topUp) {
      await this.wallet.credit(manager, event, topUp, context);
    }
  }
}
