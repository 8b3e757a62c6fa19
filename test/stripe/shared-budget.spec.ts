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
    expect(fake.requests.length - from).toBe(24);
    // Every request was counted in the one count of the service, at most 4 in any second of the
    // database clock, so the 24 took at least 6 seconds (without it the two would send 8 a second).
    const { rows } = await db.pool.query<{ second: string; used: number }>(
      'SELECT second, used FROM stripe_api_budget WHERE second >= $1 ORDER BY second',
      [now - 1],
    );
    expect(rows.reduce((sum, r) => sum + r.used, 0)).toBe(24);
    expect(Math.max(...rows.map((r) => r.used))).toBeLessThanOrEqual(4);
    expect(rows.length).toBeGreaterThanOrEqual(6);
  });
});
