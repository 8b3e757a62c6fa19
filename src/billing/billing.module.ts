import { Module } from '@nestjs/common';
import { AlertsModule } from '../alerts/alerts.module';
import { QueueModule } from '../queue/queue.module';
import { BillingRepository } from './billing.repository';
import { EntitlementsController } from './entitlements.controller';
import { EntitlementsService } from './entitlements.service';
import { CheckoutHandlers } from './handlers/checkout.handlers';
import { CustomerHandlers } from './handlers/customer.handlers';
import { EntitlementSummaryHandlers } from './handlers/entitlement-summary.handlers';
import { InvoiceHandlers } from './handlers/invoice.handlers';
import { SubscriptionHandlers } from './handlers/subscription.handlers';

/** One handler per Stripe event type, registered with the queue; the entitlements API. */
@Module({
  imports: [QueueModule, AlertsModule],
  controllers: [EntitlementsController],
  providers: [
    BillingRepository,
    EntitlementsService,
    CustomerHandlers,
    SubscriptionHandlers,
    InvoiceHandlers,
    CheckoutHandlers,
    EntitlementSummaryHandlers,
  ],
  exports: [BillingRepository, EntitlementsService],
})
export class BillingModule {}
