/// <reference lib="dom" />
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { Browser, Page } from 'puppeteer-core';

/** Screenshots of each console page, for people to look at (git-ignored). */
export const SCREENSHOTS = join(__dirname, '..', '..', '.data', 'test-output', 'console');

function chromiumPath(): string {
  try {
    return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('chromium is not installed: apt-get install -y chromium (see README, "Browser tests")');
  }
}

/**
 * Debian's headless Chromium on one page of the console, at 1366×768, watching for what must never
 * happen: a page error, a console error (except the API answers a step expects, by status) or a
 * request that leaves the service (aborted).
 */
export class ConsoleBrowser {
  /** Problems the page reported since the last `takeProblems()`. */
  private problems: string[] = [];
  /** Console errors a step expects (an API answer the page shows as a message), by status. */
  private expected: number[] = [];

  private constructor(
    private readonly browser: Browser,
    private readonly profile: string,
    readonly page: Page,
    private readonly serviceUrl: string,
  ) {}

  static async open(serviceUrl: string): Promise<ConsoleBrowser> {
    mkdirSync(SCREENSHOTS, { recursive: true });
    const profile = mkdtempSync(join(tmpdir(), 'swp-chromium-'));
    const browser = await puppeteer.launch({
      executablePath: chromiumPath(),
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${profile}`,
      ],
    });
    const page = await browser.newPage();
    const opened = new ConsoleBrowser(browser, profile, page, serviceUrl);
    await page.setViewport({ width: 1366, height: 768 });
    await page.setRequestInterception(true);
    page.on('request', (request) => {
      if (new URL(request.url()).origin !== serviceUrl && !request.url().startsWith('data:')) {
        opened.problems.push(`request left the service: ${request.url()}`);
        void request.abort();
        return;
      }
      void request.continue();
    });
    page.on('pageerror', (error) => opened.problems.push(`page error: ${String(error)}`));
    page.on('console', (message) => {
      if (message.type() !== 'error') {
        return;
      }
      const status = /status of (\d{3})/.exec(message.text())?.[1];
      if (status && opened.expected.includes(Number(status))) {
        return;
      }
      opened.problems.push(`console error: ${message.text()} (${message.location().url ?? ''})`);
    });
    return opened;
  }

  /** API answers with these statuses are expected (shown as messages) until the next `takeProblems()`. */
  expectStatuses(...statuses: number[]): void {
    this.expected = statuses;
  }

  /** What went wrong since the last call; clears the list and the expected statuses. */
  takeProblems(): string[] {
    const seen = this.problems;
    this.problems = [];
    this.expected = [];
    return seen;
  }

  goto(hash: string): Promise<unknown> {
    return this.page.goto(`${this.serviceUrl}/admin/console${hash}`);
  }

  shot(name: string): Promise<unknown> {
    return this.page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  }

  text(selector: string): Promise<string> {
    return this.page.$eval(selector, (e) => e.textContent ?? '');
  }

  waitForText(needle: string, timeout = 10_000): Promise<unknown> {
    return this.page.waitForFunction((n: string) => document.body.innerText.includes(n), { timeout }, needle);
  }

  async clickButton(label: string): Promise<void> {
    const button = await this.page.waitForSelector(`::-p-xpath(//button[normalize-space(.)='${label}'])`);
    await button?.click();
  }

  async signInWith(token: string): Promise<void> {
    await this.page.waitForSelector('#token');
    await this.page.$eval('#token', (input) => ((input as HTMLInputElement).value = ''));
    await this.page.type('#token', token);
    await this.clickButton('Sign in');
  }

  async close(): Promise<void> {
    await this.browser.close();
    rmSync(this.profile, { recursive: true, force: true });
  }
}
