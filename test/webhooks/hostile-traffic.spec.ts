import type { Server } from 'node:http';
import { gzipSync } from 'node:zlib';
import { defaultHttpLimits, HttpLimits, maxConnectionsFor, readFileDescriptorLimit } from '../../src/http/http-limits';
import { count, createTestDatabase, TestDatabase } from '../support/database';
import { openRaw, RawConnection, RawResponse, requestHead, within } from '../support/raw-http';
import { randomId, signatureHeader, stripeEvent } from '../support/stripe';
import { ADMIN_TOKEN, startTestApp, TestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

const MIB = 1024 * 1024;
/** Short limits, to see each act within a test; the service runs with longer ones (see the defaults test). */
const LIMITS: HttpLimits = {
  webhookBodyTimeoutMs: 1_000,
  webhookBodyBudgetBytes: 3 * MIB,
  headersTimeoutMs: 1_000,
  requestTimeoutMs: 5_000,
  keepAliveTimeoutMs: 500,
  idleSocketTimeoutMs: 1_500,
  timeoutCheckIntervalMs: 100,
};
/** Long enough for every limit above to act, several times over. */
const DEADLINE_MS = 6_000;

const now = (): number => Math.floor(Date.now() / 1000);
/** Well-formed and fresh, so it passes every check that needs no body, but it matches nothing. */
const forgedHeader = (): string => `t=${now()},v1=${'0'.repeat(64)}`;

describe('POST /webhooks/stripe and the server under hostile traffic', () => {
  let db: TestDatabase;
  let t: TestApp;
  const open: RawConnection[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startTestApp(db.url, {}, {}, { httpLimits: LIMITS });
  });
  afterEach(() => {
    for (const connection of open.splice(0)) {
      connection.socket.destroy();
    }
  });
  afterAll(async () => {
    await t.close();
    await db.drop();
  });

  /** A webhook request whose body (Content-Length `length`) is sent only as far as `sent`, then stalls. */
  function stalledUpload(
    headers: Record<string, string>,
    options: { length?: number; sent?: number; expectContinue?: boolean } = {},
  ): RawConnection {
    const length = options.length ?? MIB;
    const connection = openRaw(
      t.url,
      requestHead('POST', '/webhooks/stripe', {
        'Content-Type': 'application/json',
        'Content-Length': length,
        ...(options.expectContinue ? { Expect: '100-continue' } : {}),
        ...headers,
      }),
    );
    if (!options.expectContinue) {
      connection.write(Buffer.alloc(options.sent ?? 1000, 'a'));
    }
    open.push(connection);
    return connection;
  }

  async function received(outcome: string): Promise<number> {
    const text = (await t.http.get('/metrics')).text;
    const match = new RegExp(
      `^stripe_webhook_events_received_total\\{event_type="",outcome="${outcome}"\\} (\\d+)$`,
      'm',
    ).exec(text);
    return match ? Number(match[1]) : 0;
  }

  async function answer(connection: RawConnection, what: string): Promise<RawResponse> {
    const response = await within(connection.response, DEADLINE_MS, what);
    if (!response) {
      throw new Error(`${what}: the connection closed without an answer`);
    }
    return response;
  }

  describe('refusing before the body is read', () => {
    it.each([
      ['missing', undefined],
      ['malformed', 'junk'],
      ['without a v1 signature', `t=${now()}`],
      ['stale', `t=${now() - 400},v1=${'0'.repeat(64)}`],
      ['from the future', `t=${now() + 600},v1=${'0'.repeat(64)}`],
    ])(
      'a %s Stripe-Signature gets the signature check’s 400 while the body is still arriving, and the connection is closed',
      async (_, header) => {
        const before = await received('invalid_signature');
        const upload = stalledUpload(header === undefined ? {} : { 'Stripe-Signature': header });
        const response = await answer(upload, 'answer to a stalled upload');
        // A body reader would have waited for the rest of the body and answered 408 at best.
        expect(response.status).toBe(400);
        expect(response.body).toEqual({ statusCode: 400, error: 'invalid_signature', message: expect.any(String) });
        expect(response.headers.connection).toBe('close');
        await within(upload.closed, DEADLINE_MS, 'connection closed');
        expect(await received('invalid_signature')).toBe(before + 1);
      },
    );

    it('gives exactly the answer the full check gives for the same header', async () => {
      const early = await answer(stalledUpload({ 'Stripe-Signature': 'junk' }), 'early answer');
      const full = await t.deliver(JSON.stringify(stripeEvent('customer.created', { id: 'cus_1' })), {
        header: 'junk',
      });
      expect(early.body).toEqual(full.body);
    });

    it('refuses a Content-Length above WEBHOOK_MAX_BODY_BYTES with 413 without reading it; a bad header is still 400 first', async () => {
      const before = await received('payload_too_large');
      const tooLarge = stalledUpload({ 'Stripe-Signature': forgedHeader() }, { length: 2 * MIB });
      expect(await answer(tooLarge, '413')).toMatchObject({
        status: 413,
        body: { statusCode: 413, error: 'payload_too_large', message: expect.any(String) },
      });
      await within(tooLarge.closed, DEADLINE_MS, 'connection closed');
      expect(await received('payload_too_large')).toBe(before + 1);
      const unsigned = stalledUpload({}, { length: 2 * MIB });
      expect((await answer(unsigned, 'unsigned 413')).status).toBe(400);
    });
  });

  describe('bounding the time a body may take', () => {
    it('answers 408 request_timeout to a body that stalls, closes the connection and stores nothing', async () => {
      const before = { errors: await received('error'), events: await count(db.pool, 'subscription_events') };
      const upload = stalledUpload({ 'Stripe-Signature': forgedHeader() });
      const response = await answer(upload, 'answer to a stalled body');
      expect(response.status).toBe(408);
      expect(response.body).toEqual({ statusCode: 408, error: 'request_timeout', message: expect.any(String) });
      expect(response.headers.connection).toBe('close');
      await within(upload.closed, DEADLINE_MS, 'connection closed');
      expect(await received('error')).toBe(before.errors + 1);
      expect(await count(db.pool, 'subscription_events')).toBe(before.events);
    });

    it('bounds the whole body, not the gap between bytes: a byte every 100 ms still gets 408', async () => {
      const upload = stalledUpload({ 'Stripe-Signature': forgedHeader() }, { length: 1000, sent: 1 });
      const trickle = setInterval(() => upload.write('a'), 100);
      try {
        expect((await answer(upload, 'answer to a trickle')).status).toBe(408);
        await within(upload.closed, DEADLINE_MS, 'connection closed');
      } finally {
        clearInterval(trickle);
      }
    });

    it('counts a delivery whose client goes away mid-body as an error', async () => {
      const before = await received('error');
      const upload = stalledUpload({ 'Stripe-Signature': forgedHeader() }, { expectContinue: true });
      await within(upload.continued, DEADLINE_MS, '100 Continue');
      upload.socket.destroy();
      await waitUntil(async () => (await received('error')) === before + 1, DEADLINE_MS, 'error counted');
    });
  });

  describe('the budget of body bytes in flight', () => {
    it('answers 503 at once past the budget, and gives the budget back when bodies are cut off or abandoned', async () => {
      // Three stalled bodies of 1 MiB take the whole 3 MiB budget (100 Continue: each one is being read).
      const holders = [0, 1, 2].map(() =>
        stalledUpload({ 'Stripe-Signature': forgedHeader() }, { expectContinue: true }),
      );
      await within(Promise.all(holders.map((h) => h.continued)), DEADLINE_MS, 'three bodies being read');
      const before = await received('unavailable');
      const refused = await t.deliver(stripeEvent('customer.created', { id: randomId('cus') }));
      expect(refused.status).toBe(503);
      expect(refused.body).toEqual({ statusCode: 503, error: 'unavailable', message: expect.any(String) });
      expect(await received('unavailable')).toBe(before + 1);

      // Cut off by the body timeout: their share comes back.
      await within(Promise.all(holders.map((h) => h.closed)), DEADLINE_MS, 'stalled bodies cut off');
      expect((await t.deliver(stripeEvent('customer.created', { id: randomId('cus') }))).status).toBe(200);

      // Abandoned by their clients: their share comes back too.
      const abandoned = [0, 1, 2].map(() =>
        stalledUpload({ 'Stripe-Signature': forgedHeader() }, { expectContinue: true }),
      );
      await within(Promise.all(abandoned.map((h) => h.continued)), DEADLINE_MS, 'three more bodies being read');
      for (const upload of abandoned) {
        upload.socket.destroy();
      }
      await waitUntil(
        async () => (await t.deliver(stripeEvent('customer.created', { id: randomId('cus') }))).status === 200,
        DEADLINE_MS,
        'budget given back by abandoned bodies',
      );
    });

    it('reads a chunked body (no Content-Length) within the same limits', async () => {
      const event = stripeEvent('customer.created', { id: randomId('cus'), note: 'c'.repeat(40_000) });
      const payload = JSON.stringify(event);
      const connection = openRaw(
        t.url,
        requestHead('POST', '/webhooks/stripe', {
          'Transfer-Encoding': 'chunked',
          'Stripe-Signature': signatureHeader(payload),
        }),
      );
      open.push(connection);
      for (let i = 0; i < payload.length; i += 7_000) {
        const part = Buffer.from(payload.slice(i, i + 7_000));
        connection.write(`${part.length.toString(16)}\r\n`);
        connection.write(part);
        connection.write('\r\n');
      }
      connection.write('0\r\n\r\n');
      expect(await answer(connection, 'chunked delivery')).toMatchObject({ status: 200, body: { received: true } });
      const { rows } = await db.pool.query('SELECT payload FROM subscription_events WHERE stripe_event_id = $1', [
        event.id,
      ]);
      expect(rows[0].payload).toEqual(event);

      const tooLarge = openRaw(
        t.url,
        requestHead('POST', '/webhooks/stripe', { 'Transfer-Encoding': 'chunked', 'Stripe-Signature': forgedHeader() }),
      );
      open.push(tooLarge);
      const chunk = Buffer.alloc(256 * 1024, 'z');
      for (let i = 0; i < 5; i++) {
        tooLarge.write(`${chunk.length.toString(16)}\r\n`);
        tooLarge.write(chunk);
        tooLarge.write('\r\n');
      }
      expect((await answer(tooLarge, 'chunked 413')).status).toBe(413);
    });
  });

  describe('compressed bodies', () => {
    // fetch sends the bytes as given (supertest alters a body sent with a Content-Encoding).
    const post = async (body: Buffer, encoding: string, header: string) => {
      const res = await fetch(`${t.url}/webhooks/stripe`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Content-Encoding': encoding, 'Stripe-Signature': header },
        body: new Uint8Array(body),
      });
      return { status: res.status, body: await res.json() };
    };

    it('never inflates: a gzip body signed over its inflated bytes fails the signature check', async () => {
      const event = stripeEvent('customer.created', { id: randomId('cus') });
      const payload = JSON.stringify(event);
      const res = await post(gzipSync(payload), 'gzip', signatureHeader(payload));
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ statusCode: 400, error: 'invalid_signature', message: expect.any(String) });
      expect(await count(db.pool, 'subscription_events', 'stripe_event_id = $1', [event.id])).toBe(0);
    });

    it('refuses a signed body with a Content-Encoding with 400 invalid_payload, after the signature check', async () => {
      const event = stripeEvent('customer.created', { id: randomId('cus') });
      const compressed = gzipSync(JSON.stringify(event));
      // stripe-node reads the body as UTF-8 before computing the HMAC; sign it the same way.
      const signedBytes = await post(compressed, 'gzip', signatureHeader(compressed.toString('utf8')));
      expect(signedBytes.status).toBe(400);
      expect(signedBytes.body).toEqual({
        statusCode: 400,
        error: 'invalid_payload',
        message: expect.stringContaining('Content-Encoding'),
      });
      expect(await count(db.pool, 'subscription_events', 'stripe_event_id = $1', [event.id])).toBe(0);
    });

    it('takes Content-Encoding: identity as no encoding', async () => {
      const payload = JSON.stringify(stripeEvent('customer.created', { id: randomId('cus') }));
      const res = await post(Buffer.from(payload), 'identity', signatureHeader(payload));
      expect(res.body).toEqual({ received: true });
    });
  });

  it('runs with the documented limits unless told otherwise, and caps connections below the descriptor limit', async () => {
    const plain = await startTestApp(db.url);
    try {
      const server = plain.app.getHttpServer() as Server & { connectionsCheckingInterval: number };
      expect({
        headersTimeout: server.headersTimeout,
        requestTimeout: server.requestTimeout,
        keepAliveTimeout: server.keepAliveTimeout,
        timeout: server.timeout,
        connectionsCheckingInterval: server.connectionsCheckingInterval,
      }).toEqual({
        headersTimeout: 10_000,
        requestTimeout: 30_000,
        keepAliveTimeout: 5_000,
        timeout: 15_000,
        connectionsCheckingInterval: 1_000,
      });
      const limit = readFileDescriptorLimit();
      expect(limit).toBeGreaterThan(0);
      expect(server.maxConnections).toBe(maxConnectionsFor(limit as number));
      expect(defaultHttpLimits(1_048_576)).toMatchObject({
        webhookBodyTimeoutMs: 10_000,
        webhookBodyBudgetBytes: 32 * MIB,
      });
    } finally {
      await plain.close();
    }
  });

  describe('closing idle and silent connections', () => {
    it('closes a connection that never sends a byte', async () => {
      const silent = openRaw(t.url);
      open.push(silent);
      await within(silent.closed, DEADLINE_MS, 'silent connection closed');
    });

    it('closes a connection that stops halfway through its headers, and one that trickles them', async () => {
      const half = openRaw(t.url, 'GET /health/live HTTP/1.1\r\nHost: localhost\r\n');
      const trickling = openRaw(t.url, 'GET /health/live HTTP/1.1\r\nHost: localhost\r\nX-Slow: ');
      open.push(half, trickling);
      const trickle = setInterval(() => trickling.write('a'), 100);
      try {
        await within(Promise.all([half.closed, trickling.closed]), DEADLINE_MS, 'slow headers cut off');
      } finally {
        clearInterval(trickle);
      }
    });

    it('closes a keep-alive connection left idle after its answer', async () => {
      const client = openRaw(t.url, requestHead('GET', '/health/live', {}));
      open.push(client);
      expect((await answer(client, 'live')).status).toBe(200);
      await within(client.closed, DEADLINE_MS, 'idle keep-alive connection closed');
    });

    it('closes a connection whose JSON body stalls on another route', async () => {
      const client = openRaw(
        t.url,
        requestHead('POST', '/admin/dead-letters/replay', {
          Authorization: `Bearer ${ADMIN_TOKEN}`,
          'Content-Type': 'application/json',
          'Content-Length': 100,
        }) + '{',
      );
      open.push(client);
      await within(client.closed, DEADLINE_MS, 'stalled admin body cut off');
    });

    it('keeps a connection whose request the server is still working on, however long', async () => {
      const locker = await db.pool.connect();
      try {
        await locker.query('BEGIN');
        await locker.query('LOCK TABLE admin_audit_log IN ACCESS EXCLUSIVE MODE');
        const client = openRaw(
          t.url,
          requestHead('GET', '/admin/audit-log', { Authorization: `Bearer ${ADMIN_TOKEN}` }),
        );
        open.push(client);
        await waitUntil(
          async () =>
            (
              await db.pool.query<{ n: number }>(
                `SELECT count(*)::int AS n FROM pg_locks
                  WHERE NOT granted AND relation = 'admin_audit_log'::regclass`,
              )
            ).rows[0].n === 1,
          DEADLINE_MS,
          'the audit-log query waiting on the lock',
        );
        // Twice the idle timeout with nothing on the wire while the query waits.
        await new Promise((resolve) => setTimeout(resolve, 2 * LIMITS.idleSocketTimeoutMs));
        expect(client.isClosed()).toBe(false);
        await locker.query('COMMIT');
        expect((await answer(client, 'audit log')).status).toBe(200);
      } finally {
        await locker.query('ROLLBACK').catch(() => undefined);
        locker.release();
      }
    });
  });
});
