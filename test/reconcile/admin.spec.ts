import { Reconciler } from '../../src/reconcile/reconciler.service';
import { count, createTestDatabase, TestDatabase } from '../support/database';
import { FakeStripe } from '../support/fake-stripe';
import { allHandled, checkpoint, dbNow, startPullingApp, stripeEvents, sweep } from '../support/reconcile';
import { ADMIN_TOKEN, TestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

const HOUR = 3600;
const DAY = 24 * HOUR;
const RUN_KEYS = [
  'actor',
  'dry_run',
  'error',
  'finished_at',
  'id',
  'listed',
  'recovered',
  'since',
  'started_at',
  'status',
  'trigger',
  'until',
];

describe('admin reconciliation routes', () => {
  let db: TestDatabase;
  let fake: FakeStripe;
  let t: TestApp;

  beforeEach(async () => {
    db = await createTestDatabase();
    fake = await FakeStripe.start();
    t = await startPullingApp(db.url, fake);
  });
  afterEach(async () => {
    await t.close();
    await fake.close();
    await db.drop();
  });

  const auth = { Authorization: `Bearer ${ADMIN_TOKEN}` };
  const start = (body: object) => t.http.post('/admin/reconcile').set(auth).send(body);
  const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

  /** Waits for a run to end and returns it as GET /admin/reconcile/runs/:id shows it. */
  async function finished(runId: string): Promise<Record<string, unknown>> {
    return waitUntil(
      async () => {
        const res = await t.http.get(`/admin/reconcile/runs/${runId}`).set(auth);
        expect(res.status).toBe(200);
        return res.body.status === 'running' ? undefined : (res.body as Record<string, unknown>);
      },
      20_000,
      `run ${runId} finished`,
    );
  }

  async function audited(): Promise<Array<Record<string, unknown>>> {
    const res = await t.http.get('/admin/audit-log').set(auth);
    return (res.body.items as Array<Record<string, unknown>>).filter((i) => i.action === 'reconcile.start');
  }

  it('refuses every route without a valid admin token (401)', async () => {
    for (const [method, path] of [
      ['post', '/admin/reconcile'],
      ['get', '/admin/reconcile/runs'],
      ['get', '/admin/reconcile/runs/00000000-0000-4000-8000-000000000000'],
    ] as const) {
      const res = await t.http[method](path).set({ Authorization: 'Bearer nope-nope-nope-nope' });
      expect([path, res.status, res.body.error]).toEqual([path, 401, 'unauthorized']);
    }
  });

  it('a dry run counts what would be recovered and stores nothing; a real run stores and handles it; both audited', async () => {
    const now = await dbNow(db.pool);
    const events = stripeEvents(30, now - 600, 2 * HOUR);
    fake.addEvents(events);
    for (const event of events.slice(0, 5)) {
      await t.deliver(event);
    }
    await allHandled(t, db.pool);

    const dry = await start({ since: iso(now - DAY), dry_run: true });
    expect(dry.status).toBe(202);
    expect(Object.keys(dry.body)).toEqual(['run_id']);
    const dryRun = await finished(dry.body.run_id as string);
    expect(Object.keys(dryRun).sort()).toEqual(RUN_KEYS);
    expect(dryRun).toMatchObject({
      trigger: 'admin',
      actor: 'ops',
      dry_run: true,
      status: 'succeeded',
      listed: 30,
      recovered: 25,
      error: null,
      since: iso(now - DAY),
    });
    expect(await count(db.pool, 'subscription_events')).toBe(5);
    expect(await checkpoint(db.pool)).toBeNull();

    const real = await start({ since: iso(now - DAY) });
    expect(real.status).toBe(202);
    expect(await finished(real.body.run_id as string)).toMatchObject({
      dry_run: false,
      status: 'succeeded',
      listed: 30,
      recovered: 25,
    });
    await allHandled(t, db.pool);
    expect(await count(db.pool, 'subscription_events', `source = 'reconcile' AND status = 'processed'`)).toBe(25);

    expect(await audited()).toEqual([
      expect.objectContaining({ actor: 'ops', target: real.body.run_id, result: 'started' }),
      expect.objectContaining({
        actor: 'ops',
        target: dry.body.run_id,
        result: 'started',
        details: { since: iso(now - DAY), dry_run: true },
      }),
    ]);
  });

  it('answers 409 while a sweep runs, audited with the actor; the running one is not disturbed', async () => {
    const now = await dbNow(db.pool);
    fake.addEvents(stripeEvents(10, now - 600, HOUR));
    const held = fake.hold();
    const first = await start({});
    expect(first.status).toBe(202);
    await waitUntil(() => fake.requests.length === 1, 5_000, 'the first run listing');
    const second = await t.http
      .post('/admin/reconcile')
      .set({ Authorization: 'Bearer auditor-token-0123456789abcdef' })
      .send({ dry_run: true });
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({ statusCode: 409, error: 'conflict' });
    // A scheduled sweep meanwhile on this replica or another steps aside too.
    expect(await t.app.get(Reconciler).runScheduled(new Date('2032-01-01T00:00:00Z'))).toBeNull();
    held.release();
    expect(await finished(first.body.run_id as string)).toMatchObject({ status: 'succeeded', recovered: 10 });
    expect(await audited()).toEqual([
      expect.objectContaining({ actor: 'auditor', target: null, result: 'conflict' }),
      expect.objectContaining({ actor: 'ops', target: first.body.run_id, result: 'started' }),
    ]);
    expect(await count(db.pool, 'reconcile_runs')).toBe(1);
  });

  it('refuses a since older than 30 days, a malformed time, since after until (400); 503 without a key', async () => {
    const now = await dbNow(db.pool);
    for (const body of [
      { since: iso(now - 30 * DAY - 60) },
      { since: 'yesterday' },
      { since: '2026-01-01' },
      { since: iso(now - HOUR), until: iso(now - 2 * HOUR) },
      { dry_run: 'yes' },
      { since: iso(now - HOUR), extra: 1 },
    ]) {
      const res = await start(body);
      expect([body, res.status, res.body.error]).toEqual([body, 400, 'invalid_request']);
    }
    expect(await count(db.pool, 'reconcile_runs')).toBe(0);
    expect(fake.requests).toHaveLength(0);
    expect((await start({ since: iso(now - 30 * DAY + 60) })).status).toBe(202);

    const keyless = await startPullingApp(db.url, fake, { STRIPE_API_KEY: '' });
    try {
      const res = await keyless.http.post('/admin/reconcile').set(auth).send({});
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({
        statusCode: 503,
        error: 'unavailable',
        message: expect.stringContaining('STRIPE_API_KEY'),
      });
      expect((await keyless.http.get('/admin/reconcile/runs').set(auth)).status).toBe(200);
    } finally {
      await keyless.close();
    }
  });

  it('moves the checkpoint only when a run covers it', async () => {
    const now = await dbNow(db.pool);
    await sweep(t);
    const before = (await checkpoint(db.pool)) as Date;
    const at = before.getTime() / 1000;
    const older = await start({ since: iso(at - 3 * HOUR), until: iso(at - HOUR) });
    await finished(older.body.run_id as string);
    expect(await checkpoint(db.pool)).toEqual(before);
    const dry = await start({ since: iso(at - HOUR), until: iso(now + 60), dry_run: true });
    await finished(dry.body.run_id as string);
    expect(await checkpoint(db.pool)).toEqual(before);
    const covering = await start({ since: iso(at - HOUR), until: iso(now + 3600) });
    const covered = await finished(covering.body.run_id as string);
    const after = (await checkpoint(db.pool)) as Date;
    expect(after.getTime()).toBeGreaterThan(before.getTime());
    expect(after.toISOString()).toBe(covered.until); // a future until is taken as now
    expect(after.getTime() / 1000).toBeLessThanOrEqual((await dbNow(db.pool)) + 1);
  });

  it('lists runs newest first with pages; 404 for an unknown run, 400 for a malformed id', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await start({ dry_run: true });
      ids.push(res.body.run_id as string);
      await finished(res.body.run_id as string);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await t.http.get(`/admin/reconcile/runs?limit=2${cursor ? `&cursor=${cursor}` : ''}`).set(auth);
      expect(res.status).toBe(200);
      for (const item of res.body.items) {
        expect(Object.keys(item).sort()).toEqual(RUN_KEYS);
        seen.push(item.id as string);
      }
      cursor = res.body.next_cursor as string | null;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    const unknown = await t.http.get('/admin/reconcile/runs/00000000-0000-4000-8000-000000000000').set(auth);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toBe('not_found');
    expect((await t.http.get('/admin/reconcile/runs/nope').set(auth)).body).toMatchObject({
      statusCode: 400,
      error: 'invalid_request',
    });
    expect((await t.http.get('/admin/reconcile/runs?cursor=bogus').set(auth)).status).toBe(400);
  });
});
