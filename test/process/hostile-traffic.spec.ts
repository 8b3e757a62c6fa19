import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createTestDatabase, TestDatabase } from '../support/database';
import { fixtureEvent, newWorld } from '../support/fixtures';
import { openRaw, RawConnection, requestHead, within } from '../support/raw-http';
import {
  freePort,
  removeScratchDirectories,
  scratchDirectory,
  ServiceProcess,
  spawnService,
  waitFor,
} from '../support/service-process';
import { signatureHeader } from '../support/stripe';
import { waitUntil } from '../support/wait';

const MB = 1024 * 1024;

/** Resident memory of a process, now and at its peak (Linux), in MiB. */
function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

async function receivedTotals(service: ServiceProcess): Promise<Record<string, number>> {
  const text = await (await fetch(`${service.url}/metrics`)).text();
  const totals: Record<string, number> = {};
  for (const [, outcome, n] of text.matchAll(
    /^stripe_webhook_events_received_total\{[^}]*outcome="(\w+)"\} (\d+)$/gm,
  )) {
    totals[outcome] = (totals[outcome] ?? 0) + Number(n);
  }
  return totals;
}

describe('the service as a process under hostile traffic (production)', () => {
  let db: TestDatabase;
  const secret = `whsec_${randomBytes(16).toString('hex')}`;
  const baseEnv = async (): Promise<Record<string, string>> => ({
    NODE_ENV: 'production',
    LOG_LEVEL: 'info',
    PORT: String(await freePort()),
    DATABASE_URL: db.url,
    STRIPE_WEBHOOK_SECRET: secret,
    ADMIN_API_TOKEN: `ops:${randomBytes(24).toString('hex')}`,
  });
  const deliver = async (service: ServiceProcess): Promise<number> => {
    const payload = JSON.stringify(fixtureEvent('customer.created', newWorld()));
    const res = await fetch(`${service.url}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'Stripe-Signature': signatureHeader(payload, secret), 'Content-Type': 'application/json' },
      body: payload,
    });
    return res.status;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    removeScratchDirectories();
    await db.drop();
  });

  it('600 stalled 1 MiB uploads keep the peak RSS under 250 MB, and every one is closed within 30 s', async () => {
    const service = spawnService(await baseEnv(), scratchDirectory());
    const connections: RawConnection[] = [];
    try {
      await waitFor(service, '/health/ready');
      const pid = service.child.pid as number;
      // Content-Length 1 MiB, about 1,043,000 bytes sent, then nothing: half with a junk signature
      // (refused before the body is read), half with a well-formed, fresh one that matches nothing
      // (which must be read to be checked).
      const sent = Buffer.alloc(1_043_000, 'a');
      const upload = (signature: string): RawConnection => {
        const connection = openRaw(
          service.url,
          requestHead('POST', '/webhooks/stripe', {
            'Content-Type': 'application/json',
            'Content-Length': MB,
            'Stripe-Signature': signature,
          }),
        );
        connection.write(sent);
        return connection;
      };
      const started = Date.now();
      for (let i = 0; i < 300; i++) {
        connections.push(upload('junk'));
        connections.push(upload(`t=${Math.floor(Date.now() / 1000)},v1=${'0'.repeat(64)}`));
      }
      const allClosed = await within(
        Promise.all(connections.map((c) => c.closed)),
        30_000 - (Date.now() - started),
        'every stalled upload closed within 30 s',
      ).then(
        () => true,
        () => false,
      );

      const { rssMb, peakMb } = memoryOf(pid);
      expect(peakMb).toBeLessThan(250);
      expect(rssMb).toBeLessThan(250);
      expect(allClosed).toBe(true);
      const totals = await receivedTotals(service);
      expect(totals.invalid_signature).toBe(300);
      // The well-formed ones: read until the budget is used up (then cut off at 10 s), the rest refused at once.
      // `error`: cut off after 10 s (408) or closed before an answer; `unavailable`: over the budget.
      expect(totals.error).toBeGreaterThan(0);
      expect(totals.unavailable).toBeGreaterThan(0);
      expect((totals.error ?? 0) + (totals.unavailable ?? 0)).toBe(300);
      expect(await deliver(service)).toBe(200);
    } finally {
      for (const connection of connections) {
        connection.socket.destroy();
      }
      service.child.kill('SIGTERM');
    }
    expect(await service.exited).toBe(0);
  }, 90_000);

  it('with 512 file descriptors, 450 silent connections are capped, logged and closed; probes and the database keep working', async () => {
    const service = spawnService(await baseEnv(), scratchDirectory(), { fileDescriptorLimit: 512 });
    const connections: RawConnection[] = [];
    const logged = (message: string) => () =>
      service
        .output()
        .split('\n')
        .some((line) => line.includes(`"msg":"${message}`));
    try {
      await waitFor(service, '/health/ready');
      for (let i = 0; i < 450; i++) {
        connections.push(openRaw(service.url));
      }
      await waitUntil(logged('open connections near the limit'), 10_000, 'near-limit warning');
      await waitUntil(logged('connections refused: the connection limit is reached'), 10_000, 'refusal warning');
      await within(Promise.all(connections.map((c) => c.closed)), 30_000, 'every silent connection closed within 30 s');
      await waitUntil(logged('open connections back to normal'), 10_000, 'back-to-normal line');
      expect((await fetch(`${service.url}/health/live`)).status).toBe(200);
      expect(await deliver(service)).toBe(200);
    } finally {
      for (const connection of connections) {
        connection.socket.destroy();
      }
      service.child.kill('SIGTERM');
    }
    expect(await service.exited).toBe(0);
    const near = service
      .output()
      .split('\n')
      .find((line) => line.includes('open connections near the limit'));
    expect(JSON.parse(near as string)).toMatchObject({
      level: 40,
      maxConnections: 384,
      fileDescriptorLimit: 512,
    });
  }, 90_000);
});
