import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import type { StripeJson } from './fixtures';

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

/**
 * A thin event notification as an event destination with thin payloads sends it: no `data`, `created`
 * as an ISO time; thin copies of classic events also name their snapshot (see thinCopyOf).
 */
export function thinEvent(type: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: randomId('evt_test'),
    object: 'v2.core.event',
    type,
    livemode: false,
    created: new Date().toISOString(),
    ...overrides,
  };
}

/** The thin copy (`v1.<type>`) of a classic event: its `snapshot_event` and `related_object`. */
export function thinCopyOf(snapshot: StripeJson, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const object = (snapshot.data as { object: { id: string; object: string } }).object;
  return thinEvent(`v1.${snapshot.type as string}`, {
    created: new Date((snapshot.created as number) * 1000).toISOString(),
    snapshot_event: snapshot.id as string,
    related_object: { id: object.id, type: object.object, url: `/v1/${object.object}s/${object.id}` },
    ...overrides,
  });
}
