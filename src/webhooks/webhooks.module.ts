import { Module } from '@nestjs/common';
import { QueueModule } from '../queue/queue.module';
import { StripeSignatureVerifier } from './stripe-signature.verifier';
import { WebhooksController } from './webhooks.controller';

@Module({
  imports: [QueueModule],
  controllers: [WebhooksController],
  providers: [StripeSignatureVerifier],
})
export class WebhooksModule {}
