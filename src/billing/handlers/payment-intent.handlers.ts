import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { Executor } from '../../database/database';
import { AlertService } from '../../alerts/alert.service';
import type { StripeEvent } from '../../common/stripe-event';
import { HandlerContext, HandlerRegistry } from '../../queue/handler-registry';
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
 * payment_intent.succeeded credits a wallet top-up (the safety net when the Checkout Session event
 * is late or lost); payment_intent.payment_failed records a failed top-up and raises an alert.
 * A succeeded PaymentIntent without the top-up purpose credits nothing, but its payment method may
 * still be a top-up's (Checkout copies the session's metadata only with payment_intent_data), so
 * it is handed to WalletService.paymentSucceeded. Other failed PaymentIntents change nothing.
 */
@Injectable()
export class PaymentIntentHandlers implements OnModuleInit {
  private readonly logger = new Logger(PaymentIntentHandlers.name);

  constructor(
    private readonly registry: HandlerRegistry,
    private readonly topUps: WalletService,
    private readonly wallet: WalletRepository,
    private readonly billing: BillingRepository,
    private readonly alerts: AlertService,
  ) {}

  onModuleInit(): void {
    this.registry.register('payment_intent.succeeded', (event, manager, context) =>
      this.succeeded(event, manager, context),
    );
    this.registry.register('payment_intent.payment_failed', (event, manager, context) =>
      this.failed(event, manager, context),
    );
  }

  private async succeeded(event: StripeEvent, manager: Executor, context: HandlerContext): Promise<void> {
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

  private async failed(event: StripeEvent, manager: Executor, context: HandlerContext): Promise<void> {
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
