import { Logger } from '@nestjs/common';
import Stripe from 'stripe';
import { AppConfig } from '../../src/config/app-config';
import { StripeApi } from '../../src/stripe/stripe-api.service';
import { describeStripeError, isKeyRefused, MalformedStripeResponseError } from '../../src/stripe/stripe-errors';
import { busiestWindow, FakeStripe } from '../support/fake-stripe';
import { fixtureEvent, newWorld } from '../support/fixtures';

function apiFor(fake: FakeStripe, env: Record<string, string> = {}, key = fake.apiKey): StripeApi {
  return new StripeApi(
    AppConfig.fromEnvironment({ NODE_ENV: 'test', STRIPE_API_KEY: key, STRIPE_API_BASE: fake.url, ...env }),
  );
}

describe('StripeApi (stripe-node against the fake)', () => {
  let fake: FakeStripe;
  const now = Math.floor(Date.now() / 1000);
  const query = { types: ['customer.created'], createdGte: now - 3600, createdLte: now };

  beforeAll(() => Logger.overrideLogger(false)); // StripeApi is built here without the app's logger
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose', 'fatal']));

  beforeEach(async () => {
    fake = await FakeStripe.start();
    fake.addEvents(
      Array.from({ length: 3 }, (_, i) =>
        Object.assign(fixtureEvent('customer.created', newWorld()), { created: now - i }),
      ),
    );
  });
  afterEach(() => fake.close());

  it('is disabled without STRIPE_API_KEY and then calls nothing', async () => {
    const api = new StripeApi(AppConfig.fromEnvironment({ NODE_ENV: 'test', STRIPE_API_BASE: fake.url }));
    expect(api.enabled).toBe(false);
    await expect(api.listEvents(query)).rejects.toThrow('STRIPE_API_KEY is not set');
    expect(fake.requests).toHaveLength(0);
  });

  it('lists a page of events with limit 100, types[] and the created range, through STRIPE_API_BASE', async () => {
    const page = await apiFor(fake).listEvents(query);
    expect(page.hasMore).toBe(false);
    expect(page.events).toHaveLength(3);
    expect(fake.requests[0].query).toEqual({
      limit: '100',
      types: ['customer.created'],
      created: { gte: String(now - 3600), lte: String(now) },
    });
  });

  it('retries a 429 with backoff (stripe-node does not) and a 5xx or a dropped connection (stripe-node does)', async () => {
    fake.fail({ failure: 429, times: 2 });
    fake.fail({ failure: 500 });
    fake.fail({ failure: 'drop' });
    expect((await apiFor(fake).listEvents(query)).events).toHaveLength(3);
    expect(fake.requests).toHaveLength(5);
  });

  it('gives up on a storm of 429 after its retries, with the error that says so', async () => {
    fake.fail({ failure: 429, times: Infinity });
    const error = await apiFor(fake)
      .listEvents(query)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    expect(fake.requests).toHaveLength(4);
  });

  it('refuses a malformed page instead of reading it', async () => {
    fake.fail({ failure: 'malformed' });
    await expect(apiFor(fake).listEvents(query)).rejects.toBeInstanceOf(MalformedStripeResponseError);
  });

  it('reports a refused key (401, 403) in its own words, never quoting the key', async () => {
    const key = 'sk_test_this_key_is_wrong_123456789';
    const refused = await apiFor(fake, {}, key)
      .listEvents(query)
      .catch((e: unknown) => e);
    expect(isKeyRefused(refused)).toBe(true);
    expect(describeStripeError(refused)).toMatch(/^Stripe refused STRIPE_API_KEY \(401\)/);
    fake.denyPermission('/v1/events');
    const forbidden = await apiFor(fake)
      .listEvents(query)
      .catch((e: unknown) => e);
    expect(isKeyRefused(forbidden)).toBe(true);
    expect(describeStripeError(forbidden)).toMatch(/\(403\)/);
    for (const error of [refused, forbidden]) {
      expect(describeStripeError(error)).not.toContain('6789');
      expect(describeStripeError(error)).not.toContain(fake.apiKey.slice(-6));
    }
  });

  it('reads every page of active entitlements', async () => {
    const features = Array.from({ length: 250 }, (_, i) => ({ lookup_key: `f_${i}`, feature: `feat_${i}` }));
    fake.setActiveEntitlements('cus_many', features);
    const all = await apiFor(fake).activeEntitlements('cus_many');
    expect(all.map((e) => e.lookupKey)).toEqual(features.map((f) => f.lookup_key));
    expect(fake.requestsTo('/v1/entitlements/active_entitlements').map((r) => r.query.starting_after ?? null)).toEqual([
      null,
      'ent_test_cus_many_99',
      'ent_test_cus_many_199',
    ]);
  });

  it('keeps every caller of the process within STRIPE_API_MAX_RPS (no one-second window holds more, +1)', async () => {
    const api = apiFor(fake, { STRIPE_API_MAX_RPS: '8' });
    fake.setActiveEntitlements('cus_a', [{ lookup_key: 'a', feature: 'feat_a' }]);
    // 24 calls at once from two kinds of caller: they share one budget.
    await Promise.all(
      Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? api.listEvents(query) : api.activeEntitlements('cus_a'))),
    );
    const times = fake.requests.map((r) => r.time);
    expect(times).toHaveLength(24);
    expect(busiestWindow(times)).toBeLessThanOrEqual(8 + 1);
  });
});
