import { Dispatcher } from '../../src/queue/dispatcher.service';
import { HandlerRegistry } from '../../src/queue/handler-registry';
import { PermanentEventError } from '../../src/queue/permanent-event.error';
import { count, createTestDatabase } from '../support/database';
import { eventState, FAST_QUEUE, settle } from '../support/queue';
import { randomId, stripeEvent } from '../support/stripe';
import { ADMIN_TOKEN, AUDITOR_TOKEN, startTestApp, useTestApp } from '../support/test-app';

describe('admin API', () => {
  const { db, t } = useTestApp(FAST_QUEUE);
  let fixed = false;
  let runs = 0;

  beforeAll(() => {
    const registry = t.app.get(HandlerRegistry);
    // Fails permanently until "the bug is fixed"; counts its runs.
    const handler = () => {
      runs++;
      return fixed ? Promise.resolve() : Promise.reject(new PermanentEventError('bug in handler'));
    };
    registry.register('test.alpha', handler);
    registry.register('test.beta', handler);
  });

  const as = (token: string) => ({ Authorization: `Bearer ${token}` });
  const get = (path: string, token = ADMIN_TOKEN) => t.http.get(path).set(as(token));
  const post = (path: string, body?: object, token = ADMIN_TOKEN) => t.http.post(path).set(as(token)).send(body);
  const del = (path: string, token = ADMIN_TOKEN) => t.http.delete(path).set(as(token));

  /** Delivers events that die at once; returns their dead-letter ids, oldest first. */
  async function deadLetters(type: string, n: number): Promise<Array<{ dl: string; event: string }>> {
    fixed = false;
    const out: Array<{ dl: string; event: string }> = [];
    for (let i = 0; i < n; i++) {
      const event = stripeEvent(type, { id: randomId('obj') });
      await t.deliver(event);
      expect(await settle(t, db.pool, event.id as string)).toMatchObject({ status: 'dead' });
      const { rows } = await db.pool.query('SELECT id FROM webhook_dead_letter_queue WHERE stripe_event_id = $1', [
        event.id,
      ]);
      out.push({ dl: rows[0].id as string, event: event.id as string });
    }
    return out;
  }

  it('refuses every admin route without a token or with a wrong one (401)', async () => {
    const routes: Array<['get' | 'post' | 'delete', string]> = [
      ['get', '/admin/dead-letters'],
      ['get', '/admin/dead-letters/00000000-0000-4000-8000-000000000000'],
      ['post', '/admin/dead-letters/00000000-0000-4000-8000-000000000000/replay'],
      ['post', '/admin/dead-letters/replay'],
      ['delete', '/admin/dead-letters/00000000-0000-4000-8000-000000000000'],
      ['get', '/admin/retry-queue'],
      ['get', '/admin/events/evt_1'],
      ['post', '/admin/events/evt_1/reprocess'],
      ['get', '/admin/audit-log'],
    ];
    for (const [method, path] of routes) {
      for (const headers of [{}, as('wrong-token-0123456789abcdef')]) {
        const res = await t.http[method](path).set(headers);
        expect([method, path, res.status, res.body.error]).toEqual([method, path, 401, 'unauthorized']);
      }
    }
  });

  it('lists open dead letters newest first, filters by type, and pages without repeats', async () => {
    const alphas = await deadLetters('test.alpha', 5);
    const betas = await deadLetters('test.beta', 2);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await get(`/admin/dead-letters?event_type=test.alpha&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      for (const item of res.body.items) {
        expect(Object.keys(item).sort()).toEqual(
          ['created_at', 'error', 'event_type', 'id', 'original_timestamp', 'retry_count', 'stripe_event_id'].sort(),
        );
        expect(item.event_type).toBe('test.alpha');
        seen.push(item.id as string);
      }
      cursor = res.body.next_cursor as string | null;
    } while (cursor);
    expect(seen).toEqual(alphas.map((a) => a.dl).reverse()); // newest first, each once
    // The documented template with empty values means "not set": defaults, no type filter.
    const template = await get('/admin/dead-letters?event_type=&limit=&cursor=');
    expect(template.status).toBe(200);
    expect(template.body.items.map((i: { id: string }) => i.id)).toEqual(
      expect.arrayContaining([...alphas, ...betas].map((x) => x.dl)),
    );
    const all = await get('/admin/dead-letters?limit=500');
    expect(all.body.next_cursor).toBeNull();
    expect(all.body.items.map((i: { id: string }) => i.id)).toEqual(
      expect.arrayContaining([...alphas, ...betas].map((x) => x.dl)),
    );
  });

  it('shows one dead letter with its payload; 400 for a malformed id, 404 for an unknown one', async () => {
    const [{ dl, event }] = await deadLetters('test.alpha', 1);
    const res = await get(`/admin/dead-letters/${dl}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: dl,
      stripe_event_id: event,
      event_type: 'test.alpha',
      retry_count: 1,
      error: 'PermanentEventError: bug in handler',
      payload: { id: event, type: 'test.alpha' },
      resolution: null,
    });
    expect((await get('/admin/dead-letters/not-a-uuid')).body).toMatchObject({
      statusCode: 400,
      error: 'invalid_request',
    });
    expect((await get('/admin/dead-letters/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    for (const res of [
      await post('/admin/dead-letters/not-a-uuid/replay'),
      await del("/admin/dead-letters/1' OR '1'='1"),
    ]) {
      expect([res.status, res.body.error]).toEqual([400, 'invalid_request']);
    }
    expect(await get(`/admin/dead-letters/${dl}`)).toMatchObject({ status: 200, body: { resolution: null } });
  });

  it('replays one dead letter: 202, processed after the fix, attempts restart; again → 409', async () => {
    const [{ dl, event }] = await deadLetters('test.alpha', 1);
    fixed = true;
    const res = await post(`/admin/dead-letters/${dl}/replay`);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ replayed: 1 });
    expect(await settle(t, db.pool, event)).toEqual({ status: 'processed', attempts: 1, last_error: null });
    const again = await post(`/admin/dead-letters/${dl}/replay`);
    expect(again.status).toBe(409);
    expect(again.body.error).toBe('conflict');
    expect((await get(`/admin/dead-letters/${dl}`)).body).toMatchObject({ resolution: 'replayed', resolved_by: 'ops' });
    expect((await del(`/admin/dead-letters/${dl}`)).status).toBe(409);
    expect(await eventState(db.pool, event)).toMatchObject({ status: 'processed' });
    expect((await post('/admin/dead-letters/00000000-0000-4000-8000-000000000000/replay')).status).toBe(404);
  });

  it('lets exactly one of several concurrent replays of one dead letter win', async () => {
    const [{ dl, event }] = await deadLetters('test.beta', 1);
    fixed = true;
    runs = 0;
    const results = await Promise.all(Array.from({ length: 6 }, () => post(`/admin/dead-letters/${dl}/replay`)));
    expect(results.map((r) => r.status).sort()).toEqual([202, 409, 409, 409, 409, 409]);
    expect(await settle(t, db.pool, event)).toMatchObject({ status: 'processed' });
    expect(runs).toBe(1);
    expect(await count(db.pool, 'webhook_retry_queue', 'stripe_event_id = $1', [event])).toBe(0);
  });

  it('counts a bulk replay with dry_run without replaying, then replays by filter within the limit', async () => {
    const batch = await deadLetters('test.beta', 3);
    const openBetas = async () =>
      count(db.pool, 'webhook_dead_letter_queue', `event_type = 'test.beta' AND resolution IS NULL`);
    const open = await openBetas();
    const dry = await post('/admin/dead-letters/replay', { event_type: 'test.beta', dry_run: true });
    expect(dry.status).toBe(202);
    expect(dry.body).toEqual({ would_replay: open });
    expect(await openBetas()).toBe(open);

    fixed = true;
    const some = await post('/admin/dead-letters/replay', { ids: batch.map((b) => b.dl), limit: 2 });
    expect(some.body).toEqual({ replayed: 2 });
    const rest = await post('/admin/dead-letters/replay', { ids: batch.map((b) => b.dl) });
    expect(rest.body).toEqual({ replayed: 1 });
    for (const { event } of batch) {
      expect(await settle(t, db.pool, event)).toMatchObject({ status: 'processed' });
    }
    const since = await post('/admin/dead-letters/replay', {
      failed_after: new Date(Date.now() + 60_000).toISOString(),
    });
    expect(since.body).toEqual({ replayed: 0 });
  });

  it('discards a dead letter: 204, event discarded, kept on record; then replay and discard are 409', async () => {
    const [{ dl, event }] = await deadLetters('test.alpha', 1);
    const res = await del(`/admin/dead-letters/${dl}`, AUDITOR_TOKEN);
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect(await eventState(db.pool, event)).toMatchObject({ status: 'discarded' });
    expect((await get(`/admin/dead-letters/${dl}`)).body).toMatchObject({
      resolution: 'discarded',
      resolved_by: 'auditor',
    });
    expect((await del(`/admin/dead-letters/${dl}`)).status).toBe(409);
    expect((await post(`/admin/dead-letters/${dl}/replay`)).status).toBe(409);
    expect((await del('/admin/dead-letters/00000000-0000-4000-8000-000000000000')).status).toBe(404);
  });

  it('lists the retry queue, the next due first, page by page', async () => {
    const { rows } = await db.pool.query(
      `WITH e AS (
         INSERT INTO subscription_events (stripe_event_id, event_type, payload)
         SELECT 'evt_queued_' || g, 'test.alpha', '{}' FROM generate_series(1, 5) g RETURNING id, stripe_event_id)
       INSERT INTO webhook_retry_queue (event_id, stripe_event_id, event_type, next_retry_at, last_error)
       SELECT id, stripe_event_id, 'test.alpha', now() + interval '1 hour' + (id % 5) * interval '1 minute', 'Error: earlier'
         FROM e RETURNING stripe_event_id`,
    );
    expect(rows).toHaveLength(5);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await get(`/admin/retry-queue?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      for (const item of res.body.items) {
        expect(item).toMatchObject({ event_type: 'test.alpha', retry_count: 0, last_error: 'Error: earlier' });
        seen.push(`${item.next_retry_at as string}|${item.stripe_event_id as string}`);
      }
      cursor = res.body.next_cursor as string | null;
    } while (cursor);
    const queued = seen.filter((s) => s.includes('evt_queued_'));
    expect(queued).toHaveLength(5);
    expect([...seen].sort()).toEqual(seen);
    await db.pool.query(`DELETE FROM webhook_retry_queue WHERE stripe_event_id LIKE 'evt_queued_%'`);
    await db.pool.query(`DELETE FROM subscription_events WHERE stripe_event_id LIKE 'evt_queued_%'`);
  });

  it('reprocesses a processed or ignored event (202, the handler runs again); 409 when pending, dead or discarded; 404 when unknown', async () => {
    fixed = true;
    const event = stripeEvent('test.alpha', { id: randomId('obj') });
    await t.deliver(event);
    await settle(t, db.pool, event.id as string);
    runs = 0;
    const res = await post(`/admin/events/${event.id as string}/reprocess`);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ reprocessing: true });
    expect(await settle(t, db.pool, event.id as string)).toEqual({
      status: 'processed',
      attempts: 1,
      last_error: null,
    });
    expect(runs).toBe(1);

    const [{ event: dead }] = await deadLetters('test.alpha', 1);
    expect((await post(`/admin/events/${dead}/reprocess`)).status).toBe(409);
    await db.pool.query(
      `INSERT INTO subscription_events (stripe_event_id, event_type, payload) VALUES ('evt_still_pending', 'test.alpha', '{}')`,
    );
    expect((await post('/admin/events/evt_still_pending/reprocess')).status).toBe(409);
    expect((await post('/admin/events/evt_never_stored/reprocess')).status).toBe(404);
    const long = `evt_${'x'.repeat(300)}`;
    for (const res of [await get(`/admin/events/${long}`), await post(`/admin/events/${long}/reprocess`)]) {
      expect([res.status, res.body.error]).toEqual([404, 'not_found']);
    }

    const ignored = stripeEvent('test.unhandled', { id: randomId('obj') });
    await t.deliver(ignored);
    expect(await settle(t, db.pool, ignored.id as string)).toMatchObject({ status: 'ignored' });
    expect((await post(`/admin/events/${ignored.id as string}/reprocess`)).status).toBe(202);
    expect(await settle(t, db.pool, ignored.id as string)).toEqual({
      status: 'ignored',
      attempts: 1,
      last_error: null,
    });

    const [{ dl: discardedLetter, event: discarded }] = await deadLetters('test.alpha', 1);
    expect((await del(`/admin/dead-letters/${discardedLetter}`)).status).toBe(204);
    const again = await post(`/admin/events/${discarded}/reprocess`);
    expect([again.status, again.body.error]).toEqual([409, 'conflict']);
    expect(await eventState(db.pool, discarded)).toMatchObject({ status: 'discarded' });
    expect((await get(`/admin/events/${dead}`)).body).toMatchObject({ status: 'dead', attempts: 1 });
  });

  it('keeps an audit trail naming the token holder, newest first, page by page', async () => {
    const res = await get('/admin/audit-log?limit=3', AUDITOR_TOKEN);
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(3);
    expect(res.body.items[0]).toMatchObject({
      actor: 'ops',
      action: 'event.reprocess',
      target: expect.stringMatching(/^evt_/),
      result: 'discarded', // the last action of the reprocess test
    });
    const all: Array<Record<string, unknown>> = [];
    let cursor: string | null = null;
    do {
      const page = await get(`/admin/audit-log?limit=4${cursor ? `&cursor=${cursor}` : ''}`);
      all.push(...(page.body.items as Array<Record<string, unknown>>));
      cursor = page.body.next_cursor as string | null;
    } while (cursor);
    const ids = all.map((a) => a.id as number);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
    expect(all).toContainEqual(
      expect.objectContaining({ actor: 'auditor', action: 'dead_letter.discard', result: 'done' }),
    );
    expect(all).toContainEqual(
      expect.objectContaining({ actor: 'ops', action: 'dead_letter.replay', result: 'already_replayed' }),
    );
    expect(all).toContainEqual(expect.objectContaining({ action: 'dead_letter.replay_bulk', result: 'replayed 2' }));
    expect(all).toContainEqual(
      expect.objectContaining({ action: 'event.reprocess', target: 'evt_never_stored', result: 'not_found' }),
    );
  });

  it('answers bad query values with 400 invalid_request and never lets them reach SQL unparameterised', async () => {
    for (const query of ['limit=0', 'limit=501', 'limit=abc', 'limit=1&limit=2', 'cursor=not-a-cursor', 'unknown=1']) {
      const res = await get(`/admin/dead-letters?${query}`);
      expect([query, res.status, res.body.error]).toEqual([query, 400, 'invalid_request']);
    }
    const forged = Buffer.from(JSON.stringify({ c: "2026-01-01T00:00:00.000Z' OR 1=1 --", i: 'x' })).toString(
      'base64url',
    );
    expect((await get(`/admin/dead-letters?cursor=${forged}`)).status).toBe(400);
    const injection = await get(`/admin/dead-letters?event_type=${encodeURIComponent("x' OR '1'='1")}`);
    expect(injection.status).toBe(200);
    expect(injection.body.items).toEqual([]);
    for (const body of [
      { limit: 0 },
      { limit: 1001 },
      { ids: ['nope'] },
      { failed_after: 'yesterday' },
      { failed_after: '20260101', dry_run: true },
      { failed_before: '2026-W01', dry_run: true },
      { failed_after: '2026-01-01T00:00:00', dry_run: true },
      { failed_after: '2026-02-30T00:00:00Z', dry_run: true },
      { failed_after: '20260101' },
      { dry_run: 'yes' },
      { extra: 1 },
    ]) {
      const res = await post('/admin/dead-letters/replay', body);
      expect([body, res.status]).toEqual([body, 400]);
    }
    // Well-formed but out of range: each would otherwise fail in SQL (22003 / 22008) and answer 500.
    const cursor = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const uuid = '00000000-0000-4000-8000-000000000000';
    for (const path of [
      `/admin/audit-log?cursor=${cursor({ id: '9999999999999999999' })}`,
      `/admin/audit-log?cursor=${cursor({ id: '9223372036854775808' })}`,
      `/admin/retry-queue?cursor=${cursor({ q: '9999999999999999999', e: '1' })}`,
      `/admin/retry-queue?cursor=${cursor({ q: '9223372036854775807', e: '1' })}`,
      `/admin/retry-queue?cursor=${cursor({ q: '1', e: '9999999999999999999' })}`,
      `/admin/dead-letters?cursor=${cursor({ c: '2026-13-45T25:61:61Z', i: uuid })}`,
      `/admin/dead-letters?cursor=${cursor({ c: '2026-02-30T00:00:00.000Z', i: uuid })}`,
      `/admin/dead-letters?cursor=${cursor({ c: '0000-01-01T00:00:00.000Z', i: uuid })}`,
    ]) {
      const res = await get(path);
      expect([path, res.status, res.body.error]).toEqual([path, 400, 'invalid_request']);
    }
    // The largest values that are in range still answer a page.
    for (const path of [
      `/admin/audit-log?cursor=${cursor({ id: '9223372036854775807' })}`,
      `/admin/retry-queue?cursor=${cursor({ q: '8640000000000000000', e: '9223372036854775807' })}`,
      `/admin/dead-letters?cursor=${cursor({ c: '9999-12-31T23:59:59.999Z', i: uuid })}`,
    ]) {
      const res = await get(path);
      expect([path, res.status]).toEqual([path, 200]);
    }
    for (const path of [
      '/admin/retry-queue?cursor=%00%01',
      '/admin/retry-queue?limit=501',
      '/admin/retry-queue?limit=abc',
      '/admin/audit-log?limit=-1',
      '/admin/audit-log?cursor=not-a-cursor',
    ]) {
      const res = await get(path);
      expect([path, res.status, res.body.error]).toEqual([path, 400, 'invalid_request']);
    }
    await t.app.get(Dispatcher).whenIdle();
  });

  it('uses the documented defaults when no limit is given: 50 dead letters a page, 100 a bulk replay', async () => {
    await db.pool.query(
      `WITH e AS (
         INSERT INTO subscription_events (stripe_event_id, event_type, payload, status)
         SELECT 'evt_default_' || g, 'test.defaults', '{}', 'dead' FROM generate_series(1, 101) g
         RETURNING id, stripe_event_id)
       INSERT INTO webhook_dead_letter_queue (event_id, stripe_event_id, event_type, retry_count, error)
       SELECT id, stripe_event_id, 'test.defaults', 1, 'Error: never' FROM e`,
    );
    try {
      const page = await get('/admin/dead-letters?event_type=test.defaults');
      expect(page.status).toBe(200);
      expect(page.body.items).toHaveLength(50);
      expect(page.body.next_cursor).toEqual(expect.any(String));
      const dry = await post('/admin/dead-letters/replay', { event_type: 'test.defaults', dry_run: true });
      expect([dry.status, dry.body]).toEqual([202, { would_replay: 100 }]);
    } finally {
      await db.pool.query(`DELETE FROM subscription_events WHERE stripe_event_id LIKE 'evt_default_%'`);
    }
  });
});

describe('admin API: retry-queue pages with equal due times', () => {
  it('pages through rows sharing one due time, ids crossing digit boundaries, without repeats or gaps', async () => {
    const db = await createTestDatabase();
    const t = await startTestApp(db.url, FAST_QUEUE);
    try {
      t.app.get(Dispatcher).beginStop(); // nothing claims them meanwhile
      await db.pool.query(
        `WITH e AS (
           INSERT INTO subscription_events (stripe_event_id, event_type, payload)
           SELECT 'evt_tied_' || g, 'test.tied', '{}' FROM generate_series(1, 120) g RETURNING id, stripe_event_id)
         INSERT INTO webhook_retry_queue (event_id, stripe_event_id, event_type, next_retry_at)
         SELECT id, stripe_event_id, 'test.tied', timestamptz '2030-01-01T00:00:00Z' FROM e`,
      );
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res = await t.http
          .get(`/admin/retry-queue?limit=7${cursor ? `&cursor=${cursor}` : ''}`)
          .set('Authorization', `Bearer ${ADMIN_TOKEN}`);
        seen.push(...(res.body.items as Array<{ stripe_event_id: string }>).map((i) => i.stripe_event_id));
        cursor = res.body.next_cursor as string | null;
      } while (cursor);
      expect(seen).toHaveLength(120);
      expect(new Set(seen).size).toBe(120);
    } finally {
      await t.close();
      await db.drop();
    }
  });
});
