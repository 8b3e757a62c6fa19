/// <reference lib="dom" />
import type { Page } from 'puppeteer-core';
import { ConsoleBrowser } from '../support/console-browser';
import { createTestDatabase, TestDatabase } from '../support/database';
import { fixtureEvent, newWorld, subscriptionEvent } from '../support/fixtures';
import { FAST_QUEUE, settle } from '../support/queue';
import { randomId, stripeEvent } from '../support/stripe';
import { TcpProxy } from '../support/tcp-proxy';
import { ADMIN_TOKEN, startTestApp, TestApp, useTestApp } from '../support/test-app';
import { waitUntil } from '../support/wait';

const HOSTILE = {
  note: '<script>window.__pwned = "script"</script>',
  image: '<img src=x onerror="window.__pwned = \'img\'">',
};

describe('the admin console in a real browser', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let t: TestApp;
  let browser: ConsoleBrowser;
  let page: Page;
  const dead = stripeEvent('test.flaky', { id: randomId('obj'), object: 'thing', metadata: HOSTILE });
  const w = newWorld();
  const subscription = subscriptionEvent('customer.subscription.created', w, {
    status: 'active',
    created: 1_800_000_000,
  });
  const failedOnce = new Set<string>();

  beforeAll(async () => {
    db = await createTestDatabase();
    proxy = await TcpProxy.start(db.url);
    t = await startTestApp(
      proxy.urlFor(db.url),
      { ...FAST_QUEUE, RETRY_MAX_ATTEMPTS: '1' },
      {
        // Fails on its first run only: the event dies (one attempt allowed), a replay processes it.
        'test.flaky': (event) => {
          if (!failedOnce.has(event.id)) {
            failedOnce.add(event.id);
            return Promise.reject(new Error('first run fails: <b>downstream</b> unavailable'));
          }
          return Promise.resolve();
        },
      },
    );
    expect((await t.deliver(dead)).status).toBe(200);
    expect((await settle(t, db.pool, dead.id as string)).status).toBe('dead');
    expect((await t.deliver(subscription)).status).toBe(200);
    expect((await settle(t, db.pool, subscription.id)).status).toBe('processed');
    expect((await t.deliver(fixtureEvent('customer.created', w))).status).toBe(200);
    // Health figures are counted in the background (up to 5 s old): the overview must show the dead letter.
    await waitUntil(async () => {
      const health = await t.http.get('/health/webhooks');
      return (health.body as { info?: { webhooks?: { dlq_items?: number } } }).info?.webhooks?.dlq_items === 1;
    }, 10_000);

    browser = await ConsoleBrowser.open(t.url);
    page = browser.page;
  });

  afterEach(() => {
    expect(browser.takeProblems()).toEqual([]);
  });

  afterAll(async () => {
    await browser?.close();
    await t.close();
    await proxy.close();
    await db.drop();
  });

  const shot = (name: string) => browser.shot(name);
  const text = (selector: string) => browser.text(selector);
  const waitForText = (needle: string, timeout?: number) => browser.waitForText(needle, timeout);
  const clickButton = (label: string) => browser.clickButton(label);
  const signInWith = (token: string) => browser.signInWith(token);

  it('refuses a wrong token at sign-in with a clear message, then signs in and shows the overview', async () => {
    browser.expectStatuses(401);
    await page.goto(`${t.url}/admin/console`);
    await shot('sign-in');
    await signInWith('wrong-token-0123456789');
    await waitForText('The admin token was refused');
    expect(await page.$('header nav')).toBeNull();
    await signInWith(ADMIN_TOKEN);
    await page.waitForSelector('[data-testid=health]');
    await page.waitForSelector('.chart canvas');
    await waitForText('received: 3'); // the dead event, the subscription and the customer
    expect(await text('[data-testid=health]')).toMatch(/dlq items\s*1/);
    expect(await text('[data-testid=health]')).toMatch(/reconcile\s*disabled\s*last reconcile at\s*never/);
    expect(await page.evaluate(() => sessionStorage.getItem('swp-admin-token'))).toBe(ADMIN_TOKEN);
    await shot('overview');
  });

  it('shows a dead letter from a real failure, with hostile payload markup as text, and nothing runs', async () => {
    await page.goto(`${t.url}/admin/console#/dead-letters`);
    await waitForText(dead.id as string);
    await shot('dead-letters');
    await page.click(`a[href*="#/dead-letters/"]`);
    await page.waitForSelector('[data-testid=error]');
    expect(await text('[data-testid=error]')).toContain('first run fails: <b>downstream</b> unavailable');
    const payload = await text('pre.json[aria-label="Event payload"]');
    expect(payload).toContain(HOSTILE.note.replace(/"/g, '\\"'));
    expect(payload).toContain('<img src=x onerror=');
    // Shown as text: no element was made from it, and neither handler ran.
    expect(await page.$$eval('main img, main script, main b', (nodes) => nodes.length)).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: string }).__pwned)).toBeUndefined();
    await shot('dead-letter');
  });

  it('replays the dead letter from the page; the event is processed and the audit log names the holder', async () => {
    await clickButton('Replay');
    await waitForText('Replayed: the event is queued again.');
    expect((await settle(t, db.pool, dead.id as string)).status).toBe('processed');
    await page.goto(`${t.url}/admin/console#/events/${dead.id as string}`);
    await page.waitForSelector('[data-testid=event-status]');
    expect(await text('[data-testid=event-status]')).toBe('processed');
    await shot('event');
    await page.goto(`${t.url}/admin/console#/audit`);
    await page.waitForSelector('[data-testid=audit] tbody tr');
    expect(await text('[data-testid=audit] tbody tr')).toMatch(/ops\s*dead_letter\.replay/);
    await shot('audit-log');
  });

  it('shows a second replay of the same dead letter (409) as a readable message, and keeps working', async () => {
    browser.expectStatuses(409);
    await page.goto(`${t.url}/admin/console#/dead-letters`);
    const { rows } = await db.pool.query('SELECT id FROM webhook_dead_letter_queue WHERE stripe_event_id = $1', [
      dead.id,
    ]);
    await page.goto(`${t.url}/admin/console#/dead-letters/${rows[0].id as string}`);
    await page.waitForSelector('[data-testid=resolution]');
    expect(await text('[data-testid=resolution]')).toMatch(/^replayed by ops/);
    await clickButton('Replay');
    await waitForText('Conflict (409)');
    expect(await text('.error')).toMatch(/already replayed/);
    await shot('replay-conflict');
    await page.click('a[href="#/overview"]');
    await page.waitForSelector('[data-testid=health]');
  });

  it('shows the dry-run diff of a reprocess before anything runs', async () => {
    await page.goto(`${t.url}/admin/console#/events/${subscription.id}`);
    await page.waitForSelector('[data-testid=event-status]');
    await clickButton('Reprocess… (preview the changes first)');
    await page.waitForSelector('[data-testid=dry-run]');
    const diff = await text('[data-testid=dry-run]');
    expect(diff).toContain(`subscriptions {"stripe_subscription_id":"${w.subscription}"}`);
    expect(diff).toContain('updated_at');
    expect(diff).toContain('Nothing was changed');
    await shot('reprocess-dry-run');
    const audit = await db.pool.query(`SELECT actor FROM admin_audit_log WHERE action = 'event.reprocess_dry_run'`);
    expect(audit.rows).toEqual([{ actor: 'ops' }]);
  });

  it('opens a customer: entitlements, subscriptions, wallet, usage and its events', async () => {
    // An older, canceled subscription: listed beside the active one, which alone grants access.
    await db.pool.query(
      `INSERT INTO subscriptions (stripe_subscription_id, stripe_customer_id, status, last_event_created, last_event_rank, last_event_id)
       VALUES ($1, $2, 'canceled', to_timestamp(1700000000), 0, 'evt_console_old')`,
      [`${w.subscription}_old`, w.customer],
    );
    await page.goto(`${t.url}/admin/console#/customers/${w.customer}`);
    await page.waitForSelector('[data-testid=entitlements]');
    await page.waitForSelector('[data-testid=customer-events] tbody tr');
    await page.waitForSelector('[data-testid=subscriptions] tbody tr');
    const subscriptions = await page.$$eval('[data-testid=subscriptions] tbody tr', (rows) =>
      rows.map((row) => [...row.querySelectorAll('td')].slice(0, 2).map((cell) => cell.textContent)),
    );
    expect(subscriptions).toEqual([
      [w.subscription, 'active'],
      [`${w.subscription}_old`, 'canceled'],
    ]);
    expect(await text('[data-testid=customer-events]')).toContain(subscription.id);
    await page.waitForSelector('[data-testid=wallet]');
    await waitForText('Usage');
    await shot('customer');
  });

  it('without a Stripe key, lists the reconciliation runs and says so; starting one shows it as a readable message', async () => {
    // A run from before the key was removed.
    const { rows } = await db.pool.query<{ id: string }>(
      `INSERT INTO reconcile_runs (trigger, actor, since, until, dry_run, status, listed, recovered, finished_at)
       VALUES ('admin', 'ops', now() - interval '2 hours', now() - interval '1 hour', true, 'succeeded', 7, 2, now())
       RETURNING id`,
    );
    await page.click('a[href="#/reconcile"]');
    await page.waitForSelector(`[data-testid=runs] tr[data-run="${rows[0].id}"]`);
    // The sweep figures (and whether a key is set) load apart from the runs: either may come first.
    await page.waitForSelector('[data-testid=no-key]');
    await page.waitForSelector('[data-testid=sweeps]');
    expect(await text('[data-testid=no-key]')).toMatch(/^No Stripe API key is configured: STRIPE_API_KEY is not set/);
    expect(await text('[data-testid=sweeps]')).toMatch(/reconcile\s*disabled/);
    browser.expectStatuses(503);
    await clickButton('Start a dry run');
    await waitForText('Not started: no Stripe API key is configured (STRIPE_API_KEY is not set on this service).');
    expect(await text('main .error')).not.toContain('try again shortly');
    expect(await page.$(`[data-testid=runs] tr[data-run="${rows[0].id}"]`)).not.toBeNull();
    await shot('reconcile-no-key');
  });

  it('shows an outage (503) as a readable message and recovers when the database is back', async () => {
    browser.expectStatuses(503);
    await page.goto(`${t.url}/admin/console#/audit`);
    await page.waitForSelector('[data-testid=audit] tbody tr');
    proxy.cut();
    try {
      await clickButton('Refresh');
      await waitForText('Service unavailable (503)', 15_000);
      await shot('outage');
    } finally {
      proxy.restore();
    }
    await waitUntil(
      async () => {
        await clickButton('Refresh');
        return page.$('[data-testid=audit] tbody tr');
      },
      15_000,
      'the audit log again',
    );
  });

  it('is usable at phone width and from the keyboard', async () => {
    await page.setViewport({ width: 390, height: 844 });
    await page.goto(`${t.url}/admin/console#/overview`);
    await page.waitForSelector('.chart canvas');
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await shot('overview-phone');
    await page.goto(`${t.url}/admin/console#/dead-letters`);
    await page.waitForSelector('h1');
    await shot('dead-letters-phone');
    await page.setViewport({ width: 1366, height: 768 });
    // Tab from the top: the skip link, then the page links, each reachable and opened with Enter.
    await page.goto(`${t.url}/admin/console#/overview`);
    await page.reload();
    await page.waitForSelector('[data-testid=health]');
    const focused: string[] = [];
    for (let i = 0; i < 4; i++) {
      await page.keyboard.press('Tab');
      focused.push(await page.evaluate(() => document.activeElement?.textContent ?? ''));
    }
    expect(focused).toEqual(['Skip to content', 'Overview', 'Dead letters', 'Events']);
    await page.keyboard.press('Enter');
    await page.waitForSelector('input[placeholder="evt_…"]');
  });

  it('goes back to sign-in with a clear message when the token stops being accepted', async () => {
    browser.expectStatuses(401);
    await page.evaluate(() => sessionStorage.setItem('swp-admin-token', 'revoked-token-0123456789'));
    await page.goto(`${t.url}/admin/console#/dead-letters`);
    await page.waitForSelector('[data-testid=sign-in-reason]');
    expect(await text('[data-testid=sign-in-reason]')).toMatch(/refused \(wrong, expired or revoked\)/);
    expect(await page.$('table')).toBeNull();
    expect(await page.evaluate(() => sessionStorage.getItem('swp-admin-token'))).toBeNull();
    await shot('signed-out');
  });
});

describe('GET /admin/console', () => {
  const { t } = useTestApp();

  it('serves the page and its bundle under a strict Content-Security-Policy, nosniff, never framed', async () => {
    for (const [path, type] of [
      ['/admin/console', /text\/html/],
      ['/admin/console/app.js', /text\/javascript/],
      ['/admin/console/app.css', /text\/css/],
    ] as const) {
      const res = await t.http.get(path);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(type);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      const csp = res.headers['content-security-policy'];
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('unsafe-eval');
    }
    const html = (await t.http.get('/admin/console')).text;
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)/); // no inline script
    expect(html).not.toMatch(/\sstyle=/);
    expect(html).not.toMatch(/https?:\/\//); // nothing from elsewhere
  });

  it('answers 404 for files that are not part of the console, and leaves Swagger UI as it was', async () => {
    for (const path of ['/admin/console/index.js', '/admin/console/..%2Fpackage.json', '/admin/console/x.map']) {
      const res = await t.http.get(path);
      expect(res.status).toBe(404);
      expect(res.body.error).toBe('not_found');
    }
    const docs = await t.http.get('/docs/');
    expect(docs.status).toBe(200);
    expect(docs.headers['content-security-policy']).toBeUndefined();
  });
});
