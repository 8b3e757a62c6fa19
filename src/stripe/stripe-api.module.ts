import { Module } from '@nestjs/common';
import { StripeApi } from './stripe-api.service';

/** The one Stripe API client of this process (and so its one request budget). */
@Module({
  providers: [StripeApi],
  exports: [StripeApi],
})
export class StripeApiModule {}
