import { StripeApi } from '../../src/stripe/stripe-api.service';
import { createTestDatabase, TestDatabase } from '../support/database';
import { FakeStripe } from '../support/fake-stripe';
import { startPullingApp } from '../support/reconcile';
import { TestApp } from '../support/test-app';

describe('STRIPE_API_MAX_RPS for the whole service (every replica together)', () => {
  let db: TestDatabase;
  let fake: FakeStripe;
  const apps: TestApp[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    fake = await FakeStripe.start();
  });
  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await fake.close();
    await db.drop();
  });

  it('two replicas calling Stripe at once share one budget per second', async () => {
    for (let i = 0; i < 2; i++) {
      apps.push(await startPullingApp(db.url, fake, { STRIPE_API_MAX_RPS: '4' }));
    }
    const now = Math.floor(Date.now() / 1000);
    const query = { types: ['customer.created'], createdGte: now - 3600, createdLte: now };
    const from = fake.requests.length;
    // 12 calls on each replica: each alone would send them at 4 a second, 8 a second together.
    await Promise.all(
      apps.flatMap((app) => Array.from({ length: 12 }, () => app.app.get(StripeApi).listEvents(query))),
    );
    const times = fake.requests.slice(from).map((r) => r.time);
    expect(times).toHaveLength(24);
    // At most 4 in each second of the clock: 24 requests span 6 seconds, so more than 4 s from the
    // first to the last (each replica alone: 12 at 4 a second, under 3 s).
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThan(4_000);
    const perSecond = new Map<number, number>();
    for (const time of times) {
      perSecond.set(Math.floor(time / 1000), (perSecond.get(Math.floor(time / 1000)) ?? 0) + 1);
    }
    // Seconds as the fake's clock cuts them (a request taken at the end of a second may arrive in the next).
    expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(4 + 1);
    const { rows } = await db.pool.query<{ used: number }>(
      'SELECT used FROM stripe_api_budget WHERE second >= $1 ORDER BY second',
      [now - 1],
    );
    expect(rows.reduce((sum, r) => sum + r.used, 0)).toBe(24);
    expect(Math.max(...rows.map((r) => r.used))).toBeLessThanOrEqual(4);
  });
});
