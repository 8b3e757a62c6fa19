import { Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiHeader,
  ApiOkResponse,
  ApiPayloadTooLargeResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { parseStripeEvent } from '../common/stripe-event';
import { QueueService } from '../queue/queue.service';
import { StripeSignatureVerifier } from './stripe-signature.verifier';

/**
 * POST /webhooks/stripe: verify, store, acknowledge. The body arrives as raw bytes (see
 * app-setup.ts): nothing parses it before the signature is checked. 200 is sent only once the event
 * is committed.
 */
@Controller('webhooks')
export class WebhooksController {
  constructor(
    private readonly verifier: StripeSignatureVerifier,
    private readonly queue: QueueService,
  ) {}

  @Post('stripe')
  @HttpCode(200)
  @ApiTags('stripe')
  @ApiHeader({ name: 'Stripe-Signature', required: true, description: 't=<timestamp>,v1=<HMAC-SHA256>' })
  @ApiBody({
    description: 'The Stripe event, exactly as Stripe sent it (raw bytes are signed).',
    schema: { type: 'object' },
  })
  @ApiOkResponse({
    description: 'Stored durably (or a duplicate of a stored event).',
    schema: { example: { received: true } },
  })
  @ApiBadRequestResponse({ description: 'invalid_signature, or invalid_payload' })
  @ApiPayloadTooLargeResponse({ description: 'payload_too_large: above WEBHOOK_MAX_BODY_BYTES' })
  @ApiServiceUnavailableResponse({ description: 'unavailable: the database cannot take the write; Stripe retries' })
  async receive(
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ): Promise<{ received: true; duplicate?: true }> {
    const rawBody: Buffer = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    this.verifier.verify(rawBody, request.headers['stripe-signature']);
    const rawText = rawBody.toString('utf8');
    const event = parseStripeEvent(rawText);
    response.locals.eventType = event.type;
    const { duplicate } = await this.queue.enqueue(event, rawText);
    response.locals.duplicate = duplicate;
    return duplicate ? { received: true, duplicate: true } : { received: true };
  }
}
