import { Controller, HttpCode, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import { parseStripeEvent } from '../common/stripe-event';
import { StripeSignatureVerifier } from './stripe-signature.verifier';
import { WebhookIngestService } from './webhook-ingest.service';

/**
 * POST /webhooks/stripe. The body arrives as raw bytes (see app-setup.ts): nothing parses it before
 * the signature is checked. 200 is sent only once the event is committed.
 */
@Controller('webhooks')
export class WebhooksController {
  constructor(
    private readonly verifier: StripeSignatureVerifier,
    private readonly ingest: WebhookIngestService,
  ) {}

  @Post('stripe')
  @HttpCode(200)
  async receive(@Req() request: Request): Promise<{ received: true; duplicate?: true }> {
    const rawBody: Buffer = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    this.verifier.verify(rawBody, request.headers['stripe-signature']);
    const rawText = rawBody.toString('utf8');
    const event = parseStripeEvent(rawText);
    const { duplicate } = await this.ingest.accept(event, rawText);
    return duplicate ? { received: true, duplicate: true } : { received: true };
  }
}
