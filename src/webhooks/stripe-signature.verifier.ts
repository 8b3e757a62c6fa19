import { Injectable } from '@nestjs/common';
import Stripe from 'stripe';
import { AppError, ErrorCode } from '../common/app-error';
import { parseJsonBody } from '../common/stripe-event';
import { AppConfig } from '../config/app-config';

/**
 * Stripe's own verifier over the raw body, against every configured secret. stripe-node refuses
 * only old timestamps (future ones are refused here) and reads a tolerance of 0 as "no check".
 */
@Injectable()
export class StripeSignatureVerifier {
  private readonly secrets: readonly string[];
  private readonly toleranceSeconds: number;
  /**
   * Only parses thin event notifications (stripe-node's parseEventNotification is a client method):
   * it has no key and refuses to send any request.
   */
  private readonly notifications = new Stripe('', {
    authenticator: () => Promise.reject(new Error('this Stripe client only verifies thin event notifications')),
    telemetry: false,
  });

  constructor(config: AppConfig) {
    this.secrets = config.stripeWebhookSecrets;
    this.toleranceSeconds = config.stripeWebhookToleranceSeconds;
  }

  /**
   * A thin event notification, verified with stripe-node's `parseEventNotification` against every
   * configured secret, after the same header and tolerance check as `verify` (stripe-node accepts
   * future timestamps). Returns the body as JSON; a signed body that is not a thin event (not JSON,
   * or a classic event, which stripe-node refuses here) is `invalid_payload`.
   */
  verifyThin(rawBody: Buffer, header: unknown, nowMs: number = Date.now()): unknown {
    this.checkHeader(header, nowMs);
    for (const secret of this.secrets) {
      try {
        this.notifications.parseEventNotification(rawBody, header, secret, this.toleranceSeconds, undefined, nowMs);
      } catch (error) {
        if (error instanceof Stripe.errors.StripeSignatureVerificationError) {
          continue; // not this secret
        }
        // Verified, but stripe-node cannot read it as a thin event (not JSON, or a classic event):
        // our own checks of the body say why.
      }
      return parseJsonBody(rawBody);
    }
    throw invalid('No v1 signature in the Stripe-Signature header matches this payload for any configured secret.');
  }

  verify(rawBody: Buffer, header: unknown, nowMs: number = Date.now()): void {
    this.checkHeader(header, nowMs);
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

  /**
   * The part of the check that needs no body: the header is there, has a timestamp and a v1
   * signature, and the timestamp is within the tolerance. Run before the body is read, so that
   * what can never verify is refused without reading it, with the same answer as verify's.
   */
  checkHeader(header: unknown, nowMs: number = Date.now()): asserts header is string {
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
