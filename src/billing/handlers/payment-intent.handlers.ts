import { Injectable, Logger } from '@nestjs/common';
import type { Executor } from '../../database/database';
import { AlertService } from '../../alerts/alert.service';
import type { StripeEvent } from '../../common/stripe-event';
import type { HandlerContext } from '../../queue/handler-registry';
import { BillingRepository } from '../billing.repository';
import {
  eventOrder,
  failedTopUpFromPaymentIntent,
  paymentMethodOfPaymentIntent,
  topUpFromPaymentIntent,
} from '../stripe-objects';
import { WalletRepository } from '../wallet.repository';
import { WalletService } from '../wallet.service';

/**
 * payment_intent.succeeded credits a top-up (the safety net for a late or lost session event) or
 * hands its payment method on; payment_intent.payment_failed records a failed top-up and alerts.
 */
@Injectable()
export class PaymentIntentHandlers {
  private readonly logger = new Logger(PaymentIntentHandlers.name);

  constructor(
    private readonly topUps: WalletService,
    private readonly wallet: WalletRepository,
    private readonly billing: BillingRepository,
    private readonly alerts: AlertService,
  ) {}

  async succeeded(event: StripeEvent, manager: Executor, context: HandlerContext): Promise<void> {
    const topUp = topUpFromPaymentIntent(event.object);
    if (topUp) {
      await this.topUps.credit(manager, event, topUp, context);
    }
    const payment = paymentMethodOfPaymentIntent(event.object);
    // A top-up PaymentIntent with a customer saved its method as it credited.
    if (payment && !topUp?.customerId) {
      await this.topUps.paymentSucceeded(manager, event, payment);
    }
  }

  async failed(event: StripeEvent, manager: Executor, context: HandlerContext): Promise<void> {
    const failure = failedTopUpFromPaymentIntent(event.object);
    if (!failure) {
      return;
    }
    if (failure.customerId) {
      await this.billing.ensureCustomer(manager, failure.customerId, null);
    }
    await this.wallet.recordFailure(manager, failure, event.id, eventOrder(event, 0).created);
    const amount = failure.amount !== null && failure.currency ? `${failure.amount} ${failure.currency}` : 'an amount';
    const text =
      `:warning: Wallet top-up ${failure.paymentIntentId} of ${amount} for customer ${failure.customerId ?? '(none)'} failed: ` +
      `${failure.code ?? 'unknown error'}${failure.declineCode ? ` (${failure.declineCode})` : ''}` +
      `${failure.message ? ` — ${failure.message}` : ''}. Event ${event.id}.`;
    this.logger.warn(
      { eventId: event.id, eventType: event.type, paymentIntent: failure.paymentIntentId, code: failure.code },
      'wallet top-up failed',
    );
    context.afterCommit(() => this.alerts.send(text));
  }
}
