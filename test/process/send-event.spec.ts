import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { entitlementsOf } from '../support/billing';
import { TEST_SECRET } from '../support/stripe';
import { TEST_BUILD_DIR } from '../support/test-env';
import { useTestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

const run = promisify(execFile);

describe('npm run send-event', () => {
  const { db, t } = useTestApp();

  const sendEvent = (...args: string[]) =>
    run(process.execPath, [join(TEST_BUILD_DIR, 'scripts', 'send-event.js'), ...args], {
      env: { PATH: process.env.PATH ?? '', STRIPE_WEBHOOK_SECRET: TEST_SECRET },
    });

  it('signs a realistic fixture with the configured secret and posts it; the service applies it', async () => {
    const { stdout } = await sendEvent(
      'customer.subscription.updated',
      '--url',
      `${t.url}/webhooks/stripe`,
      '--customer',
      'cus_sent_by_tool',
    );
    expect(stdout).toMatch(/^customer\.subscription\.updated evt_\w+ → 200 \{"received":true\}/);
    const view = await waitUntil(async () => {
      const v = await entitlementsOf(t, '/v1/customers/cus_sent_by_tool/entitlements');
      return v.body.active === true ? v.body : undefined;
    }, 5_000);
    expect(view).toMatchObject({ status: 'active', price_ids: ['price_1QProMonthly01'] });
  });

  it('sends an event of a connected account with --account, stored with that account', async () => {
    const { stdout } = await sendEvent(
      'customer.created',
      '--url',
      `${t.url}/webhooks/stripe`,
      '--account',
      'acct_1SentByTool',
    );
    const id = /evt_\w+/.exec(stdout)?.[0] as string;
    expect(stdout).toContain('→ 200');
    const { rows } = await db.pool.query('SELECT account_id FROM subscription_events WHERE stripe_event_id = $1', [id]);
    expect(rows).toEqual([{ account_id: 'acct_1SentByTool' }]);
  });

  it('picks a variant, and fails clearly for an unknown type', async () => {
    const { stdout } = await sendEvent('checkout.session.completed', '--variant', 'subscription', '--print');
    expect(JSON.parse(stdout)).toMatchObject({
      type: 'checkout.session.completed',
      data: { object: { mode: 'subscription' } },
    });
    await expect(sendEvent('no.such.event', '--print')).rejects.toMatchObject({
      stderr: expect.stringContaining('no fixture for no.such.event'),
    });
  });
});
