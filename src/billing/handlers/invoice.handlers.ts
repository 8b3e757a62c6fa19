import { Injectable, Logger } from '@nestjs/common';
import type { Executor } from '../../database/database';
import { AlertService } from '../../alerts/alert.service';
import type { StripeEvent } from '../../common/stripe-event';
import type { HandlerContext } from '../../queue/handler-registry';
import { BillingRepository, InvoiceUpsert } from '../billing.repository';
import { eventOrder, invoiceEventRank, invoiceFromStripe, InvoiceState } from '../stripe-objects';

/**
 * invoice.paid and invoice.payment_succeeded record the paid period; invoice.payment_failed records
 * the failure and alerts after commit, only when it is news (newer, unpaid, not a reprocess).
 */
@Injectable()
export class InvoiceHandlers {
  private readonly logger = new Logger(InvoiceHandlers.name);

  constructor(
    private readonly billing: BillingRepository,
    private readonly alerts: AlertService,
  ) {}

  async paid(event: StripeEvent, manager: Executor): Promise<void> {
    await this.record(event, manager, false);
  }

  async paymentFailed(event: StripeEvent, manager: Executor, context: HandlerContext): Promise<void> {
    const { invoice, result } = await this.record(event, manager, true);
    if (result.applied && !result.reapplied && !result.paid) {
      this.raiseAlert(event, invoice, context);
    } else {
      this.logger.log(
        { eventId: event.id, eventType: event.type, invoice: invoice.id, ...result },
        'payment failure not news (older than the stored state, invoice paid, or reprocessed): no alert',
      );
    }
  }

  private async record(
    event: StripeEvent,
    manager: Executor,
    paymentFailed: boolean,
  ): Promise<{ invoice: InvoiceState; result: InvoiceUpsert }> {
    const invoice = invoiceFromStripe(event.object);
    await this.billing.ensureCustomer(manager, invoice.customerId, null);
    const order = eventOrder(event, invoiceEventRank(invoice));
    const result = await this.billing.upsertInvoice(manager, invoice, order, paymentFailed);
    return { invoice, result };
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
