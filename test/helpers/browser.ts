/**
 * Helpers of the web console's browser tests and screenshots: a headless
 * Chromium driven by playwright-core (`CHROMIUM_PATH`, default
 * `/usr/bin/chromium`), the console built into `dist/console/`, a cfgd with
 * authentication on serving it at `/ui/`, and the console's own gestures
 * (sign in, type into the values editor, wait for a text).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { CfgdClient } from '../../src/client/index.js';
import { DEFAULTS } from '../../src/settings/settings.js';
import { TEST_ADMIN_TOKEN } from './auth.js';
import { startTestServer, type TestServer } from './server.js';

/** The repository's root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Where `npm run build:console` writes the console, and where the test server serves it from. */
export const CONSOLE_DIR = join(ROOT, 'dist', 'console');
/** The script that builds the console. */
export const BUILD_CONSOLE_SCRIPT = join(ROOT, 'src', 'tools', 'build-console.ts');
/** The Chromium the tests drive: `CHROMIUM_PATH`, or Debian's. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** The window the console is tested and pictured in. */
export const VIEWPORT = { width: 1280, height: 800 } as const;

/** Builds the console into `dist/console/` with the project's own build script. */
export function buildConsole(): void {
  if (!existsSync(BUILD_CONSOLE_SCRIPT)) {
    throw new Error(`cannot build the web console: ${BUILD_CONSOLE_SCRIPT} does not exist`);
  }
  execFileSync('npx', ['tsx', BUILD_CONSOLE_SCRIPT], { cwd: ROOT, stdio: 'inherit' });
  if (!existsSync(join(CONSOLE_DIR, 'index.html'))) {
    throw new Error(`the console build wrote no ${join(CONSOLE_DIR, 'index.html')}`);
  }
}

/** A headless Chromium. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true });
}

/** A cfgd with authentication on serving the built console, an admin client of it, and the console's address. */
export interface ConsoleServer {
  readonly server: TestServer;
  /** A client signed in with the admin token, to set things up and to change configs "from elsewhere". */
  readonly admin: CfgdClient;
  /** `http://127.0.0.1:{port}/ui/` */
  readonly url: string;
  /** A client signed in with `token`, closed by `stop`. */
  client(token: string): CfgdClient;
  /** Creates a token with `grants` and returns its id and secret. */
  createToken(name: string, grants: { verb: string; resource: string }[]): Promise<{ id: string; secret: string }>;
  stop(): Promise<void>;
}

export async function startConsoleServer(): Promise<ConsoleServer> {
  const server = await startTestServer({
    auth: { ...DEFAULTS.auth, mode: 'on', adminToken: TEST_ADMIN_TOKEN },
    consoleDir: CONSOLE_DIR,
  });
  const clients: CfgdClient[] = [];
  const client = (token: string): CfgdClient => {
    const made = new CfgdClient({ addresses: [`127.0.0.1:${server.cfgd.grpcPort}`], token, deadlineMs: 5000 });
    clients.push(made);
    return made;
  };
  const admin = client(TEST_ADMIN_TOKEN);
  return {
    server,
    admin,
    url: `http://127.0.0.1:${server.cfgd.httpPort}/ui/`,
    client,
    createToken: async (name, grants) => {
      const response = await admin.createToken({ name, grants });
      return { id: response.token?.id ?? '', secret: response.secret };
    },
    stop: async () => {
      for (const each of clients) each.close();
      await server.stop();
    },
  };
}

/** A fresh context (its own sessionStorage) and page at 1280×800. */
export async function newPage(browser: Browser): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: VIEWPORT });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  return { context, page };
}

/** Saves a picture of `page` to `path` (its directory created), ignoring a page that is gone. */
export async function screenshot(page: Page, path: string, fullPage = false): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  await page.screenshot({ path, fullPage }).catch(() => undefined);
}

/** Opens the console at `url` (with `hash`) and signs in with `token` by mouse; resolves once signed in. */
export async function signIn(page: Page, url: string, token: string, hash = '#/'): Promise<void> {
  await page.goto(`${url}${hash}`);
  const form = page.getByRole('form', { name: 'Sign in' });
  await form.getByLabel('Token').fill(token);
  await form.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('banner').getByRole('button', { name: 'Sign out' }).waitFor();
}

/** Replaces everything in the console's values editor with `json`, as typed. */
export async function typeValues(page: Page, json: string): Promise<void> {
  const editor = page.getByLabel('Values editor');
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(json);
}

/** The text of `locator` (its rendered text, lines as the reader sees them). */
export function textOf(locator: Locator): Promise<string> {
  return locator.innerText();
}

/** Waits until `locator`'s text matches `expected` (a substring or a pattern); fails with the last text seen. */
export async function waitForText(locator: Locator, expected: string | RegExp, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      last = await locator.innerText({ timeout: Math.max(1, Math.min(1000, deadline - Date.now())) });
      if (typeof expected === 'string' ? last.includes(expected) : expected.test(last)) return last;
    } catch {
      // Not there yet: try again until the deadline.
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${String(expected)} in ${locator.toString()}; last text: ${JSON.stringify(last)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Waits until `locator` matches no element (or only hidden ones). */
export async function waitForGone(locator: Locator, timeoutMs = 10_000): Promise<void> {
  await locator.first().waitFor({ state: 'hidden', timeout: timeoutMs });
}

/**
 * Selects the option of `select` that stands for version `version`: the one whose value is the
 * number, or else whose label names it (`Version 3`, `3 — PUT …`).
 */
export async function selectVersion(select: Locator, version: number): Promise<void> {
  await select.locator('option').first().waitFor({ state: 'attached' });
  const options = await select
    .locator('option')
    .evaluateAll((elements) =>
      elements.map((each) => ({ value: String(each.value), label: String(each.textContent) })),
    );
  const pattern = new RegExp(`(^|\\D)${version}(\\D|$)`);
  const option =
    options.find((each) => each.value === String(version)) ?? options.find((each) => pattern.test(each.label));
  if (option === undefined) {
    throw new Error(`no option for version ${version} in ${select.toString()}: ${JSON.stringify(options)}`);
  }
  await select.selectOption(option.value);
}

/** Whether the page's focus is on `locator`'s element. */
export function isFocused(locator: Locator): Promise<boolean> {
  return locator.evaluate((element) => element === element.ownerDocument.activeElement);
}

/** Presses Tab until `locator` has the focus; fails naming it after `presses` presses. */
export async function tabTo(page: Page, locator: Locator, presses = 60): Promise<void> {
  for (let i = 0; i < presses; i++) {
    if (await isFocused(locator)) return;
    await page.keyboard.press('Tab');
  }
  if (!(await isFocused(locator))) throw new Error(`${presses} presses of Tab do not reach ${locator.toString()}`);
}
