import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AlertService } from '../../alerts/alert.service';
import type { StripeEvent } from '../../common/stripe-event';
import { HandlerContext, HandlerRegistry } from '../../queue/handler-registry';
import { BillingRepository } from '../billing.repository';
import { eventOrder, invoiceEventRank, invoiceFromStripe, InvoiceState } from '../stripe-objects';

/**
 * invoice.paid / invoice.payment_succeeded record the paid period; invoice.payment_failed records
 * the failure and raises an alert (after commit, so once per event). An invoice whose subscription
 * or customer is not known yet is stored all the same (and the customer created from it): nothing
 * depends on the order in which Stripe delivers them.
 */
@Injectable()
export class InvoiceHandlers implements OnModuleInit {
  private readonly logger = new Logger(InvoiceHandlers.name);

  constructor(
    private readonly registry: HandlerRegistry,
    private readonly billing: BillingRepository,
    private readonly alerts: AlertService,
  ) {}

  onModuleInit(): void {
    this.registry.register('invoice.paid', (event, manager) => this.record(event, manager, false));
    this.registry.register('invoice.payment_succeeded', (event, manager) => this.record(event, manager, false));
    this.registry.register('invoice.payment_failed', async (event, manager, context) => {
      const invoice = await this.record(event, manager, true);
      this.raiseAlert(event, invoice, context);
    });
  }

  private async record(event: StripeEvent, manager: EntityManager, paymentFailed: boolean): Promise<InvoiceState> {
    const invoice = invoiceFromStripe(event.object);
    await this.billing.ensureCustomer(manager, invoice.customerId, null);
    await this.billing.upsertInvoice(manager, invoice, eventOrder(event, invoiceEventRank(invoice)), paymentFailed);
    return invoice;
  }

  private raiseAlert(event: StripeEvent, invoice: InvoiceState, context: HandlerContext): void {
    const next = invoice.nextPaymentAttempt
      ? `next attempt ${invoice.nextPaymentAttempt.toISOString()}`
      : 'no further attempt';
    const text =
      `:warning: Invoice ${invoice.id} of customer ${invoice.customerId}` +
      `${invoice.subscriptionId ? ` (subscription ${invoice.subscriptionId})` : ''} failed to pay: ` +
      `attempt ${invoice.attemptCount ?? '?'}, ${next}. Event ${event.id}.`;
    this.logger.warn({ eventId: event.id, eventType: event.type, invoice: invoice.id }, 'invoice payment failed');
    context.afterCommit(() => this.alerts.send(text));
  }
}
