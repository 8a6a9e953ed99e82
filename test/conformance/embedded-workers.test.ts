/**
 * The storage contract on the embedded store as the worker processes of
 * `--workers N` use it: each opened store is a `WorkerStore` (its own
 * connection to the database file) writing through one `EmbeddedStore` (the
 * writer) over a link that copies messages like the IPC channel between
 * cluster processes (structured clone, in order, delivered on a later turn).
 * Stores opened here are separate nodes of one database, so the contract's
 * multi-node tests run too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planWrite } from '../../src/domain/index.js';
import { EmbeddedStore } from '../../src/store/embedded/sqlite-store.js';
import { WorkerStore } from '../../src/store/embedded/worker-store.js';
import { WriterHost } from '../../src/store/embedded/writer-host.js';
import type { WriterLink, WriterMessage } from '../../src/store/embedded/writer-link.js';
import { credentialContract } from './credential-contract.js';
import { instanceContract } from './instance-contract.js';
import { lifecycleContract } from './lifecycle-contract.js';
import { retentionContract } from './retention-contract.js';
import { schemaContract } from './schema-contract.js';
import { describeStoreContract, type StoreFactory } from './store-contract.js';

interface End extends WriterLink {
  /** Closes the channel: both ends' `onClose` listeners run. */
  close(): void;
}

/** Two ends of an in-process channel with the delivery rules of Node's IPC. */
function channel(): [End, End] {
  const listeners: [Set<(message: unknown) => void>, Set<(message: unknown) => void>] = [new Set(), new Set()];
  const closers = new Set<() => void>();
  let open = true;
  const end = (self: 0 | 1): End => ({
    send(message: WriterMessage) {
      if (!open) throw new Error('channel closed');
      const copy = structuredClone(message);
      setImmediate(() => {
        if (open) for (const listener of [...listeners[self === 0 ? 1 : 0]]) listener(copy);
      });
    },
    onMessage(listener) {
      listeners[self].add(listener);
      return () => listeners[self].delete(listener);
    },
    onClose(listener) {
      closers.add(listener);
      return () => closers.delete(listener);
    },
    close() {
      if (!open) return;
      open = false;
      for (const closer of [...closers]) closer();
    },
  });
  return [end(0), end(1)];
}

const dir = mkdtempSync(join(tmpdir(), 'cfgd-conformance-workers-'));
const writer = new EmbeddedStore({ path: dir, sync: 'full' });
const host = await WriterHost.start(writer);
const ends: End[] = [];
afterAll(async () => {
  for (const end of ends) end.close();
  host.close();
  await writer.close();
  rmSync(dir, { recursive: true, force: true });
});

const factory: StoreFactory = {
  shared: true,
  open: async () => {
    const [workerEnd, writerEnd] = channel();
    ends.push(workerEnd);
    host.attach(writerEnd);
    return new WorkerStore({ path: dir, sync: 'full' }, workerEnd);
  },
};

describeStoreContract('embedded (worker processes)', factory);
schemaContract('embedded (worker processes)', factory);
lifecycleContract('embedded (worker processes)', factory);
retentionContract('embedded (worker processes)', factory);
credentialContract('embedded (worker processes)', factory);
instanceContract('embedded (worker processes)', factory);

describe('embedded worker store', () => {
  it('answers a write whose writer is gone with WRITE_OUTCOME_UNKNOWN, naming the version it would have made', async () => {
    const [workerEnd, writerEnd] = channel();
    const store = new WorkerStore({ path: dir, sync: 'full' }, workerEnd);
    // A writer end that never answers: the writer took the write, then its process died.
    writerEnd.onMessage(() => setImmediate(() => workerEnd.close()));
    const key = { userId: 'worker', configName: `gone-${Date.now()}` };
    const error = await store
      .write(key, (current) => planWrite(key, current, { values: { a: 1 }, author: 't', now: new Date() }))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toMatchObject({ kind: 'unavailable', reason: 'WRITE_OUTCOME_UNKNOWN', metadata: { version: '1' } });
    await store.close();
  });

  it('plans again when another node moved the head, so concurrent writes through two workers all land', async () => {
    const [a, b] = [await factory.open(), await factory.open()];
    const key = { userId: 'worker', configName: `race-${Date.now()}` };
    const put = (store: typeof a, n: number) =>
      store.write(key, (current) => planWrite(key, current, { values: { n }, author: 't', now: new Date() }));
    const outcomes = await Promise.all(Array.from({ length: 40 }, (_, i) => put(i % 2 === 0 ? a : b, i)));
    const versions = outcomes.map((o) => (o.kind === 'create' ? o.next.version : -1)).sort((x, y) => x - y);
    expect(versions).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect((await a.auditEntries(key, 1, 100)).map((e) => e.version)).toEqual(versions);
    await Promise.all([a.close(), b.close()]);
  });
});
