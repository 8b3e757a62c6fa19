import { Injectable, Logger } from '@nestjs/common';
import { AppError, ErrorCode } from '../common/app-error';
import type { Executor } from '../database/database';
import type { StripeEvent } from '../common/stripe-event';
import { AlertService } from '../alerts/alert.service';
import type { HandlerContext } from '../queue/handler-registry';
import { BillingRepository } from './billing.repository';
import { eventOrder, TopUp } from './stripe-objects';
import { WalletEntry, WalletRepository } from './wallet.repository';

export interface WalletView {
  customer_id: string;
  balances: Record<string, number>;
  auto_recharge_payment_method: string | null;
  entries: Array<Omit<WalletEntry, 'created_at'> & { created_at: string }>;
}

/**
 * Wallets: what the wallet route shows, and top-ups credited once per PaymentIntent by whichever of
 * its events comes first (the README's "Wallet top-ups and usage" tells the auto-recharge story).
 */
@Injectable()
export class WalletService {
  private readonly logger = new Logger(WalletService.name);

  constructor(
    private readonly billing: BillingRepository,
    private readonly wallet: WalletRepository,
    private readonly alerts: AlertService,
  ) {}

  /** A customer's balances, auto-recharge method and newest 50 ledger entries. */
  async find(customerId: string): Promise<WalletView> {
    const wallet = await this.wallet.walletOf(customerId);
    if (!wallet) {
      throw new AppError(ErrorCode.NotFound, `No customer ${customerId} is known.`);
    }
    return {
      customer_id: customerId,
      balances: wallet.balances,
      auto_recharge_payment_method: wallet.autoRechargePaymentMethod,
      entries: wallet.entries.map((e) => ({ ...e, created_at: e.created_at.toISOString() })),
    };
  }

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
   * A succeeded PaymentIntent that credited nothing: its method goes to the customer its session
   * credited, or is kept for that session. Callers hold no row lock yet (see lockPaymentIntent).
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
