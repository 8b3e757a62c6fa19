import { Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { StripeEvent } from '../common/stripe-event';
import { BillingRepository } from './billing.repository';
import { eventOrder, TopUp } from './stripe-objects';
import { WalletRepository } from './wallet.repository';

/**
 * Credits wallet top-ups. Both checkout.session.completed and payment_intent.succeeded credit; the
 * ledger's unique PaymentIntent id makes whichever comes first the only credit.
 */
@Injectable()
export class WalletService {
  private readonly logger = new Logger(WalletService.name);

  constructor(
    private readonly billing: BillingRepository,
    private readonly wallet: WalletRepository,
  ) {}

  async credit(manager: EntityManager, event: StripeEvent, topUp: TopUp): Promise<void> {
    const { customerId, paymentIntentId, amount, currency } = topUp;
    const log = { eventId: event.id, eventType: event.type, paymentIntent: paymentIntentId };
    if (!customerId || !paymentIntentId || !amount || amount <= 0 || !currency) {
      // Nothing to credit to (a guest payment) or nothing to key it by: recorded in the log, not retried.
      this.logger.warn(
        { ...log, customer: customerId, amount, currency },
        'top-up without customer, PaymentIntent or amount; not credited',
      );
      return;
    }
    await this.billing.ensureCustomer(manager, customerId, null);
    const credited = await this.wallet.credit(manager, {
      customerId,
      paymentIntentId,
      amount,
      currency,
      sourceEventId: event.id,
      sourceEventType: event.type,
    });
    if (topUp.paymentMethodId) {
      await this.wallet.setAutoRechargeMethod(manager, customerId, topUp.paymentMethodId, eventOrder(event, 0).created);
    }
    this.logger.log(
      { ...log, customer: customerId, amount, currency, credited },
      credited ? 'wallet credited' : 'top-up already credited',
    );
  }
}
