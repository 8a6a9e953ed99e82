/**
 * Pictures of the web console for the docs (`npm run screenshots`): builds the
 * console, starts cfgd in this process with authentication on and demo data
 * (a few configs of one team, a schema, a history with a rollback, a small
 * fleet), signs in as the team's editor in headless Chromium (`CHROMIUM_PATH`,
 * default `/usr/bin/chromium`) and writes 1280×800 PNGs of the main pages to
 * `docs/console/`: sign-in, configs list, a config (values and history), a
 * diff, the editor showing a schema violation, and the instances.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import {
  buildConsole,
  launchBrowser,
  newPage,
  ROOT,
  screenshot,
  selectVersion,
  signIn,
  startConsoleServer,
  typeValues,
  waitForText,
  type ConsoleServer,
} from '../test/helpers/browser.js';

const OUT = join(ROOT, 'docs', 'console');
const USER = 'payments';
const CONFIG = 'checkout';

/** The demo: the payments team's configs, `checkout`'s history, schema and fleet. Returns the editor's token. */
async function seed(cfgd: ConsoleServer): Promise<string> {
  const admin = cfgd.admin;
  const { secret } = await cfgd.createToken('payments-editor', [
    { verb: 'read', resource: `users/${USER}/configs/*` },
    { verb: 'write', resource: `users/${USER}/configs/*` },
    { verb: 'watch', resource: `users/${USER}/configs/*` },
  ]);
  const editor = cfgd.client(secret);
  const key = { userId: USER, configName: CONFIG };
  await admin.setSchema({
    ...key,
    schema: {
      type: 'object',
      properties: {
        port: { type: 'integer', minimum: 1, maximum: 65535 },
        host: { type: 'string' },
        limits: { type: 'object', properties: { rps: { type: 'integer' }, burst: { type: 'integer' } } },
        features: { type: 'object', additionalProperties: { type: 'boolean' } },
      },
      required: ['port', 'host'],
    },
  });
  await admin.put({ ...key, values: { port: 8080, host: 'checkout.internal', limits: { rps: 10, burst: 20 } } });
  await editor.put({
    ...key,
    values: { port: 8080, host: 'checkout.internal', limits: { rps: 20, burst: 40 }, features: { wallet: false } },
  });
  await editor.patch({ ...key, patch: { features: { wallet: true, giftCards: true } } });
  await editor.patch({ ...key, patch: { limits: { rps: 500 } } });
  await editor.rollback({ ...key, toVersion: 4 });
  await editor.patch({ ...key, patch: { timeoutMs: 2500 } });
  const latest = (await admin.get(key)).config?.version ?? 0;

  for (const [name, values] of [
    ['fraud-rules', { threshold: 0.92, reviewQueue: 'manual', countries: ['DE', 'FR', 'NL'] }],
    ['ledger', { batchSize: 500, flushMs: 250 }],
    ['payouts', { schedule: 'daily', currency: 'EUR' }],
    ['refunds', { autoApproveBelow: 25, notify: true }],
    ['webhooks', { retries: 5, backoffMs: 1000 }],
  ] as const) {
    await editor.put({ userId: USER, configName: name, values });
  }

  for (const instance of ['checkout-7f9c', 'checkout-b21d', 'checkout-e04a']) {
    await admin.reportInstance({ ...key, instanceId: instance, appliedVersion: latest });
  }
  await admin.reportInstance({
    ...key,
    instanceId: 'checkout-91aa',
    appliedVersion: latest - 1,
    failedVersion: latest,
    error: 'the reload command exited with status 1: timeoutMs must be below 2000',
  });
  return secret;
}

/** Scrolls the section under `heading` to the top of the window, then pictures the window. */
async function pictureSection(page: Page, heading: string, file: string): Promise<void> {
  await page
    .getByRole('heading', { level: 2, name: heading })
    .evaluate((element) => element.scrollIntoView({ block: 'start' }));
  await picture(page, file);
}

async function picture(page: Page, file: string): Promise<void> {
  // Let transitions and the editor's measurements settle.
  await page.waitForTimeout(300);
  await screenshot(page, join(OUT, file));
  console.log(`wrote ${join('docs', 'console', file)}`);
}

async function main(): Promise<void> {
  buildConsole();
  mkdirSync(OUT, { recursive: true });
  const cfgd = await startConsoleServer();
  const browser = await launchBrowser();
  try {
    const secret = await seed(cfgd);
    const { page } = await newPage(browser);

    await page.goto(cfgd.url);
    await page.getByRole('form', { name: 'Sign in' }).waitFor();
    await picture(page, 'sign-in.png');

    await signIn(page, cfgd.url, secret, `#/users/${USER}`);
    await page.getByRole('table', { name: 'Configs' }).getByRole('link', { name: CONFIG }).waitFor();
    await picture(page, 'configs.png');

    await page.getByRole('table', { name: 'Configs' }).getByRole('link', { name: CONFIG }).click();
    await page.getByRole('heading', { level: 1, name: `${USER}/${CONFIG}` }).waitFor();
    await page.getByRole('list', { name: 'History' }).getByRole('listitem').first().waitFor();
    await waitForText(page.getByRole('status', { name: 'Live' }), 'Live');
    await picture(page, 'config.png');

    await selectVersion(page.getByLabel('From version'), 2);
    await selectVersion(page.getByLabel('To version'), 3);
    await page.getByRole('button', { name: 'Compare' }).click();
    const diff = page.getByRole('region', { name: 'Diff' });
    await waitForText(diff, 'limits.rps');
    await diff.evaluate((element) => element.scrollIntoView({ block: 'center' }));
    await picture(page, 'diff.png');

    await typeValues(page, JSON.stringify({ port: 'eighty', host: 'checkout.internal' }, null, 2));
    await waitForText(page.getByRole('status', { name: 'Validation' }), 'values/port');
    await pictureSection(page, 'Edit', 'editor-violation.png');

    // The instances of a page freshly opened (no edit, no comparison), scrolled down to them.
    await page.reload();
    await page.getByRole('table', { name: 'Instances' }).getByRole('row').nth(1).waitFor();
    await waitForText(page.getByRole('status', { name: 'Live' }), 'Live');
    await pictureSection(page, 'Instances', 'instances.png');
  } finally {
    await browser.close();
    await cfgd.stop();
  }
}

await main();
