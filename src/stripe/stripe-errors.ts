import Stripe from 'stripe';

/** A page or object that is not what Stripe's API documents (retrying may help; storing it would not). */
export class MalformedStripeResponseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedStripeResponseError';
  }
}

/** The key was refused: 401 (unknown or revoked key) or 403 (a restricted key without the permission). */
export function isKeyRefused(error: unknown): boolean {
  return (
    error instanceof Stripe.errors.StripeAuthenticationError || error instanceof Stripe.errors.StripePermissionError
  );
}

/** The key itself was refused (401): unknown, expired or revoked, whatever account a call is made for. */
export function isKeyUnknown(error: unknown): boolean {
  return error instanceof Stripe.errors.StripeAuthenticationError;
}

const KEY_LIKE = /\b[a-z]{2,4}_(test|live)_[A-Za-z0-9*]+/g;

/**
 * A one-line description of a failed Stripe call for logs, the runs table and alerts. Stripe's
 * messages about keys quote part of the key, so a refused key is described in our own words, and
 * anything shaped like a key is blanked from every other message.
 */
export function describeStripeError(error: unknown): string {
  if (error instanceof Stripe.errors.StripeAuthenticationError) {
    return `Stripe refused STRIPE_API_KEY (${error.statusCode ?? 401}): the key is unknown, expired or revoked`;
  }
  if (error instanceof Stripe.errors.StripePermissionError) {
    return `Stripe refused STRIPE_API_KEY (${error.statusCode ?? 403}): the key lacks a read permission this service needs`;
  }
  if (error instanceof Stripe.errors.StripeError) {
    const status = error.statusCode === undefined ? 'no answer' : String(error.statusCode);
    const code = error.code ? `, ${error.code}` : '';
    return `${error.type} (${status}${code}): ${error.message}`.replace(KEY_LIKE, '[key]');
  }
  if (error instanceof Error) {
    return `${error.name}: ${error.message}`.replace(KEY_LIKE, '[key]');
  }
  return String(error).replace(KEY_LIKE, '[key]');
}

/** Stripe does not know the object asked for (404 `resource_missing`): asking again cannot help. */
export function isNotFound(error: unknown): boolean {
  return error instanceof Stripe.errors.StripeError && error.statusCode === 404;
}
