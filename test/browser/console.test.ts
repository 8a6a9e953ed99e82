/**
 * The web console at /ui/, in a real headless Chromium against a real cfgd
 * with authentication on: signing in (by keyboard too), browsing users and
 * configs, a config's values, history, diff and hash chain, editing under a
 * schema with the server's own validation and a dry-run preview, saving,
 * rolling back, versions written by other clients arriving live (and after
 * a cut connection), a compare-and-set conflict, what a read-only token is
 * offered, the fleet's instances, and a revoked token ending the session.
 * Other clients' changes are made with CfgdClient, as an operator's scripts
 * would. No token may ever appear in a URL the page opens or requests.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, type TestContext } from 'vitest';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { grantsOn } from '../helpers/auth.js';
import { http } from '../helpers/http.js';
import { TcpProxy } from '../helpers/proxy.js';
import {
  launchBrowser,
  newPage,
  screenshot,
  selectVersion,
  signIn,
  startConsoleServer,
  tabTo,
  typeValues,
  waitForGone,
  waitForText,
  type ConsoleServer,
} from '../helpers/browser.js';

/** How long the console may take to show something that happened elsewhere (a live version, a refresh). */
const LIVE_MS = 10_000;

let cfgd: ConsoleServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
/** Every URL the page navigated to or requested during the test. */
let urls: string[];
/** The secrets of the tokens the test used: none may appear in any of `urls`. */
let secrets: string[];

let counter = 0;
/** A name no other test uses (names: 1-128 characters from A-Z a-z 0-9 . _ -). */
function unique(prefix: string): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}`;
}

/** A token named `name` with `grants`; its secret is checked to stay out of every URL. */
async function token(name: string, grants: { verb: string; resource: string }[]): Promise<string> {
  const { secret } = await cfgd.createToken(name, grants);
  secrets.push(secret);
  return secret;
}

/** A token that may read, write and watch every config of `user`; its principal is `token:{name}`. */
function editorOf(user: string, name = unique(`${user}-editor`)): Promise<string> {
  return token(name, grantsOn(user, 'read', 'write', 'watch'));
}

/** Writes `values` to `user/config` as the admin, one version each, and returns the latest version. */
async function writeAsAdmin(user: string, config: string, ...values: Record<string, unknown>[]): Promise<number> {
  let version = 0;
  for (const each of values) {
    const response = await cfgd.admin.put({ userId: user, configName: config, values: each });
    version = response.config?.version ?? 0;
  }
  return version;
}

/** The hash of a config's page. */
function configHash(user: string, config: string): string {
  return `#/users/${encodeURIComponent(user)}/configs/${encodeURIComponent(config)}`;
}

/** Signs in with `secret` straight onto `user/config`'s page and waits for it to show `Version {version}`. */
async function openConfig(secret: string, user: string, config: string, version: number): Promise<void> {
  await signIn(page, cfgd.url, secret, configHash(user, config));
  await page.getByRole('heading', { level: 1, name: `${user}/${config}` }).waitFor();
  await waitForText(page.getByLabel('Current version'), versionText(version));
}

/** `Version N` as a whole word: not matched by `Version N0`. */
function versionText(version: number): RegExp {
  return new RegExp(`\\bVersion ${version}\\b`);
}

/** The items of the History list, newest first (not the lists of changes inside them). */
function historyItems(): Locator {
  return page.getByRole('list', { name: 'History' }).locator(':scope > li');
}

/** The history item of version `version`. */
function historyItem(version: number): Locator {
  return historyItems().filter({ hasText: versionText(version) });
}

/** The texts of `locator`'s elements, trimmed. */
async function texts(locator: Locator): Promise<string[]> {
  return (await locator.allInnerTexts()).map((text) => text.trim());
}

/** Polls `count` until it is `expected`; fails with the last count. */
async function waitForCount(locator: Locator, expected: number, timeoutMs = 10_000): Promise<void> {
  await expect.poll(() => locator.count(), { timeout: timeoutMs, interval: 50 }).toBe(expected);
}

/** The message cfgd answers a request made with the bearer token `secret` that it does not know. */
async function refusalOf(secret: string): Promise<string> {
  const refused = await http(cfgd.server.cfgd.httpPort, 'GET', '/v1/whoami', {
    headers: { authorization: `Bearer ${secret}` },
  });
  expect(refused.status).toBe(401);
  return String(refused.json.error.message);
}

/** The values the page keeps in sessionStorage and localStorage. */
async function storedValues(): Promise<{ session: string[]; local: string[] }> {
  return page.evaluate<{ session: string[]; local: string[] }>(
    '({ session: Object.values(sessionStorage), local: Object.values(localStorage) })',
  );
}

describe('the web console', () => {
  beforeAll(async () => {
    [cfgd, browser] = await Promise.all([startConsoleServer(), launchBrowser()]);
  });

  afterAll(async () => {
    await browser?.close();
    await cfgd?.stop();
  });

  beforeEach(async () => {
    ({ context, page } = await newPage(browser));
    urls = [];
    secrets = [];
    page.on('request', (request) => urls.push(request.url()));
    page.on('framenavigated', (frame) => urls.push(frame.url()));
  });

  afterEach(async (test: TestContext) => {
    try {
      if (test.task.result?.state === 'fail') {
        const name = test.task.name.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 80);
        await screenshot(page, `/tmp/cfgd-console-failure-${name}.png`, true);
      }
      const leaked = urls.filter((url) => secrets.some((secret) => url.includes(secret)));
      expect(leaked, 'URLs carrying a token').toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('walks the whole flow: sign in, browse, edit under a schema, save, compare, roll back, follow live, meet a conflict', async () => {
    const user = unique('acme');
    const name = unique('acme-editor');
    const secret = await editorOf(user, name);
    await writeAsAdmin(user, 'web', { port: 80, host: 'a.example' });
    await writeAsAdmin(user, 'worker', { threads: 4 });
    await writeAsAdmin(user, 'api-gw', { routes: 3 });
    const key = { userId: user, configName: 'web' };

    // Sign in: a wrong token is refused with an alert, the right one shows the principal.
    await page.goto(cfgd.url);
    const form = page.getByRole('form', { name: 'Sign in' });
    const wrong = 'cfgd_wrong-0123456789abcdefghijklmnop';
    await form.getByLabel('Token').fill(wrong);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await waitForText(page.getByRole('alert'), await refusalOf(wrong));
    await form.getByLabel('Token').fill(secret);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await waitForText(page.getByRole('banner'), `token:${name}`);

    // Browse: the user, its configs, the filter, the config.
    await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
    await page.getByRole('link', { name: user, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: `Configs of ${user}` }).waitFor();
    const table = page.getByRole('table', { name: 'Configs' });
    await waitForCount(table.getByRole('link'), 3);
    await page.getByLabel('Filter by name').fill('w');
    await waitForCount(table.getByRole('link'), 2);
    expect(await texts(table.getByRole('link'))).toEqual(['web', 'worker']);
    await table.getByRole('link', { name: 'web', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: `${user}/web` }).waitFor();
    await waitForText(page.getByLabel('Current version'), versionText(1));
    await waitForText(page.getByRole('status', { name: 'Live' }), 'Live');

    // A schema set by the admin arrives as version 2; the editor checks against it.
    await cfgd.admin.setSchema({
      ...key,
      schema: { type: 'object', properties: { port: { type: 'integer' } }, required: ['port'] },
    });
    await waitForText(page.getByLabel('Current version'), versionText(2), LIVE_MS);
    const validation = page.getByRole('status', { name: 'Validation' });
    const save = page.getByRole('button', { name: 'Save' });
    await typeValues(page, '{"port": "eighty", "host": "a.example"}');
    await waitForText(validation, 'values/port: must be integer');
    expect(await save.isDisabled()).toBe(true);
    await typeValues(page, '{"port": 8080, "host": "a.example"}');
    await waitForText(validation, 'Valid');
    await waitForText(page.getByRole('region', { name: 'Preview' }), '~port');
    await expect.poll(() => save.isEnabled(), { timeout: 10_000 }).toBe(true);
    await save.click();
    await waitForText(page.getByLabel('Current version'), versionText(3));
    await waitForText(historyItems().first(), versionText(3));
    expect(await historyItems().first().innerText()).toContain('PUT');

    // Compare version 1 with version 3.
    await selectVersion(page.getByLabel('From version'), 1);
    await selectVersion(page.getByLabel('To version'), 3);
    await page.getByRole('button', { name: 'Compare' }).click();
    await waitForText(page.getByRole('region', { name: 'Diff' }), '~ port: 80 → 8080');

    // Roll back to version 1 through the dialog: version 4, a ROLLBACK.
    await page.getByRole('button', { name: 'Roll back to version 1' }).click();
    const dialog = page.getByRole('dialog', { name: 'Roll back' });
    await waitForText(dialog, /~ ?port/);
    await dialog.getByRole('button', { name: 'Roll back', exact: true }).click();
    await waitForGone(dialog);
    await waitForText(page.getByLabel('Current version'), versionText(4));
    await waitForText(historyItems().first(), versionText(4));
    expect(await historyItems().first().innerText()).toContain('ROLLBACK');
    expect((await cfgd.admin.get(key)).config?.values).toEqual({ port: 80, host: 'a.example' });

    // Another client's version arrives live, marked new.
    await cfgd.admin.put({ ...key, values: { port: 81, host: 'a.example' } });
    await waitForText(page.getByLabel('Current version'), versionText(5), LIVE_MS);
    await waitForText(historyItems().first(), versionText(5));
    expect(await historyItem(5).getAttribute('data-new')).toBe('true');

    // An edit overtaken by another client's version: announced, then refused at Save.
    await typeValues(page, '{"port": 82, "host": "a.example"}');
    await waitForText(page.getByRole('region', { name: 'Preview' }), '~port');
    await cfgd.admin.put({ ...key, values: { port: 83, host: 'a.example' } });
    await waitForText(
      page.getByRole('alert').filter({ hasText: 'saved elsewhere' }),
      'Version 6 was saved elsewhere while you edit.',
      LIVE_MS,
    );
    await expect.poll(() => save.isEnabled(), { timeout: 10_000 }).toBe(true);
    await save.click();
    await waitForText(
      page.getByRole('alert').filter({ hasText: 'first' }),
      'Someone else saved version 6 first. Your edit was not saved.',
    );
    expect((await cfgd.admin.get(key)).config?.values).toEqual({ port: 83, host: 'a.example' });
    await waitForCount(historyItems(), 6);
    await waitForText(page.getByLabel('History chain'), 'History intact');
  });

  it('signs in with Tab and Enter alone: a wrong token shows the server message, the right one the principal', async () => {
    const user = unique('kb');
    const name = unique('kb-editor');
    const secret = await editorOf(user, name);
    const wrong = 'cfgd_this-is-not-a-token-0123456789';
    const serverMessage = await refusalOf(wrong);

    await page.goto(cfgd.url);
    const form = page.getByRole('form', { name: 'Sign in' });
    const input = form.getByLabel('Token');
    const button = form.getByRole('button', { name: 'Sign in' });
    expect(await input.getAttribute('type')).toBe('password');

    await tabTo(page, input);
    await page.keyboard.type(wrong);
    await page.keyboard.press('Enter');
    await waitForText(page.getByRole('alert'), serverMessage);
    expect(await page.getByRole('banner').getByRole('button', { name: 'Sign out' }).count()).toBe(0);

    await tabTo(page, input);
    await page.keyboard.press('Control+A');
    await page.keyboard.type(secret);
    await tabTo(page, button);
    await page.keyboard.press('Enter');
    const header = page.getByRole('banner');
    await waitForText(header, `token:${name}`);
    await header.getByRole('button', { name: 'Sign out' }).waitFor();
    await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();

    // The token is kept for this tab only, and never in the address.
    expect(page.url()).not.toContain(secret);
    const stored = await storedValues();
    expect(stored.session).toContain(secret);
    expect(stored.local.join('\n')).not.toContain(secret);

    await header.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('form', { name: 'Sign in' }).waitFor();
    expect((await storedValues()).session).not.toContain(secret);
  });

  it("lists the users its grants name and a user's configs; the filter narrows them, a name opens its config", async () => {
    const user = unique('list');
    const other = unique('other');
    const secret = await token(unique('lister'), [...grantsOn(user, 'read', 'write'), ...grantsOn(other, 'read')]);
    await writeAsAdmin(user, 'app-one', { a: 1 }, { a: 2 });
    await writeAsAdmin(user, 'app-two', { b: 1 });
    await writeAsAdmin(user, 'web-one', { c: 1 });
    await writeAsAdmin(other, 'elsewhere', { d: 1 });

    await signIn(page, cfgd.url, secret);
    await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
    await page.getByRole('link', { name: other, exact: true }).waitFor();
    await page.getByRole('link', { name: user, exact: true }).click();

    await page.getByRole('heading', { level: 1, name: `Configs of ${user}` }).waitFor();
    expect(new URL(page.url()).hash).toBe(`#/users/${user}`);
    const table = page.getByRole('table', { name: 'Configs' });
    await waitForCount(table.getByRole('link'), 3);
    expect(await texts(table.getByRole('columnheader'))).toEqual(['Name', 'Version', 'Updated', 'Author']);
    expect(await texts(table.getByRole('link'))).toEqual(['app-one', 'app-two', 'web-one']);
    const appOne = table.getByRole('row').filter({ has: page.getByRole('link', { name: 'app-one', exact: true }) });
    const cells = await texts(appOne.getByRole('cell'));
    expect(cells[0]).toBe('app-one');
    expect(cells[1]).toBe('2');
    expect(cells[2]).not.toBe('');
    expect(cells[3]).toBe('token:admin');

    await page.getByLabel('Filter by name').fill('app');
    await waitForCount(table.getByRole('link'), 2);
    expect(await texts(table.getByRole('link'))).toEqual(['app-one', 'app-two']);
    await page.getByLabel('Filter by name').fill('');
    await waitForCount(table.getByRole('link'), 3);

    await table.getByRole('link', { name: 'app-two', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: `${user}/app-two` }).waitFor();
    expect(new URL(page.url()).hash).toBe(configHash(user, 'app-two'));
    await waitForText(page.getByLabel('Current version'), versionText(1));
  });

  it('opens any user by name with a grant on every user', async () => {
    const user = unique('anyone');
    const secret = await token(unique('auditor'), [{ verb: 'read', resource: 'users/*/configs/*' }]);
    await writeAsAdmin(user, 'only', { d: 1 });

    await signIn(page, cfgd.url, secret);
    await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
    const open = page.getByRole('form', { name: 'Open user' });
    await open.getByLabel('User').fill(user);
    await open.getByRole('button', { name: 'Open' }).click();
    await page.getByRole('heading', { level: 1, name: `Configs of ${user}` }).waitFor();
    expect(new URL(page.url()).hash).toBe(`#/users/${user}`);
    const table = page.getByRole('table', { name: 'Configs' });
    await waitForCount(table.getByRole('link'), 1);
    expect(await texts(table.getByRole('link'))).toEqual(['only']);
  });

  it("pages through a user's configs with Next page and Previous page", async () => {
    const user = unique('pages');
    const secret = await token(unique('pager'), grantsOn(user, 'read'));
    // More configs than a page holds (the console's page is at most 100, ListConfigs' default).
    const names = Array.from({ length: 101 }, (_, i) => `c${String(i).padStart(3, '0')}`);
    await Promise.all(names.map((name) => writeAsAdmin(user, name, { i: name })));

    await signIn(page, cfgd.url, secret, `#/users/${user}`);
    const table = page.getByRole('table', { name: 'Configs' });
    await table.getByRole('link', { name: 'c000', exact: true }).waitFor();
    const first = await texts(table.getByRole('link'));
    expect(first.length).toBeLessThan(names.length);
    expect(first).toEqual(names.slice(0, first.length));

    await page.getByRole('button', { name: 'Next page' }).click();
    await table.getByRole('link', { name: names[first.length]!, exact: true }).waitFor();
    const second = await texts(table.getByRole('link'));
    expect(second[0]).toBe(names[first.length]);
    expect(second.some((name) => first.includes(name))).toBe(false);

    await page.getByRole('button', { name: 'Previous page' }).click();
    await table.getByRole('link', { name: 'c000', exact: true }).waitFor();
    expect(await texts(table.getByRole('link'))).toEqual(first);
  });

  it('edits under a schema: a violation shows the server field violation and blocks Save; the fix previews ~port and saves', async () => {
    const user = unique('alice');
    const config = unique('web');
    const name = unique('alice-editor');
    const secret = await editorOf(user, name);
    await writeAsAdmin(user, config, { port: 80, host: 'a.example' });
    await cfgd.admin.setSchema({
      userId: user,
      configName: config,
      schema: { type: 'object', properties: { port: { type: 'integer' } }, required: ['port'] },
    });
    const before = (await cfgd.admin.get({ userId: user, configName: config })).config!.version;

    await openConfig(secret, user, config, before);
    await waitForText(page.getByRole('status', { name: 'Live' }), 'Live');
    await page.getByRole('heading', { level: 2, name: 'Values' }).waitFor();
    await page.getByText('a.example').first().waitFor();
    await page.getByRole('heading', { level: 2, name: 'History' }).waitFor();
    await waitForCount(historyItems(), before);
    await waitForText(historyItems().first(), versionText(before));
    await waitForText(page.getByLabel('History chain'), 'History intact');

    await page.getByRole('heading', { level: 2, name: 'Edit' }).waitFor();
    const validation = page.getByRole('status', { name: 'Validation' });
    const save = page.getByRole('button', { name: 'Save' });
    await typeValues(page, '{"port": "eighty", "host": "a.example"}');
    await waitForText(validation, 'values/port: must be integer');
    expect(await save.isDisabled()).toBe(true);

    await typeValues(page, '{"port": 8080, "host": "a.example"}');
    await waitForText(validation, 'Valid');
    expect(await validation.innerText()).not.toContain('must be integer');
    const preview = page.getByRole('region', { name: 'Preview' });
    await waitForText(preview, '~port');
    expect(await preview.innerText()).not.toMatch(/[+-]host/);
    await expect.poll(() => save.isEnabled(), { timeout: 10_000 }).toBe(true);
    await save.click();

    await waitForText(page.getByLabel('Current version'), versionText(before + 1));
    const saved = historyItems().first();
    await waitForText(saved, versionText(before + 1));
    const savedText = await saved.innerText();
    expect(savedText).toContain('PUT');
    expect(savedText).toContain(`token:${name}`);
    expect(savedText).toContain('~port');
    await waitForCount(historyItems(), before + 1);
    await waitForText(page.getByLabel('History chain'), 'History intact');
    const stored = await cfgd.admin.get({ userId: user, configName: config });
    expect(stored.config?.version).toBe(before + 1);
    expect(stored.config?.values).toEqual({ port: 8080, host: 'a.example' });
    // Nothing left to save: the editor holds the saved values.
    await expect.poll(() => save.isDisabled(), { timeout: 10_000 }).toBe(true);
  });

  it('compares two versions: ~, + and - lines, inline and side by side', async () => {
    const user = unique('diff');
    const config = unique('svc');
    const secret = await editorOf(user);
    await writeAsAdmin(
      user,
      config,
      { limits: { rps: 10 }, old: 1, same: true },
      { limits: { rps: 20 }, same: true, added: 'x' },
    );

    await openConfig(secret, user, config, 2);
    await selectVersion(page.getByLabel('From version'), 1);
    await selectVersion(page.getByLabel('To version'), 2);
    await page.getByRole('button', { name: 'Compare' }).click();
    const diff = page.getByRole('region', { name: 'Diff' });
    await waitForText(diff, '~ limits.rps: 10 → 20');
    const inline = await diff.innerText();
    expect(inline).toContain('- old: 1');
    expect(inline).toContain('+ added: "x"');
    expect(inline).not.toContain('same');

    await page.getByRole('button', { name: 'Side by side' }).click();
    // Side by side: the old and the new values in their own columns, and the way back to Inline.
    await page.getByRole('button', { name: 'Inline' }).waitFor();
    const sideBySide = await diff.innerText();
    expect(sideBySide).toContain('limits.rps');
    expect(sideBySide).toMatch(/10/);
    expect(sideBySide).toMatch(/20/);
    expect(sideBySide).toContain('old');
    expect(sideBySide).toContain('added');
    expect(sideBySide).not.toContain('~ limits.rps: 10 → 20');

    await page.getByRole('button', { name: 'Inline' }).click();
    await waitForText(diff, '~ limits.rps: 10 → 20');
  });

  it('rolls back through the dialog: a preview, Cancel writes nothing, Roll back writes a ROLLBACK version', async () => {
    const user = unique('rb');
    const config = unique('svc');
    const name = unique('rb-editor');
    const secret = await editorOf(user, name);
    await writeAsAdmin(user, config, { a: 1 }, { a: 2 }, { a: 3, b: true });

    await openConfig(secret, user, config, 3);
    const rollBackTo1 = page.getByRole('button', { name: 'Roll back to version 1' });
    await rollBackTo1.click();
    const dialog = page.getByRole('dialog', { name: 'Roll back' });
    await waitForText(dialog, /~ ?a/);
    const preview = await dialog.innerText();
    expect(preview).toMatch(/~ ?a/);
    expect(preview).toMatch(/- ?b/);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await waitForGone(dialog);
    expect((await cfgd.admin.get({ userId: user, configName: config })).config?.version).toBe(3);

    await rollBackTo1.click();
    await dialog.getByRole('button', { name: 'Roll back', exact: true }).click();
    await waitForGone(dialog);
    await waitForText(page.getByLabel('Current version'), versionText(4));
    const item = historyItems().first();
    await waitForText(item, versionText(4));
    const text = await item.innerText();
    expect(text).toContain('ROLLBACK');
    expect(text).toContain(`token:${name}`);
    const stored = await cfgd.admin.get({ userId: user, configName: config });
    expect(stored.config?.version).toBe(4);
    expect(stored.config?.values).toEqual({ a: 1 });
  });

  it('shows a version saved by another client live: Current version follows, the new item is marked new', async () => {
    const user = unique('live');
    const config = unique('svc');
    const secret = await editorOf(user);
    await writeAsAdmin(user, config, { n: 1 });

    await openConfig(secret, user, config, 1);
    await waitForText(page.getByRole('status', { name: 'Live' }), 'Live');
    await waitForCount(historyItems(), 1);
    // Marks this document: a reload would lose the mark.
    await page.evaluate('window.cfgdTestMark = true');

    await writeAsAdmin(user, config, { n: 2, from: 'elsewhere' });
    await waitForText(page.getByLabel('Current version'), versionText(2), LIVE_MS);
    await waitForText(historyItems().first(), versionText(2));
    expect(await historyItem(2).getAttribute('data-new')).toBe('true');
    expect(await historyItem(1).getAttribute('data-new')).not.toBe('true');
    await page.getByText('elsewhere').first().waitFor();
    expect(await page.evaluate('window.cfgdTestMark')).toBe(true);
  });

  it('shows Reconnecting… while its connection is cut, then catches up with the versions written meanwhile', async () => {
    const user = unique('net');
    const config = unique('svc');
    const secret = await editorOf(user);
    await writeAsAdmin(user, config, { n: 1 });
    // The console through a proxy that can cut its connections (a network failure, a restarted balancer).
    const proxy = await TcpProxy.start(cfgd.server.cfgd.httpPort);
    try {
      await signIn(page, `http://127.0.0.1:${proxy.port}/ui/`, secret, configHash(user, config));
      await waitForText(page.getByLabel('Current version'), versionText(1));
      const live = page.getByRole('status', { name: 'Live' });
      await waitForText(live, /^Live$/);

      proxy.cut();
      await waitForText(live, 'Reconnecting…', LIVE_MS);
      await writeAsAdmin(user, config, { n: 2 }, { n: 3, back: 'online' });
      proxy.restore();
      await waitForText(live, /^Live$/, 20_000);
      await waitForText(page.getByLabel('Current version'), versionText(3), LIVE_MS);
      await waitForCount(historyItems(), 3);
      await page.getByText('online').first().waitFor();
    } finally {
      await proxy.stop();
    }
  });

  it('refuses a save that lost a compare-and-set race, says so, and loads the newer version', async () => {
    const user = unique('cas');
    const config = unique('svc');
    const secret = await editorOf(user);
    await writeAsAdmin(user, config, { n: 1 });

    await openConfig(secret, user, config, 1);
    await waitForText(page.getByRole('status', { name: 'Live' }), 'Live');
    await typeValues(page, '{"n": 2}');
    await waitForText(page.getByRole('region', { name: 'Preview' }), '~n');

    await writeAsAdmin(user, config, { n: 5, m: 1 });
    await waitForText(
      page.getByRole('alert').filter({ hasText: 'saved elsewhere' }),
      'Version 2 was saved elsewhere while you edit.',
      LIVE_MS,
    );
    const save = page.getByRole('button', { name: 'Save' });
    await expect.poll(() => save.isEnabled(), { timeout: 10_000 }).toBe(true);
    await save.click();
    await waitForText(
      page.getByRole('alert').filter({ hasText: 'first' }),
      'Someone else saved version 2 first. Your edit was not saved.',
    );
    const stored = await cfgd.admin.get({ userId: user, configName: config });
    expect(stored.config?.version).toBe(2);
    expect(stored.config?.values).toEqual({ n: 5, m: 1 });

    await page.getByRole('button', { name: 'Load version 2' }).click();
    const editor = page.getByLabel('Values editor');
    await waitForText(editor, /"m"/);
    expect(await editor.innerText()).toMatch(/"n"\s*:\s*5/);
    await waitForGone(page.getByRole('alert').filter({ hasText: 'Your edit was not saved' }));
  });

  it('offers a read-only token the values and history, but no Edit, Save or Roll back', async () => {
    const user = unique('ro');
    const config = unique('svc');
    const name = unique('ro-reader');
    const secret = await token(name, [{ verb: 'read', resource: `users/${user}/configs/*` }]);
    await writeAsAdmin(user, config, { a: 1 }, { a: 2, readable: 'yes' });

    await openConfig(secret, user, config, 2);
    await waitForText(page.getByRole('banner'), `token:${name}`);
    await page.getByRole('heading', { level: 2, name: 'Values' }).waitFor();
    await page.getByText('readable').first().waitFor();
    await waitForCount(historyItems(), 2);
    await waitForText(page.getByLabel('History chain'), 'History intact');
    await page.getByRole('heading', { level: 2, name: 'Instances' }).waitFor();

    expect(await page.getByRole('heading', { name: 'Edit' }).count()).toBe(0);
    expect(await page.getByLabel('Values editor').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Save' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: /Roll back/ }).count()).toBe(0);
    expect(page.url()).not.toContain(secret);
  });

  it('lists the instances that reported, refreshed when a new version arrives', async () => {
    const user = unique('fleet');
    const config = unique('svc');
    const secret = await editorOf(user);
    await writeAsAdmin(user, config, { w: 1 }, { w: 2 });
    await cfgd.admin.reportInstance({ userId: user, configName: config, instanceId: 'web-7', appliedVersion: 2 });

    await openConfig(secret, user, config, 2);
    await page.getByRole('heading', { level: 2, name: 'Instances' }).waitFor();
    await waitForText(page.getByText(/instances run version/), '1 of 1 instances run version 2');
    const table = page.getByRole('table', { name: 'Instances' });
    expect(await texts(table.getByRole('columnheader'))).toEqual([
      'Instance',
      'Applied',
      'State',
      'Failed',
      'Last report',
      'Error',
    ]);
    const web7 = table.getByRole('row').filter({ hasText: 'web-7' });
    const cells = await texts(web7.getByRole('cell'));
    expect(cells[0]).toBe('web-7');
    expect(cells[1]).toBe('2');

    const error = 'the reload command exited with status 1: invalid worker count';
    await cfgd.admin.reportInstance({
      userId: user,
      configName: config,
      instanceId: 'web-8',
      appliedVersion: 1,
      failedVersion: 2,
      error,
    });
    await writeAsAdmin(user, config, { w: 3 });
    await waitForText(page.getByText(/instances run version/), '0 of 2 instances run version 3', LIVE_MS);
    const web8 = table.getByRole('row').filter({ hasText: 'web-8' });
    await waitForText(web8, error);
    const failing = await texts(web8.getByRole('cell'));
    expect(failing[0]).toBe('web-8');
    expect(failing[1]).toBe('1');
    expect(failing[3]).toBe('2');
  });

  it('returns to sign-in once the token is revoked: "Your session ended: sign in again"', async () => {
    const user = unique('revoked');
    const config = unique('svc');
    const created = await cfgd.createToken(unique('short-lived'), grantsOn(user, 'read', 'write', 'watch'));
    secrets.push(created.secret);
    await writeAsAdmin(user, config, { a: 1 });

    await openConfig(created.secret, user, config, 1);
    await cfgd.admin.revokeToken(created.id);
    // The next call (this page's own, or the user's configs asked for here) answers 401.
    await page.evaluate(`location.hash = ${JSON.stringify(`#/users/${user}`)}`);
    await page.getByRole('form', { name: 'Sign in' }).waitFor();
    await waitForText(page.getByRole('alert'), 'Your session ended: sign in again');
    expect(await page.getByRole('banner').getByRole('button', { name: 'Sign out' }).count()).toBe(0);
  });
});
