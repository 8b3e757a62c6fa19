import { Module, OnModuleInit } from '@nestjs/common';
import { AlertsModule } from '../alerts/alerts.module';
import { HandlerRegistry } from '../queue/handler-registry';
import { QueueModule } from '../queue/queue.module';
import { ReconcileModule } from '../reconcile/reconcile.module';
import { StripeApiModule } from '../stripe/stripe-api.module';
import { BillingRepository } from './billing.repository';
import { EntitlementsController } from './entitlements.controller';
import { EntitlementsService } from './entitlements.service';
import { CheckoutHandlers } from './handlers/checkout.handlers';
import { CustomerHandlers } from './handlers/customer.handlers';
import { EntitlementSummaryHandlers } from './handlers/entitlement-summary.handlers';
import { InvoiceHandlers } from './handlers/invoice.handlers';
import { PaymentIntentHandlers } from './handlers/payment-intent.handlers';
import { SUBSCRIPTION_EVENTS, SubscriptionHandlers } from './handlers/subscription.handlers';
import { ThinEventHandlers } from './handlers/thin-event.handlers';
import { UsageRepository } from './usage.repository';
import { UsageService } from './usage.service';
import { WalletUsageController } from './wallet-usage.controller';
import { WalletRepository } from './wallet.repository';
import { WalletService } from './wallet.service';

/** The handlers of the Stripe events it handles, registered with the queue below; the entitlements, wallet and usage APIs. */
@Module({
  imports: [QueueModule, AlertsModule, StripeApiModule, ReconcileModule],
  controllers: [EntitlementsController, WalletUsageController],
  providers: [
    BillingRepository,
    EntitlementsService,
    CustomerHandlers,
    SubscriptionHandlers,
    InvoiceHandlers,
    CheckoutHandlers,
    EntitlementSummaryHandlers,
    PaymentIntentHandlers,
    ThinEventHandlers,
    WalletRepository,
    WalletService,
    UsageRepository,
    UsageService,
  ],
  exports: [BillingRepository, EntitlementsService],
})
export class BillingModule implements OnModuleInit {
  constructor(
    private readonly registry: HandlerRegistry,
    private readonly checkout: CheckoutHandlers,
    private readonly customers: CustomerHandlers,
    private readonly subscriptions: SubscriptionHandlers,
    private readonly invoices: InvoiceHandlers,
    private readonly paymentIntents: PaymentIntentHandlers,
    private readonly entitlementSummaries: EntitlementSummaryHandlers,
    private readonly thin: ThinEventHandlers,
  ) {}

  onModuleInit(): void {
    const on = this.registry.register.bind(this.registry);
    on('checkout.session.completed', (event, tx, context) => this.checkout.completed(event, tx, context));
    on('customer.created', (event, tx) => this.customers.upsert(event, tx));
    on('customer.updated', (event, tx) => this.customers.upsert(event, tx));
    on('customer.deleted', (event, tx) => this.customers.delete(event, tx));
    for (const type of SUBSCRIPTION_EVENTS) {
      on(type, (event, tx) => this.subscriptions.apply(event, tx));
    }
    on('invoice.paid', (event, tx) => this.invoices.paid(event, tx));
    on('invoice.payment_succeeded', (event, tx) => this.invoices.paid(event, tx));
    on('invoice.payment_failed', (event, tx, context) => this.invoices.paymentFailed(event, tx, context));
    on('payment_intent.succeeded', (event, tx, context) => this.paymentIntents.succeeded(event, tx, context));
    on('payment_intent.payment_failed', (event, tx, context) => this.paymentIntents.failed(event, tx, context));
    on('entitlements.active_entitlement_summary.updated', (event, tx) => this.entitlementSummaries.replace(event, tx));
    // Thin events (POST /webhooks/stripe/thin); other thin types are ignored.
    this.registry.registerThin('v2.core.event_destination.ping', () => this.thin.ping());
    this.registry.registerThin('v2.core.health.event_generation_failure.resolved', (event, tx, context) =>
      this.thin.generationFailureResolved(event, tx, context),
    );
    this.registry.registerThinCopies((event, tx, context) => this.thin.copySnapshot(event, tx, context));
  }
}
