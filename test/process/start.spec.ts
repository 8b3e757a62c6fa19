import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import {
  freePort,
  removeScratchDirectories,
  scratchDirectory,
  spawnService,
  waitFor,
} from '../support/service-process';
import { signatureHeader, stripeEvent } from '../support/stripe';

describe('the service as a process', () => {
  afterAll(removeScratchDirectories);

  it('starts on a fresh machine with no DATABASE_URL (embedded PostgreSQL, generated secrets), serves, and exits 0 on SIGTERM', async () => {
    const cwd = scratchDirectory();
    const port = await freePort();
    const service = spawnService({ PORT: String(port), NODE_ENV: 'development', LOG_LEVEL: 'warn' }, cwd);
    let embeddedPort: number;
    try {
      const ready = await waitFor(service, '/health/ready');
      expect(await ready.json()).toMatchObject({ status: 'ok' });

      // The generated secret is kept under .data/ and printed once; it signs deliveries the service accepts.
      const secretsFile = join(cwd, '.data', 'dev-secrets.json');
      expect(existsSync(secretsFile)).toBe(true);
      const { STRIPE_WEBHOOK_SECRET: secret } = JSON.parse(readFileSync(secretsFile, 'utf8')) as Record<string, string>;
      expect(service.output()).toContain(`STRIPE_WEBHOOK_SECRET=${secret}`);
      expect(existsSync(join(cwd, '.data', 'postgres', 'PG_VERSION'))).toBe(true);
      // postmaster.pid: pid on line 1, port on line 4 (what embedded-postgres.ts reads too).
      const pidFile = join(cwd, '.data', 'postgres', 'postmaster.pid');
      embeddedPort = Number(readFileSync(pidFile, 'utf8').split('\n')[3]);
      expect(embeddedPort).toBeGreaterThan(0);
      expect(await accepts(embeddedPort)).toBe(true);

      const payload = JSON.stringify(stripeEvent('customer.created', { id: 'cus_process' }));
      const accepted = await fetch(`${service.url}/webhooks/stripe`, {
        method: 'POST',
        headers: { 'Stripe-Signature': signatureHeader(payload, secret), 'Content-Type': 'application/json' },
        body: payload,
      });
      expect(accepted.status).toBe(200);
    } finally {
      service.child.kill('SIGTERM');
    }
    expect(await service.exited).toBe(0);
    // The embedded server was stopped before the exit, not left running (or still shutting down).
    expect(existsSync(join(cwd, '.data', 'postgres', 'postmaster.pid'))).toBe(false);
    expect(await accepts(embeddedPort)).toBe(false);
  });

  it('restarts on the same data directory without printing the secret again', async () => {
    const cwd = scratchDirectory();
    const port = await freePort();
    const first = spawnService({ PORT: String(port), NODE_ENV: 'development', LOG_LEVEL: 'warn' }, cwd);
    await waitFor(first, '/health/ready');
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    const second = spawnService({ PORT: String(port), NODE_ENV: 'development', LOG_LEVEL: 'warn' }, cwd);
    try {
      await waitFor(second, '/health/ready');
      expect(second.output()).not.toContain('STRIPE_WEBHOOK_SECRET=');
    } finally {
      second.child.kill('SIGTERM');
    }
    expect(await second.exited).toBe(0);
  });

  it('refuses to start in production without secrets, naming each missing variable', async () => {
    const service = spawnService(
      { NODE_ENV: 'production', DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' },
      scratchDirectory(),
    );
    expect(await service.exited).toBe(1);
    expect(service.output()).toContain('STRIPE_WEBHOOK_SECRET is required');
    expect(service.output()).toContain('ADMIN_API_TOKEN is required');
  });

  it('refuses an invalid variable with one message naming it', async () => {
    const service = spawnService(
      {
        NODE_ENV: 'development',
        STRIPE_WEBHOOK_TOLERANCE_SECONDS: '0',
        DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
      },
      scratchDirectory(),
    );
    expect(await service.exited).toBe(1);
    expect(service.output()).toMatch(/^Invalid configuration: STRIPE_WEBHOOK_TOLERANCE_SECONDS must be/m);
  });
});

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
