/**
 * The web console at common widths, from a small laptop to a desktop: no page scrolls sideways,
 * and the controls a person needs stay inside the window, with names, values and errors long
 * enough to push a careless layout apart. And a config page used by keyboard alone: Tab moves
 * past the editor, a select is set with the arrow keys, Enter sends, Escape leaves a dialog.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { grantsOn } from '../helpers/auth.js';
import {
  isFocused,
  launchBrowser,
  newPage,
  selectVersion,
  signIn,
  startConsoleServer,
  tabTo,
  waitForText,
  type ConsoleServer,
} from '../helpers/browser.js';

/** What must stay inside the window: controls, headings, sections, lists, tables, the editor. */
const SELECTORS = [
  '[role=banner]',
  'main',
  'section',
  'h1',
  'h2',
  'button',
  'input',
  'select',
  'li',
  'pre',
  'table',
  'td',
  '.cm-editor',
];

/** Window widths: a narrow window (a tablet, half a laptop screen) up to a desktop. */
const WIDTHS = [768, 800, 1024, 1280, 1366, 1440, 1920];

let cfgd: ConsoleServer;
let browser: Browser;

beforeAll(async () => {
  [cfgd, browser] = await Promise.all([startConsoleServer(), launchBrowser()]);
});

afterAll(async () => {
  await browser?.close();
  await cfgd?.stop();
});

/** How far the page reaches past the window's right edge (0: it does not scroll sideways). */
function sidewaysOverflow(page: Page): Promise<number> {
  return page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth');
}

/** The elements matching `selectors` whose box reaches outside the window's width, described. */
function outside(page: Page, selectors: readonly string[]): Promise<string[]> {
  // Runs in the page (this project's TypeScript has no DOM types): a script, as the other evaluations.
  return page.evaluate(`(() => {
    const width = document.documentElement.clientWidth;
    const found = [];
    for (const selector of ${JSON.stringify(selectors)})
      for (const element of document.querySelectorAll(selector)) {
        const box = element.getBoundingClientRect();
        if (box.width > 0 && (box.left < -0.5 || box.right > width + 0.5))
          found.push(selector + ' [' + Math.round(box.left) + ', ' + Math.round(box.right) + '] of ' + width);
      }
    return found;
  })()`);
}

describe('the web console at common widths', () => {
  it('scrolls no page sideways and keeps its controls in the window, long names, values and errors included', async () => {
    const user = `layout-${Date.now().toString(36)}`;
    const config = `a-config-name-without-any-place-to-break-it-${'x'.repeat(70)}`;
    const key = { userId: user, configName: config };
    const { secret } = await cfgd.createToken(`layout-reader-and-editor-${'n'.repeat(60)}`, [
      ...grantsOn(user, 'read', 'write', 'watch'),
    ]);
    const long = 'averyveryverylongvaluewithoutspaces'.repeat(12);
    await cfgd.admin.put({
      ...key,
      values: { url: `https://example.com/${long}`, nested: { deeper: { list: [long] } } },
    });
    await cfgd.admin.put({
      ...key,
      values: { url: 'https://example.com/', added: long, nested: { deeper: { list: [] } } },
    });
    await cfgd.admin.reportInstance({
      ...key,
      instanceId: `instance-${'i'.repeat(100)}`,
      appliedVersion: 1,
      failedVersion: 2,
      error: `the reload command exited with status 1: ${long}`,
    });

    const { context, page } = await newPage(browser);
    try {
      await signIn(page, cfgd.url, secret, `#/users/${user}/configs/${config}`);
      await waitForText(page.getByLabel('Current version'), /\bVersion 2\b/);
      await page.getByRole('table', { name: 'Instances' }).waitFor();
      await waitForText(page.getByLabel('History chain'), 'History intact');
      await page.getByText('averyvery').first().waitFor();
      await selectVersion(page.getByLabel('From version'), 1);
      await selectVersion(page.getByLabel('To version'), 2);
      await page.getByRole('button', { name: 'Compare' }).click();
      await page.getByRole('button', { name: 'Side by side' }).click();
      await page.getByRole('button', { name: 'Inline' }).waitFor();

      const pages = [
        { name: 'config', hash: `#/users/${user}/configs/${config}` },
        { name: 'configs', hash: `#/users/${user}` },
        { name: 'users', hash: '#/' },
      ];
      const found: string[] = [];
      for (const { name, hash } of pages) {
        if (name !== 'config') await page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
        await page.getByRole('heading', { level: 1 }).first().waitFor();
        for (const width of WIDTHS) {
          await page.setViewportSize({ width, height: 800 });
          await page.evaluate('new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))');
          const overflow = await sidewaysOverflow(page);
          if (overflow > 0) found.push(`${name} at ${width}px scrolls ${overflow}px sideways`);
          for (const each of await outside(page, SELECTORS)) found.push(`${name} at ${width}px: ${each}`);
        }
      }
      expect(found).toEqual([]);
    } finally {
      await context.close();
    }
  });
});

describe('the config page by keyboard alone', () => {
  it('compares, edits past the editor, and opens and leaves the rollback dialog with Tab, Enter and Escape', async () => {
    const user = `keys-${Date.now().toString(36)}`;
    const key = { userId: user, configName: 'app' };
    const { secret } = await cfgd.createToken(
      `keys-editor-${Date.now().toString(36)}`,
      grantsOn(user, 'read', 'write', 'watch'),
    );
    for (const port of [80, 81, 82]) await cfgd.admin.put({ ...key, values: { port } });

    const { context, page } = await newPage(browser);
    try {
      await signIn(page, cfgd.url, secret, `#/users/${user}/configs/app`);
      await waitForText(page.getByLabel('Current version'), /\bVersion 3\b/);
      await waitForText(page.getByLabel('History chain'), 'History intact');

      // The editor does not keep Tab: the focus moves on past it, to the sections after it.
      const editor = page.getByLabel('Values editor');
      await tabTo(page, editor);
      await page.keyboard.press('Tab');
      expect(await isFocused(editor)).toBe(false);

      // Compare by keyboard: the versions chosen with the arrow keys, the form sent with Enter.
      const from = page.getByLabel('From version');
      await tabTo(page, from);
      for (let i = 0; i < 5 && (await from.inputValue()) !== '1'; i++) await page.keyboard.press('ArrowDown');
      expect(await from.inputValue()).toBe('1');
      await tabTo(page, page.getByRole('button', { name: 'Compare' }));
      await page.keyboard.press('Enter');
      await waitForText(page.getByRole('region', { name: 'Diff' }), /port: 80 → 8[12]/);

      // The rollback dialog: Enter opens it with the focus inside, Escape closes it, the focus comes back.
      const rollBack = page.getByRole('button', { name: 'Roll back to version 1' });
      await tabTo(page, rollBack);
      await page.keyboard.press('Enter');
      const dialog = page.getByRole('dialog', { name: 'Roll back' });
      await dialog.waitFor();
      expect(await dialog.evaluate((element) => element.contains(element.ownerDocument.activeElement))).toBe(true);
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'hidden' });
      expect(await isFocused(rollBack)).toBe(true);
      expect((await cfgd.admin.get(key)).config?.version).toBe(3);
    } finally {
      await context.close();
    }
  });
});
