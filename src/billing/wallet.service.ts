import { Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { StripeEvent } from '../common/stripe-event';
import { AlertService } from '../alerts/alert.service';
import type { HandlerContext } from '../queue/handler-registry';
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
    private readonly alerts: AlertService,
  ) {}

  async credit(manager: EntityManager, event: StripeEvent, topUp: TopUp, context: HandlerContext): Promise<void> {
    const { customerId, paymentIntentId, amount, currency } = topUp;
    const log = { eventId: event.id, eventType: event.type, paymentIntent: paymentIntentId };
    if (!amount || amount <= 0 || !currency) {
      this.logger.warn({ ...log, amount, currency }, 'top-up without an amount; nothing to credit');
      return;
    }
    if (!customerId || !paymentIntentId) {
      // Paid, but there is no wallet to credit (a guest payment) or nothing to key the credit by.
      const text =
        `:warning: Paid wallet top-up ${paymentIntentId ?? '(no PaymentIntent)'} of ${amount} ${currency} cannot be ` +
        `credited: ${customerId ? 'it has no PaymentIntent id' : 'neither the Checkout Session nor the PaymentIntent names a customer'}. ` +
        `Event ${event.id}.`;
      this.logger.warn({ ...log, customer: customerId, amount, currency }, 'paid top-up cannot be credited');
      context.afterCommit(() => this.alerts.send(text));
      return;
    }
    await this.billing.ensureCustomer(manager, customerId, null);
    // The customer row before the ledger, as checkout.session.completed locks it (linking the user)
    // before crediting: the same order in both, so the two events of a top-up never deadlock.
    if (topUp.paymentMethodId) {
      await this.wallet.setAutoRechargeMethod(manager, customerId, topUp.paymentMethodId, eventOrder(event, 0).created);
    }
    const credited = await this.wallet.credit(manager, {
      customerId,
      paymentIntentId,
      amount,
      currency,
      sourceEventId: event.id,
      sourceEventType: event.type,
    });
    this.logger.log(
      { ...log, customer: customerId, amount, currency, credited },
      credited ? 'wallet credited' : 'top-up already credited',
    );
  }
}
