import { Injectable } from '@nestjs/common';
import Stripe from 'stripe';
import { AppError, ErrorCode } from '../common/app-error';
import { AppConfig } from '../config/app-config';

/**
 * Stripe's own verifier over the raw body, against every configured secret. stripe-node refuses
 * only old timestamps (future ones are refused here) and reads a tolerance of 0 as "no check".
 */
@Injectable()
export class StripeSignatureVerifier {
  private readonly secrets: readonly string[];
  private readonly toleranceSeconds: number;

  constructor(config: AppConfig) {
    this.secrets = config.stripeWebhookSecrets;
    this.toleranceSeconds = config.stripeWebhookToleranceSeconds;
  }

  verify(rawBody: Buffer, header: unknown, nowMs: number = Date.now()): void {
    if (typeof header !== 'string' || header.trim() === '') {
      throw invalid('The Stripe-Signature header is missing.');
    }
    const timestamp = signatureTimestamp(header);
    if (timestamp === undefined) {
      throw invalid('The Stripe-Signature header is malformed (it needs t=<timestamp> and a v1=<signature>).');
    }
    const age = Math.floor(nowMs / 1000) - timestamp;
    if (Math.abs(age) > this.toleranceSeconds) {
      throw invalid(`The signature timestamp is outside the tolerance of ${this.toleranceSeconds} seconds.`);
    }
    const signature = Stripe.webhooks.signature;
    if (!signature) {
      throw new Error('stripe-node has no webhook signature helper');
    }
    for (const secret of this.secrets) {
      try {
        signature.verifyHeader(rawBody, header, secret, this.toleranceSeconds, undefined, nowMs);
        return;
      } catch {
        // Not this secret (or not verifiable at all): try the next; failing all is answered below.
      }
    }
    throw invalid('No v1 signature in the Stripe-Signature header matches this payload for any configured secret.');
  }
}

/**
 * The timestamp exactly as stripe-node reads it (the last `t=` wins, parseInt), or undefined when the
 * header has no usable timestamp or no `v1` signature at all.
 */
export function signatureTimestamp(header: string): number | undefined {
  let timestamp = Number.NaN;
  let hasV1 = false;
  for (const item of header.split(',')) {
    const [key, value] = item.split('=');
    if (key === 't') {
      timestamp = parseInt(value ?? '', 10);
    } else if (key === 'v1' && value) {
      hasV1 = true;
    }
  }
  return Number.isFinite(timestamp) && hasV1 ? timestamp : undefined;
}

function invalid(message: string): AppError {
  return new AppError(ErrorCode.InvalidSignature, message);
}
