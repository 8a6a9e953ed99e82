/**
 * The layer rules of `npm run lint` (.dependency-cruiser.cjs) hold for the
 * sources, and catch a deliberate violation of each kind. The check runs on a
 * copy of src/ and generated/, so the violations never touch the tree.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const copy = mkdtempSync(join(tmpdir(), 'cfgd-layers-'));
afterAll(() => rmSync(copy, { recursive: true, force: true }));
for (const part of ['src', 'generated', 'tsconfig.json', '.dependency-cruiser.cjs'])
  cpSync(join(ROOT, part), join(copy, part), { recursive: true });

/** Runs dependency-cruiser with the project's rules on the copy; its exit status and output. */
function cruise(): { status: number | null; output: string } {
  const result = spawnSync(
    process.execPath,
    [
      join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs'),
      'src',
      'generated',
      '--config',
      '.dependency-cruiser.cjs',
    ],
    { cwd: copy, encoding: 'utf8' },
  );
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('the layer rules', () => {
  it('hold for the sources as they are', () => {
    const { status, output } = cruise();
    expect(output).toMatch(/no dependency violations found/);
    expect(status).toBe(0);
  }, 60_000);

  it('fail on a domain, app, backend, transport, schema, render, settings, cluster or metrics import across the layers', () => {
    const violations: [string, string, string][] = [
      ['src/domain/leak.ts', "export type { ConfigStore } from '../store/store.js';", 'domain-imports-only-its-layers'],
      [
        'src/app/leak.ts',
        "export { startGrpcServer } from '../transport/grpc/server.js';",
        'app-imports-only-its-layers',
      ],
      [
        'src/store/rethinkdb/leak.ts',
        "export { EmbeddedStore } from '../embedded/sqlite-store.js';",
        'rethinkdb-imports-only-its-layers',
      ],
      [
        'src/transport/leak.ts',
        "export { RethinkDbStore } from '../store/rethinkdb/rethinkdb-store.js';",
        'transport-imports-only-its-layers',
      ],
      [
        'src/schema/leak.ts',
        "export type { ConfigApp } from '../app/config-app.js';",
        'schema-imports-only-its-layers',
      ],
      [
        'src/render/leak.ts',
        "export type { ConfigApp } from '../app/config-app.js';",
        'render-imports-only-its-layers',
      ],
      [
        'src/settings/leak.ts',
        "export type { RethinkDbOptions } from '../store/rethinkdb/connection.js';",
        'settings-imports-only-its-layers',
      ],
      [
        'src/cluster/leak.ts',
        "export { startGrpcServer } from '../transport/grpc/server.js';",
        'cluster-imports-only-its-layers',
      ],
      [
        'src/metrics/leak.ts',
        "export { EmbeddedStore } from '../store/embedded/sqlite-store.js';",
        'metrics-imports-only-its-layers',
      ],
      ['src/client/leak.ts', "export type { ConfigKey } from '../domain/index.js';", 'client-imports-only-its-layers'],
      ['src/cli/leak.ts', "export { startCfgd } from '../main.js';", 'cli-imports-only-its-layers'],
      [
        'src/transport/leak-metrics.ts',
        "export { CfgdMetrics } from '../metrics/metrics.js';",
        'transport-imports-only-its-layers',
      ],
    ];
    for (const [file, source] of violations) writeFileSync(join(copy, file), `${source}\n`);
    const { status, output } = cruise();
    expect(status).not.toBe(0);
    for (const [file, , rule] of violations) expect(output).toContain(`${rule}: ${file}`);
  }, 60_000);
});
