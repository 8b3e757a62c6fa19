import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';

export const TEST_SECRET = 'whsec_test_primary_0123456789abcdef';
export const SECOND_SECRET = 'whsec_test_secondary_fedcba9876543210';

export function randomId(prefix: string): string {
  return `${prefix}_${randomBytes(8).toString('hex')}`;
}

/** A minimal but well-formed Stripe event envelope. */
export function stripeEvent(
  type: string,
  object: Record<string, unknown>,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    id: randomId('evt'),
    object: 'event',
    api_version: '2025-10-29.clover',
    created: Math.floor(Date.now() / 1000),
    data: { object },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
    ...overrides,
  };
}

/** A Stripe-Signature header, made by stripe-node's own helper. */
export function signatureHeader(payload: string, secret = TEST_SECRET, timestamp?: number): string {
  return Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp });
}
