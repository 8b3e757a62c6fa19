/// <reference lib="dom" />
import type { Page } from 'puppeteer-core';
import { ConsoleBrowser } from '../support/console-browser';
import { count, createTestDatabase, TestDatabase } from '../support/database';
import { FakeStripe } from '../support/fake-stripe';
import type { StripeJson } from '../support/fixtures';
import { allHandled, dbNow, startPullingApp, stripeEvents } from '../support/reconcile';
import { ADMIN_TOKEN, TestApp } from '../support/test-app';

/** An error text as a failed sweep records it (it comes from Stripe's answers): markup in it must stay text. */
const HOSTILE_ERROR = 'StripeAPIError 500: <img src=x onerror="window.__pwned = 1">';

/** How the console writes a time: ISO-8601 in UTC, to the second. */
function shown(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('T', ' ').replace('.000Z', ' UTC');
}

describe('the reconciliation page in a real browser, with the service pointed at a fake Stripe', () => {
  let db: TestDatabase;
  let fake: FakeStripe;
  let t: TestApp;
  let browser: ConsoleBrowser;
  let page: Page;
  let now: number;
  /** Events Stripe holds: three created in the last half hour (the first also delivered), one two hours ago. */
  let recent: StripeJson[];
  let old: StripeJson;
  const runIds: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    fake = await FakeStripe.start();
    t = await startPullingApp(db.url, fake);
    now = await dbNow(db.pool);
    recent = stripeEvents(3, now - 600, 1200);
    [old] = stripeEvents(1, now - 2 * 3600, 0);
    fake.addEvents([...recent, old]);
    expect((await t.deliver(recent[0])).status).toBe(200);
    await allHandled(t, db.pool);
    // 30 scheduled sweeps from earlier days, the newest failed, so that the list has two pages.
    await db.pool.query(
      `INSERT INTO reconcile_runs (trigger, scheduled_for, since, until, status, listed, recovered, error, started_at, finished_at)
       SELECT 'schedule', s, s - interval '10 minutes', s - interval '2 minutes',
              CASE WHEN i = 1 THEN 'failed' ELSE 'succeeded' END, 100 + i, i % 3,
              CASE WHEN i = 1 THEN $1 END, s, s + interval '2 seconds'
         FROM generate_series(1, 30) AS i, LATERAL (SELECT now() - interval '1 day' - i * interval '10 minutes' AS s) AS tick`,
      [HOSTILE_ERROR],
    );
    browser = await ConsoleBrowser.open(t.url);
    page = browser.page;
    // Far from UTC: times typed in the form must still be read as UTC, as the console shows them.
    await page.emulateTimezone('Asia/Kolkata');
  });

  afterEach(() => {
    expect(browser.takeProblems()).toEqual([]);
  });

  afterAll(async () => {
    await browser?.close();
    await t.close();
    await fake.close();
    await db.drop();
  });

  const cells = (runId: string) =>
    page.$$eval(`[data-testid=runs] tr[data-run="${runId}"] td`, (tds) => tds.map((td) => td.textContent ?? ''));
  const runUntil = async (runId: string) =>
    (
      await db.pool.query<{ until: Date }>('SELECT until FROM reconcile_runs WHERE id = $1', [runId])
    ).rows[0].until.getTime();
  /** Waits until the run's row (or the run page) shows `status`, without reloading the page. */
  const waitForStatus = (selector: string, status: string) =>
    page.waitForFunction(
      (s: string, expected: string) => document.querySelector(s)?.textContent?.includes(expected) ?? false,
      { timeout: 20_000 },
      selector,
      status,
    );
  const setInput = (name: string, value: string) =>
    page.$eval(
      `input[name=${name}]`,
      (input, v) => {
        input.value = v;
        input.dispatchEvent(new Event('input', { bubbles: true }));
      },
      value,
    );
  const startedRunId = async () => {
    await page.waitForSelector('[data-testid=started] a');
    const id = await browser.text('[data-testid=started] a');
    runIds.push(id);
    return id;
  };

  it('is reached from the overview, which shows the sweep figures; earlier runs are paged, an error shown as text', async () => {
    await browser.goto('');
    await browser.signInWith(ADMIN_TOKEN);
    await page.waitForSelector('[data-testid=health]');
    expect(await browser.text('[data-testid=health]')).toMatch(/reconcile\s*ok.*last reconcile at\s*never/);
    await page.click('header nav a[href="#/reconcile"]');
    await page.waitForSelector('[data-testid=runs] tbody tr');
    // The figures and the runs load apart: either may come first.
    await page.waitForSelector('[data-testid=sweeps]');
    expect(await browser.text('[data-testid=sweeps]')).toMatch(/reconcile\s*ok.*last successful sweep\s*never/);
    expect(await page.$('[data-testid=no-key]')).toBeNull();
    const rows = await page.$$eval('[data-testid=runs] tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ''));
    expect(rows).toHaveLength(25);
    expect(rows[0]).toContain('schedule');
    expect(rows[0]).toContain('failed');
    expect(rows[0]).toContain(HOSTILE_ERROR);
    expect(await page.$$eval('main img', (nodes) => nodes.length)).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    await browser.shot('reconcile-history');

    await browser.clickButton('Next');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=runs] tbody tr').length === 5);
    expect(await browser.text('.pager')).toContain('Page 2');
    await browser.clickButton('First page');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=runs] tbody tr').length === 25);
  });

  it('starts a dry run over a range typed in UTC; its page follows it while it runs and shows its counts; nothing is stored', async () => {
    const since = now - 3600;
    await setInput('since', new Date(since * 1000).toISOString().slice(0, 19));
    expect(await page.$eval('input[name=dry_run]', (input) => input.checked)).toBe(true);
    const held = fake.hold();
    let runId: string;
    try {
      await browser.clickButton('Start a dry run');
      runId = await startedRunId();
      await page.click('[data-testid=started] a');
      await page.waitForSelector('[data-testid=run-status]');
      expect(await browser.text('[data-testid=run-status]')).toBe('running');
      await browser.shot('reconcile-run-running');
    } finally {
      held.release();
    }
    await waitForStatus('[data-testid=run-status]', 'succeeded');
    const detail = await browser.text('[data-testid=run]');
    expect(detail).toContain(runId);
    expect(detail).toMatch(/Triggeradmin \(ops\)Modedry run/);
    expect(detail).toContain(`Events created from${shown(since)}`);
    // Listed: the three recent events (the old one is before since); one was delivered, two are missing.
    expect(detail).toMatch(/Listed3Would recover2/);
    expect(await count(db.pool, 'subscription_events', `source = 'reconcile'`)).toBe(0);
    await browser.shot('reconcile-run');
  });

  it('starts a real run that recovers what Stripe holds; a second start while it runs is a readable 409; the list follows it', async () => {
    await page.click('a[href="#/reconcile"]');
    await page.waitForSelector('[data-testid=runs] tbody tr');
    await page.click('input[name=dry_run]');
    const held = fake.hold();
    let runId: string;
    try {
      await browser.clickButton('Start a run');
      runId = await startedRunId();
      await waitForStatus(`tr[data-run="${runId}"]`, 'running');
      browser.expectStatuses(409);
      await browser.clickButton('Start a run');
      await browser.waitForText('Conflict (409): A reconciliation sweep is running');
      await browser.shot('reconcile-conflict');
    } finally {
      held.release();
    }
    await waitForStatus(`tr[data-run="${runId}"]`, 'succeeded');
    expect(await cells(runId)).toEqual([
      expect.any(String),
      'admin (ops)',
      'recover',
      'succeeded',
      expect.any(String),
      '4',
      '3',
      expect.stringMatching(/UTC$/),
      '',
    ]);
    // The last successful sweep is read again once no run is running, still without a reload.
    const { rows: state } = await db.pool.query<{ last_success_at: Date }>(
      `SELECT last_success_at FROM reconcile_checkpoints WHERE account_id = ''`,
    );
    const last = shown(Math.floor(state[0].last_success_at.getTime() / 1000));
    await waitForStatus('[data-testid=sweeps]', `last successful sweep${last}`);
    await browser.shot('reconcile');

    // Recovered: the two recent events never delivered and the old one, handled like delivered ones.
    await allHandled(t, db.pool);
    const { rows } = await db.pool.query<{ stripe_event_id: string; status: string }>(
      `SELECT stripe_event_id, status FROM subscription_events WHERE source = 'reconcile' ORDER BY stripe_event_id`,
    );
    const missing = [recent[1], recent[2], old].map((e) => e.id as string).sort();
    expect(rows).toEqual(missing.map((id) => ({ stripe_event_id: id, status: 'processed' })));
    await browser.goto(`#/events/${missing[0]}`);
    await page.waitForSelector('[data-testid=event-status]');
    expect(await browser.text('[data-testid=event-status]')).toBe('processed');

    await browser.goto('#/overview');
    await page.waitForSelector('[data-testid=health]');
    expect(await browser.text('[data-testid=health]')).toContain(`reconcileoklast reconcile at${last}`);
  });

  it('lists both runs, newest first, with their counts', async () => {
    await browser.goto('#/reconcile');
    await page.waitForSelector('[data-testid=runs] tbody tr');
    const order = await page.$$eval('[data-testid=runs] tbody tr', (trs) => trs.map((tr) => tr.dataset.run));
    expect(order.slice(0, 3)).toEqual([runIds[1], runIds[0], expect.any(String)]);
    expect((await cells(runIds[0])).slice(1, 7)).toEqual([
      'admin (ops)',
      'dry run',
      'succeeded',
      `${shown(now - 3600)} – ${shown((await runUntil(runIds[0])) / 1000)}`,
      '3',
      'would recover 2',
    ]);
  });

  it('the audit log names the operator for both runs and for the one refused', async () => {
    await browser.goto('#/audit');
    await page.waitForSelector('[data-testid=audit] tbody tr');
    const rows = await page.$$eval('[data-testid=audit] tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].slice(1).map((td) => td.textContent)),
    );
    expect(rows).toEqual([
      ['ops', 'reconcile.start', '', 'conflict'],
      ['ops', 'reconcile.start', runIds[1], 'started'],
      ['ops', 'reconcile.start', runIds[0], 'started'],
    ]);
    await browser.shot('reconcile-audit');
  });

  it('shows an unknown run as a readable 404, and fits a phone-width screen', async () => {
    browser.expectStatuses(404);
    await browser.goto('#/reconcile/00000000-0000-4000-8000-000000000000');
    await browser.waitForText('Not found (404): No reconciliation run 00000000-0000-4000-8000-000000000000.');
    await page.setViewport({ width: 390, height: 844 });
    try {
      await browser.goto('#/reconcile');
      await page.waitForSelector('[data-testid=runs] tbody tr');
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      await browser.shot('reconcile-phone');
    } finally {
      await page.setViewport({ width: 1366, height: 768 });
    }
  });
});
