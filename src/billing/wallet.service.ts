import { Injectable, Logger } from '@nestjs/common';
import type { Executor } from '../database/database';
import type { StripeEvent } from '../common/stripe-event';
import { AlertService } from '../alerts/alert.service';
import type { HandlerContext } from '../queue/handler-registry';
import { BillingRepository } from './billing.repository';
import { eventOrder, TopUp } from './stripe-objects';
import { WalletRepository } from './wallet.repository';

/**
 * Credits wallet top-ups. Both checkout.session.completed and payment_intent.succeeded credit; the
 * ledger's unique PaymentIntent id makes whichever comes first the only credit.
 *
 * The auto-recharge payment method comes from the PaymentIntent's event (a webhook's session holds
 * only the PaymentIntent id, and the service has no API key to fetch it). A PaymentIntent created
 * by Checkout without `payment_intent_data.metadata` does not carry the purpose, so its
 * payment_intent.succeeded saves its method when the session already credited that PaymentIntent,
 * and otherwise remembers it for the session to use when it credits.
 */
@Injectable()
export class WalletService {
  private readonly logger = new Logger(WalletService.name);

  constructor(
    private readonly billing: BillingRepository,
    private readonly wallet: WalletRepository,
    private readonly alerts: AlertService,
  ) {}

  /** Taken by a top-up session before anything else; see WalletRepository.lockPaymentIntent. */
  lockPaymentIntent(manager: Executor, paymentIntentId: string): Promise<void> {
    return this.wallet.lockPaymentIntent(manager, paymentIntentId);
  }

  async credit(manager: Executor, event: StripeEvent, topUp: TopUp, context: HandlerContext): Promise<void> {
    const { customerId, paymentIntentId, amount, currency } = topUp;
    const log = { eventId: event.id, eventType: event.type, paymentIntent: paymentIntentId };
    if (!amount || amount <= 0 || !currency) {
      this.logger.warn({ ...log, amount, currency }, 'top-up without an amount; nothing to credit');
      return;
    }
    if (!customerId || !paymentIntentId) {
      // A PaymentIntent without a customer whose Checkout Session (which may name one) already
      // credited it: nothing is wrong, and nothing to do.
      if (paymentIntentId) {
        // Under the PaymentIntent's lock, so that a session crediting it right now is seen.
        await this.wallet.lockPaymentIntent(manager, paymentIntentId);
      }
      if (paymentIntentId && (await this.wallet.creditedCustomer(manager, paymentIntentId))) {
        this.logger.log({ ...log, amount, currency }, 'top-up already credited by its session');
        return;
      }
      // Paid, but there is no wallet to credit (a guest payment) or nothing to key the credit by.
      const text =
        `:warning: Paid wallet top-up ${paymentIntentId ?? '(no PaymentIntent)'} of ${amount} ${currency} cannot be ` +
        `credited: ${customerId ? 'it has no PaymentIntent id' : 'this event names no customer (a Checkout Session that names one still credits it)'}. ` +
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
    // The PaymentIntent's event came first without the purpose: its payment method was kept for this.
    const remembered = await this.wallet.takeIntentPaymentMethod(manager, paymentIntentId);
    if (remembered) {
      const owner = (await this.wallet.creditedCustomer(manager, paymentIntentId)) ?? customerId;
      await this.wallet.setAutoRechargeMethod(manager, owner, remembered.paymentMethodId, remembered.eventCreated);
      this.logger.log(
        { ...log, customer: owner, paymentMethod: remembered.paymentMethodId },
        'auto-recharge method set',
      );
    }
  }

  /**
   * payment_intent.succeeded that did not credit (no top-up purpose, or no customer on it): if the
   * PaymentIntent credited a wallet already (through its Checkout Session), its payment method
   * becomes that customer's auto-recharge method; otherwise it is remembered for a session that
   * may still come. Callers hold no row lock yet (see lockPaymentIntent).
   */
  async paymentSucceeded(
    manager: Executor,
    event: StripeEvent,
    payment: { paymentIntentId: string; customerId: string | null; paymentMethodId: string },
  ): Promise<void> {
    const { paymentIntentId, paymentMethodId } = payment;
    const eventCreated = eventOrder(event, 0).created;
    await this.wallet.lockPaymentIntent(manager, paymentIntentId);
    const customerId = await this.wallet.creditedCustomer(manager, paymentIntentId);
    if (customerId) {
      await this.wallet.setAutoRechargeMethod(manager, customerId, paymentMethodId, eventCreated);
      this.logger.log(
        { eventId: event.id, eventType: event.type, paymentIntent: paymentIntentId, customer: customerId },
        'auto-recharge method set from a top-up credited by its session',
      );
      return;
    }
    await this.wallet.rememberIntentPaymentMethod(manager, { ...payment, eventCreated });
  }
}
