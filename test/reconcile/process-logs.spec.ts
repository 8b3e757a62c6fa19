import { randomBytes } from 'node:crypto';
import { createTestDatabase, TestDatabase } from '../support/database';
import { FakeStripe } from '../support/fake-stripe';
import { dbNow, stripeEvents } from '../support/reconcile';
import {
  freePort,
  removeScratchDirectories,
  scratchDirectory,
  spawnService,
  waitFor,
} from '../support/service-process';
import { waitUntil } from '../support/wait';

describe('pulling from Stripe, as a process (production)', () => {
  let db: TestDatabase;
  let fake: FakeStripe;
  beforeAll(async () => {
    db = await createTestDatabase();
    fake = await FakeStripe.start(`sk_live_${randomBytes(16).toString('hex')}`);
  });
  afterAll(async () => {
    removeScratchDirectories();
    await fake.close();
    await db.drop();
  });

  it('sweeps on RECONCILE_CRON and never writes STRIPE_API_KEY to its output, refused or not', async () => {
    fake.addEvents(stripeEvents(3, (await dbNow(db.pool)) - 600, 60));
    const token = randomBytes(24).toString('hex');
    const env = {
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      PORT: String(await freePort()),
      DATABASE_URL: db.url,
      STRIPE_WEBHOOK_SECRET: `whsec_${randomBytes(16).toString('hex')}`,
      ADMIN_API_TOKEN: `ops:${token}`,
      STRIPE_API_BASE: fake.url,
      RECONCILE_CRON: '* * * * * *',
    };
    const wrongKey = `sk_live_${randomBytes(16).toString('hex')}`;
    const refused = spawnService({ ...env, STRIPE_API_KEY: wrongKey }, scratchDirectory());
    try {
      await waitFor(refused, '/health/ready');
      await waitUntil(() => refused.output().includes('reconciliation failed'), 10_000, 'a refused sweep logged');
    } finally {
      refused.child.kill('SIGTERM');
    }
    expect(await refused.exited).toBe(0);
    expect(refused.output()).toContain('Stripe refused STRIPE_API_KEY (401)');

    const accepted = spawnService(
      { ...env, PORT: String(await freePort()), STRIPE_API_KEY: fake.apiKey },
      scratchDirectory(),
    );
    try {
      await waitFor(accepted, '/health/ready');
      await waitUntil(() => accepted.output().includes('reconciliation succeeded'), 10_000, 'a sweep logged');
      const health = (await (await fetch(`${accepted.url}/health/webhooks`)).json()) as {
        info: { webhooks: { reconcile: string } };
      };
      expect(health.info.webhooks.reconcile).toBe('ok');
    } finally {
      accepted.child.kill('SIGTERM');
    }
    expect(await accepted.exited).toBe(0);
    expect(accepted.output()).toContain('event recovered from Stripe');
    for (const key of [wrongKey, fake.apiKey]) {
      for (const output of [refused.output(), accepted.output()]) {
        expect(output).not.toContain(key);
        expect(output).not.toContain(key.slice(-8));
      }
    }
  });
});
