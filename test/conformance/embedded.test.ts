import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { EmbeddedStore } from '../../src/store/embedded/sqlite-store.js';
import { credentialContract } from './credential-contract.js';
import { describeStoreContract, type StoreFactory } from './store-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'cfgd-conformance-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const factory: StoreFactory = {
  shared: false,
  open: async () => new EmbeddedStore({ path: dir, sync: 'full' }),
};

describeStoreContract('embedded', factory);
credentialContract('embedded', factory);
