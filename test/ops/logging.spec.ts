import { randomBytes } from 'node:crypto';
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

describe('logs of the service as a process (production)', () => {
  const db = useServiceDatabase();

  it('writes JSON lines only, names each event by id and type, and never shows a secret, token or signature', async () => {
    const secret = `whsec_${randomBytes(16).toString('hex')}`;
    const token = randomBytes(24).toString('hex');
    const service = spawnService(
      await productionEnvironment(db, {
        LOG_LEVEL: 'info',
        STRIPE_WEBHOOK_SECRET: secret,
        ADMIN_API_TOKEN: `ops:${token}`,
      }),
      scratchDirectory(),
    );
    let stdout = '';
    service.child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const lines = () => stdout.split('\n').filter((line) => line.trim() !== '');

    const event = fixtureEvent('customer.created', newWorld());
    const payload = JSON.stringify(event);
    const header = signatureHeader(payload, secret);
    const signature = /v1=([0-9a-f]+)/.exec(header)?.[1] as string;
    try {
      await waitFor(service, '/health/ready');
      const delivered = await fetch(`${service.url}/webhooks/stripe`, {
        method: 'POST',
        headers: { 'Stripe-Signature': header, 'Content-Type': 'application/json' },
        body: payload,
      });
      expect(delivered.status).toBe(200);
      const admin = await fetch(`${service.url}/admin/events/${event.id}`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(admin.status).toBe(200);
      // A refused call is logged too, with the header that carried the wrong token.
      expect(
        (await fetch(`${service.url}/admin/audit-log`, { headers: { Authorization: 'Bearer nope' } })).status,
      ).toBe(401);
      await waitUntil(
        () => lines().some((line) => line.includes(`/admin/events/${event.id}`)),
        5_000,
        'admin log line',
      );
    } finally {
      service.child.kill('SIGTERM');
    }
    expect(await service.exited).toBe(0);

    const records = lines().map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON line: ${line}`);
      }
    });
    expect(records.length).toBeGreaterThan(0);
    expect(records).toContainEqual(expect.objectContaining({ eventId: event.id, eventType: 'customer.created' }));
    expect(records).toContainEqual(
      expect.objectContaining({
        req: expect.objectContaining({
          url: `/admin/events/${event.id}`,
          headers: expect.objectContaining({ authorization: '[redacted]' }),
        }),
      }),
    );
    const everything = service.output(); // stdout and stderr
    for (const value of [secret, token, signature]) {
      expect(everything).not.toContain(value);
    }
  });
});
