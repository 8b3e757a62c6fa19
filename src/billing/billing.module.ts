import { Module } from '@nestjs/common';
import { AlertsModule } from '../alerts/alerts.module';
import { QueueModule } from '../queue/queue.module';
import { StripeApiModule } from '../stripe/stripe-api.module';
import { BillingRepository } from './billing.repository';
import { EntitlementsController } from './entitlements.controller';
import { EntitlementsService } from './entitlements.service';
import { CheckoutHandlers } from './handlers/checkout.handlers';
import { CustomerHandlers } from './handlers/customer.handlers';
import { EntitlementSummaryHandlers } from './handlers/entitlement-summary.handlers';
import { InvoiceHandlers } from './handlers/invoice.handlers';
import { PaymentIntentHandlers } from './handlers/payment-intent.handlers';
import { SubscriptionHandlers } from './handlers/subscription.handlers';
import { UsageRepository } from './usage.repository';
import { UsageService } from './usage.service';
import { WalletUsageController } from './wallet-usage.controller';
import { WalletRepository } from './wallet.repository';
import { WalletService } from './wallet.service';

/** One handler per Stripe event type, registered with the queue; the entitlements, wallet and usage APIs. */
@Module({
  imports: [QueueModule, AlertsModule, StripeApiModule],
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
    WalletRepository,
    WalletService,
    UsageRepository,
    UsageService,
  ],
  exports: [BillingRepository, EntitlementsService],
})
export class BillingModule {}
