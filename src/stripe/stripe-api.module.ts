import { Module } from '@nestjs/common';
import { SharedStripeBudget } from './shared-budget';
import { StripeApi } from './stripe-api.service';

/** The one Stripe API client of this process, within the request budget all replicas share. */
@Module({
  providers: [StripeApi, SharedStripeBudget],
  exports: [StripeApi],
})
export class StripeApiModule {}
