import { applyDecorators, Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
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
import { parseStripeEvent, StripeEvent, thinEventFromPayload } from '../common/stripe-event';
import type { EventOrigin } from '../queue/queue.service';
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
  @ApiStripeDelivery()
  @ApiBody({
    description: 'The Stripe event, exactly as Stripe sent it (raw bytes are signed).',
    schema: { type: 'object' },
  })
  @ApiBadRequestResponse({
    description: 'invalid_signature, or invalid_payload (also a signed body sent with a Content-Encoding)',
  })
  async receive(@Req() request: Request, @Res() response: Response): Promise<void> {
    const rawBody = rawBodyOf(request);
    this.verifier.verify(rawBody, request.headers['stripe-signature']);
    refuseEncoded(request);
    const rawText = rawBody.toString('utf8');
    await this.store(response, parseStripeEvent(rawText), rawText);
  }

  /**
   * POST /webhooks/stripe/thin: an event destination with thin payloads (`v2.core.event`), verified
   * with stripe-node's parseEventNotification against the same secrets and tolerance, read within the
   * same limits, answered the same way; stored with `source` thin and its `context` as the account.
   */
  @Post('stripe/thin')
  @HttpCode(200)
  @ApiStripeDelivery()
  @ApiBody({
    description:
      'The thin event notification (object "v2.core.event"), exactly as Stripe sent it (raw bytes are signed).',
    schema: {
      type: 'object',
      required: ['id', 'object', 'type', 'created'],
      properties: {
        id: { type: 'string', example: 'evt_test_65R9Ijk8aQvCmGNGmzt16RFBMt2DSQmabiKsXW5Yl4Ee' },
        object: { type: 'string', enum: ['v2.core.event'] },
        type: { type: 'string', example: 'v1.customer.subscription.updated' },
        created: { type: 'string', format: 'date-time' },
        livemode: { type: 'boolean' },
        context: { type: 'string', description: 'the connected account, e.g. acct_123' },
        snapshot_event: { type: 'string', description: 'the classic event this thin event copies' },
        related_object: {
          type: 'object',
          properties: { id: { type: 'string' }, type: { type: 'string' }, url: { type: 'string' } },
        },
      },
    },
  })
  @ApiBadRequestResponse({
    description:
      'invalid_signature, or invalid_payload (not a thin event: a classic event belongs on /webhooks/stripe)',
  })
  async receiveThin(@Req() request: Request, @Res() response: Response): Promise<void> {
    const rawBody = rawBodyOf(request);
    const payload = this.verifier.verifyThin(rawBody, request.headers['stripe-signature']);
    refuseEncoded(request);
    const event = thinEventFromPayload(payload);
    await this.store(response, event, rawBody.toString('utf8'), { source: 'thin' });
  }

  private async store(response: Response, event: StripeEvent, rawText: string, origin?: EventOrigin): Promise<void> {
    response.locals.eventType = event.type;
    const { duplicate } = await this.queue.enqueue(event, rawText, origin);
    response.locals.duplicate = duplicate;
    // Written as is: the hottest route skips serialising and hashing (ETag) a constant answer.
    response
      .status(200)
      .type('application/json; charset=utf-8')
      .end(duplicate ? DUPLICATE : RECEIVED);
  }
}

/** What both Stripe routes document alike: the signature header, the 200 answers, the limits. */
function ApiStripeDelivery(): MethodDecorator {
  return applyDecorators(
    ApiTags('stripe'),
    ApiHeader({ name: 'Stripe-Signature', required: true, description: 't=<timestamp>,v1=<HMAC-SHA256>' }),
    ApiOkResponse({
      description: 'Stored durably (or a duplicate of a stored event).',
      schema: { example: { received: true } },
    }),
    ApiPayloadTooLargeResponse({ description: 'payload_too_large: above WEBHOOK_MAX_BODY_BYTES' }),
    ApiRequestTimeoutResponse({ description: 'request_timeout: the body did not arrive within 10 seconds' }),
    ApiServiceUnavailableResponse({
      description:
        'unavailable: the database cannot take the write, or too many bodies are being received; Stripe retries',
    }),
  );
}

function rawBodyOf(request: Request): Buffer {
  return Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
}

/**
 * Stripe never compresses; bodies are checked and stored as sent, never inflated, so signed
 * compressed bytes are not a JSON Stripe event.
 */
function refuseEncoded(request: Request): void {
  const encoding = request.headers['content-encoding']?.trim().toLowerCase();
  if (encoding && encoding !== 'identity') {
    throw new AppError(
      ErrorCode.InvalidPayload,
      'The body has a Content-Encoding; Stripe sends webhook bodies uncompressed, and this endpoint does not inflate them.',
    );
  }
}
