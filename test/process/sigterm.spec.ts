import { count } from '../support/database';
import { fixtureEvent, newWorld } from '../support/fixtures';
import {
  productionEnvironment,
  scratchDirectory,
  spawnService,
  useServiceDatabase,
  waitFor,
} from '../support/service-process';
import { signatureHeader } from '../support/stripe';
import { waitUntil } from '../support/wait';

describe('SIGTERM under load (real process)', () => {
  const db = useServiceDatabase();

  it('exits 0, and every acknowledged event is processed after a restart', async () => {
    const env = () => productionEnvironment(db, { DB_POOL_SIZE: '6' });
    const first = spawnService(await env(), scratchDirectory());
    await waitFor(first, '/health/ready');

    // Subscription events for 40 customers, sent by 8 concurrent senders until the process is gone.
    const events = Array.from({ length: 40 }, () => newWorld()).flatMap((w) => [
      fixtureEvent('customer.created', w),
      fixtureEvent('customer.subscription.created', w),
      fixtureEvent('customer.subscription.updated', w),
      fixtureEvent('invoice.paid', w),
    ]);
    const acknowledged: string[] = [];
    const refusedAfterSigterm: number[] = [];
    let next = 0;
    let sigtermSent = false;
    const sender = async (): Promise<void> => {
      while (next < events.length) {
        const event = events[next++];
        const payload = JSON.stringify(event);
        try {
          const res = await fetch(`${first.url}/webhooks/stripe`, {
            method: 'POST',
            headers: { 'Stripe-Signature': signatureHeader(payload), 'Content-Type': 'application/json' },
            body: payload,
          });
          if (res.status === 200) {
            acknowledged.push(event.id as string);
          } else if (sigtermSent) {
            refusedAfterSigterm.push(res.status);
          } else {
            throw new Error(`unexpected ${res.status} before SIGTERM`);
          }
        } catch (error) {
          if (!sigtermSent) {
            throw error;
          }
          // Connection refused once the process has closed its server: Stripe would retry.
        }
      }
    };
    const senders = Array.from({ length: 8 }, () => sender());
    await waitUntil(() => acknowledged.length >= 40, 20_000, '40 acknowledged');
    sigtermSent = true;
    first.child.kill('SIGTERM');
    await Promise.all(senders);
    expect(await first.exited).toBe(0);
    expect(refusedAfterSigterm.every((status) => status === 503)).toBe(true);

    // Every acknowledged event is stored; none is left held by the stopped replica.
    expect(await count(db.pool, 'subscription_events', 'stripe_event_id = ANY($1)', [acknowledged])).toBe(
      acknowledged.length,
    );
    expect(await count(db.pool, 'webhook_retry_queue', 'lock_token IS NOT NULL AND next_retry_at > now()')).toBe(0);

    const second = spawnService({ ...(await env()), RETRY_CRON: '* * * * * *' }, scratchDirectory());
    try {
      await waitFor(second, '/health/ready');
      await waitUntil(
        async () =>
          (await count(db.pool, 'subscription_events', `stripe_event_id = ANY($1) AND status = 'processed'`, [
            acknowledged,
          ])) === acknowledged.length,
        30_000,
        'all acknowledged events processed',
      );
      expect(
        await count(db.pool, 'subscription_events', `stripe_event_id = ANY($1) AND attempts <> 1`, [acknowledged]),
      ).toBe(0);
    } finally {
      second.child.kill('SIGTERM');
    }
    expect(await second.exited).toBe(0);
  }, 90_000);
});
