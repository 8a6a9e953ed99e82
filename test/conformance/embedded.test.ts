import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { EmbeddedStore } from '../../src/store/embedded/sqlite-store.js';
import { describeStoreContract } from './store-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'cfgd-conformance-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeStoreContract('embedded', {
  shared: false,
  open: async () => new EmbeddedStore({ path: dir, sync: 'full' }),
});
