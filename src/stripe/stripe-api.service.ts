import { Injectable, Logger, Optional } from '@nestjs/common';
import Stripe from 'stripe';
import { isObject } from '../common/stripe-event';
import { AppConfig } from '../config/app-config';
import { rateLimitedHttpClient } from './rate-limited-http-client';
import { SharedStripeBudget } from './shared-budget';
import { describeStripeError, MalformedStripeResponseError } from './stripe-errors';

/** Stripe's largest page. */
export const PAGE_LIMIT = 100;
/** Retries of a failed request: stripe-node's own for 5xx and dropped connections, ours for 429. */
const MAX_NETWORK_RETRIES = 3;
/** stripe-node's backoff (0.5 s doubling, at most 5 s, jittered), which 429s get too. */
const RETRY_BASE_MS = 500;
const RETRY_MAX_MS = 5_000;
const REQUEST_TIMEOUT_MS = 20_000;

/** An event as the Events API lists it. */
export interface ListedEvent {
  id: string;
  type: string;
  created: number;
  livemode: boolean | null;
  api_version: string | null;
  data: { object: Record<string, unknown> };
  [field: string]: unknown;
}

export interface EventsPage {
  events: ListedEvent[];
  hasMore: boolean;
}

export interface EventsQuery {
  types: string[];
  /** `created` bounds in seconds, both included. */
  createdGte: number;
  createdLte: number;
  startingAfter?: string;
}

/** Per-call options: `account` makes the call for a connected account (header `Stripe-Account`). */
export interface CallOptions {
  account?: string | null;
}

export interface ActiveEntitlement {
  lookupKey: string;
  feature: string | null;
}

/**
 * Every call this service makes to Stripe's API: stripe-node pointed at STRIPE_API_BASE, with
 * `maxNetworkRetries` for 5xx and dropped connections, a retry with the same backoff for 429 (which
 * stripe-node leaves to the caller), and one request budget of STRIPE_API_MAX_RPS spread evenly over
 * the process and shared by every replica (SharedStripeBudget; without it, as in unit tests, the
 * process's own). Without STRIPE_API_KEY it is disabled and nothing here calls Stripe.
 */
@Injectable()
export class StripeApi {
  private readonly logger = new Logger(StripeApi.name);
  private readonly stripe: Stripe | undefined;

  constructor(config: AppConfig, @Optional() shared?: SharedStripeBudget) {
    const api = config.stripeApi;
    this.stripe = api
      ? new Stripe(api.key, {
          host: api.location.host,
          port: api.location.port,
          protocol: api.location.protocol,
          maxNetworkRetries: MAX_NETWORK_RETRIES,
          timeout: REQUEST_TIMEOUT_MS,
          httpClient: rateLimitedHttpClient(api.maxRequestsPerSecond, shared && (() => shared.take())),
          telemetry: false,
          appInfo: { name: 'stripe-webhook-processor' },
        })
      : undefined;
  }

  get enabled(): boolean {
    return this.stripe !== undefined;
  }

  /** One page of `GET /v1/events`, newest first, checked to be what Stripe documents. */
  async listEvents(query: EventsQuery, options: CallOptions = {}): Promise<EventsPage> {
    const stripe = this.client();
    const page: unknown = await this.withRateLimitRetries(() =>
      stripe.events.list(
        {
          limit: PAGE_LIMIT,
          types: query.types,
          created: { gte: query.createdGte, lte: query.createdLte },
          ...(query.startingAfter ? { starting_after: query.startingAfter } : {}),
        },
        requestOptions(options),
      ),
    );
    const { data, hasMore } = listOf(page, 'GET /v1/events');
    return { events: data.map((item) => checkedEvent(item)), hasMore };
  }

  /**
   * One event, `GET /v1/events/:id` (a thin event's snapshot), checked to be an event. `context` is
   * sent as `Stripe-Context` (the connected account a thin event names). A 404 throws a
   * StripeInvalidRequestError whose statusCode is 404 (see isNotFound).
   */
  async retrieveEvent(id: string, options: { context?: string | null } = {}): Promise<ListedEvent> {
    const stripe = this.client();
    const event: unknown = await this.withRateLimitRetries(() =>
      stripe.events.retrieve(id, {}, options.context ? { stripeContext: options.context } : {}),
    );
    return checkedEvent(event, 'GET /v1/events/:id answered');
  }

  /** Every active entitlement of a customer, reading every page of `GET /v1/entitlements/active_entitlements`. */
  async activeEntitlements(customer: string, options: CallOptions = {}): Promise<ActiveEntitlement[]> {
    const stripe = this.client();
    const out: ActiveEntitlement[] = [];
    let startingAfter: string | undefined;
    for (;;) {
      const page: unknown = await this.withRateLimitRetries(() =>
        stripe.entitlements.activeEntitlements.list(
          {
            customer,
            limit: PAGE_LIMIT,
            ...(startingAfter ? { starting_after: startingAfter } : {}),
          },
          requestOptions(options),
        ),
      );
      const { data, hasMore } = listOf(page, 'GET /v1/entitlements/active_entitlements');
      for (const item of data) {
        if (!isObject(item) || typeof item.id !== 'string' || typeof item.lookup_key !== 'string') {
          throw new MalformedStripeResponseError('an active entitlement without an id or lookup_key');
        }
        out.push({ lookupKey: item.lookup_key, feature: typeof item.feature === 'string' ? item.feature : null });
      }
      if (!hasMore || data.length === 0) {
        return out;
      }
      startingAfter = (data[data.length - 1] as { id: string }).id;
    }
  }

  private client(): Stripe {
    if (!this.stripe) {
      throw new Error('STRIPE_API_KEY is not set');
    }
    return this.stripe;
  }

  private async withRateLimitRetries<T>(call: () => Promise<T>): Promise<T> {
    for (let retry = 0; ; retry++) {
      try {
        return await call();
      } catch (error) {
        if (!(error instanceof Stripe.errors.StripeRateLimitError) || retry >= MAX_NETWORK_RETRIES) {
          throw error;
        }
        const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** retry) * (0.5 + Math.random() / 2);
        this.logger.warn({ retry: retry + 1, error: describeStripeError(error) }, 'Stripe rate-limited a request');
        await new Promise((resolve) => setTimeout(resolve, Math.max(RETRY_BASE_MS, delay)));
      }
    }
  }
}

/** stripe-node's per-request options for ours: `stripeAccount` sends `Stripe-Account`. */
function requestOptions(options: CallOptions): Stripe.RequestOptions {
  return options.account ? { stripeAccount: options.account } : {};
}

function listOf(page: unknown, what: string): { data: unknown[]; hasMore: boolean } {
  if (!isObject(page) || page.object !== 'list' || !Array.isArray(page.data) || typeof page.has_more !== 'boolean') {
    throw new MalformedStripeResponseError(`${what} did not answer a list (object "list", data, has_more)`);
  }
  return { data: page.data as unknown[], hasMore: page.has_more };
}

function checkedEvent(item: unknown, what = 'GET /v1/events listed'): ListedEvent {
  if (
    !isObject(item) ||
    typeof item.id !== 'string' ||
    item.id === '' ||
    typeof item.type !== 'string' ||
    typeof item.created !== 'number' ||
    !isObject(item.data) ||
    !isObject(item.data.object)
  ) {
    throw new MalformedStripeResponseError(`${what} an event without id, type, created or data.object`);
  }
  return item as ListedEvent;
}
