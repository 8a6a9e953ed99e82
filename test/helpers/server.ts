import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { DEFAULTS, type CfgdSettings } from '../../src/settings/settings.js';
import { startCfgd, type CfgdOverrides, type RunningCfgd } from '../../src/main.js';
import { TestClient } from './client.js';

export interface TestServer {
  readonly cfgd: RunningCfgd;
  readonly dataDir: string;
  client(): TestClient;
  stop(): Promise<void>;
}

/**
 * Starts cfgd in this process on 127.0.0.1:0 with a fresh embedded store and
 * authentication off (unless `overrides.auth` turns it on),
 * logging to `log` (silent unless CFGD_TEST_LOG_LEVEL says otherwise).
 */
export async function startTestServer(
  overrides: Partial<CfgdSettings> = {},
  sync: 'full' | 'normal' = 'normal',
  log: Logger = pino({ level: process.env.CFGD_TEST_LOG_LEVEL ?? 'silent' }),
  parts: CfgdOverrides = {},
): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cfgd-test-'));
  const settings: CfgdSettings = {
    ...DEFAULTS,
    grpcAddress: '127.0.0.1:0',
    httpAddress: '127.0.0.1:0',
    store: { kind: 'embedded', path: dataDir, sync },
    shutdownGraceMs: 2000,
    // Most suites test configs, not credentials: they run with auth off, as `--auth off` would.
    // The auth suites turn it on.
    auth: { ...DEFAULTS.auth, mode: 'off' },
    // No web console unless a suite hands one over (whether dist/console is built is no test's business).
    consoleDir: undefined,
    ...overrides,
  };
  const cfgd = await startCfgd(settings, log, parts);
  const clients: TestClient[] = [];
  return {
    cfgd,
    dataDir,
    client: () => {
      const client = new TestClient(cfgd.grpcPort);
      clients.push(client);
      return client;
    },
    stop: async () => {
      for (const client of clients) client.close();
      await cfgd.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A console build of two files in a directory of its own, for suites that reach /ui/ (not a browser's). */
export function consoleFixture(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cfgd-console-'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>cfgd</title><script src="app.js"></script>');
  writeFileSync(join(dir, 'app.js'), 'void 0;');
  return dir;
}
