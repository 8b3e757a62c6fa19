import { Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiHeader,
  ApiOkResponse,
  ApiPayloadTooLargeResponse,
  ApiRequestTimeoutResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AppError, ErrorCode } from '../common/app-error';
import { parseStripeEvent } from '../common/stripe-event';
import { QueueService } from '../queue/queue.service';
import { StripeSignatureVerifier } from './stripe-signature.verifier';

const RECEIVED = JSON.stringify({ received: true });
const DUPLICATE = JSON.stringify({ received: true, duplicate: true });

/**
 * POST /webhooks/stripe: verify, store, acknowledge. The body arrives as raw bytes, never inflated
 * (see webhook-body.middleware.ts): nothing parses it before the signature is checked. 200 is sent
 * only once the event is committed.
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
  @ApiBadRequestResponse({
    description: 'invalid_signature, or invalid_payload (also a signed body sent with a Content-Encoding)',
  })
  @ApiPayloadTooLargeResponse({ description: 'payload_too_large: above WEBHOOK_MAX_BODY_BYTES' })
  @ApiRequestTimeoutResponse({ description: 'request_timeout: the body did not arrive within 10 seconds' })
  @ApiServiceUnavailableResponse({
    description:
      'unavailable: the database cannot take the write, or too many bodies are being received; Stripe retries',
  })
  async receive(@Req() request: Request, @Res() response: Response): Promise<void> {
    const rawBody: Buffer = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    this.verifier.verify(rawBody, request.headers['stripe-signature']);
    const encoding = request.headers['content-encoding']?.trim().toLowerCase();
    if (encoding && encoding !== 'identity') {
      // Stripe never compresses; bodies are checked and stored as sent, never inflated, so signed
      // compressed bytes are not a JSON Stripe event.
      throw new AppError(
        ErrorCode.InvalidPayload,
        'The body has a Content-Encoding; Stripe sends webhook bodies uncompressed, and this endpoint does not inflate them.',
      );
    }
    const rawText = rawBody.toString('utf8');
    const event = parseStripeEvent(rawText);
    response.locals.eventType = event.type;
    const { duplicate } = await this.queue.enqueue(event, rawText);
    response.locals.duplicate = duplicate;
    // Written as is: the hottest route skips serialising and hashing (ETag) a constant answer.
    response
      .status(200)
      .type('application/json; charset=utf-8')
      .end(duplicate ? DUPLICATE : RECEIVED);
  }
}
