/**
 * The config lifecycle on two server processes sharing one RethinkDB: racing
 * rollbacks, deletions, undeletions and patches through both nodes leave one
 * contiguous history whose every entry replays onto the one before it.
 */
import { randomUUID } from 'node:crypto';
import type { ServiceError } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import type { AuditEntry, Config } from '../../generated/cfgd/v1/config_service.js';
import { Operation } from '../../generated/cfgd/v1/config_service.js';
import { apply, jsonEqual, type Change, type JsonObject } from '../../src/domain/index.js';
import { call, statusDetails, TestClient } from '../helpers/client.js';
import { spawnCfgd, type CfgdProcess } from '../helpers/process.js';
import { freshDatabase, rethinkStoreUrl } from '../helpers/rethinkdb.js';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

type Key = { userId: string; configName: string };

const ACTIONS: Record<number, Change['action']> = { 1: 'added', 2: 'updated', 3: 'removed' };

/** Every audit entry, and the values of each version (a tombstone's: `{}`). */
async function replay(client: TestClient, key: Key): Promise<{ entries: AuditEntry[] }> {
  const entries: AuditEntry[] = [];
  let pageToken = '';
  do {
    const page = await client.history({ ...key, pageSize: 1000, pageToken });
    entries.push(...page.entries);
    pageToken = page.nextPageToken;
  } while (pageToken !== '');
  expect(entries.map((e) => e.version)).toEqual(entries.map((_, i) => i + 1));
  let previous: JsonObject = {};
  for (const entry of entries) {
    let values: JsonObject = {};
    if (entry.operation !== Operation.OPERATION_DELETE) {
      const config: Config | undefined = (await client.get({ ...key, version: entry.version })).config;
      values = config!.values as JsonObject;
    }
    const changes = entry.changes.map((c) => ({
      action: ACTIONS[c.action]!,
      key: c.key,
      value: c.value,
      oldValue: c.oldValue,
    }));
    expect(jsonEqual(apply(changes, previous), values), `version ${entry.version}`).toBe(true);
    previous = values;
  }
  return { entries };
}

describe('the lifecycle across RethinkDB nodes', () => {
  it('racing rollbacks, deletions, undeletions and patches through two nodes leave one replayable history', async () => {
    const db = freshDatabase('lifecyclenodes');
    const nodes: CfgdProcess[] = await Promise.all([1, 2].map(() => spawnCfgd(['--store', rethinkStoreUrl(db)])));
    cleanups.push(async () => {
      for (const node of nodes) node.child.kill('SIGTERM');
      await Promise.all(nodes.map((node) => node.exited));
    });
    const clients = nodes.map((node) => new TestClient(node.grpcPort));
    const key = { userId: 'lifecycle-nodes', configName: 'app' };
    await clients[0]!.put({ ...key, values: { n: 0, keep: true } });
    await clients[1]!.put({ ...key, values: { n: 1 } });

    const operations = [
      (c: TestClient) => call(c.raw.rollback.bind(c.raw), { ...key, toVersion: 1, validateOnly: false }),
      (c: TestClient) => call(c.raw.delete.bind(c.raw), { ...key, validateOnly: false }),
      (c: TestClient) => call(c.raw.undelete.bind(c.raw), { ...key, validateOnly: false }),
      (c: TestClient, i: number) =>
        call(c.raw.patch.bind(c.raw), { ...key, patch: { n: i + 10 }, validateOnly: false }),
    ];
    const outcomes = await Promise.allSettled(
      Array.from({ length: 48 }, (_, i) => operations[i % operations.length]!(clients[i % 2]!, i)),
    );
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') {
        const reason = statusDetails(outcome.reason as ServiceError).errorInfo?.reason;
        // A patch or deletion of a deleted config, an undeletion of a live one.
        expect(['CONFIG_DELETED', 'CONFIG_NOT_DELETED']).toContain(reason);
      }
    }
    const changed = outcomes.filter(
      (o) => o.status === 'fulfilled' && (o.value as { changed: boolean }).changed,
    ).length;
    const { entries } = await replay(clients[0]!, key);
    expect(entries).toHaveLength(2 + changed);
    expect(new Set(entries.map((e) => e.operation)).size).toBeGreaterThan(2);
    // Both nodes read the same history.
    expect((await replay(clients[1]!, key)).entries).toEqual(entries);
    for (const client of clients) client.close();
  }, 120_000);

  it('the same request id retried through both nodes at once creates one version, and every call answers it', async () => {
    const db = freshDatabase('requestnodes');
    const nodes: CfgdProcess[] = await Promise.all([1, 2].map(() => spawnCfgd(['--store', rethinkStoreUrl(db)])));
    cleanups.push(async () => {
      for (const node of nodes) node.child.kill('SIGTERM');
      await Promise.all(nodes.map((node) => node.exited));
    });
    const clients = nodes.map((node) => new TestClient(node.grpcPort));
    const key = { userId: 'request-nodes', configName: 'app' };
    await clients[0]!.put({ ...key, values: { n: 0 } });
    for (let round = 1; round <= 5; round++) {
      const requestId = randomUUID();
      const operations = [
        (c: TestClient) => c.put({ ...key, values: { n: round }, requestId }),
        (c: TestClient) => call(c.raw.rollback.bind(c.raw), { ...key, toVersion: 1, validateOnly: false, requestId }),
        (c: TestClient) => call(c.raw.delete.bind(c.raw), { ...key, validateOnly: false, requestId }),
      ];
      // Each round one kind of write, 8 copies of one request through both nodes at once.
      const operation = operations[round % operations.length]!;
      const before = (await clients[0]!.history(key)).latestVersion;
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => operation(clients[i % 2]!)));
      const after = (await clients[1]!.history(key)).latestVersion;
      expect(after - before, `round ${round}`).toBeLessThanOrEqual(1);
      const versions = new Set(answers.map((a) => (a as { auditEntry?: { version: number } }).auditEntry?.version));
      expect([...versions], `round ${round}`).toEqual([after]);
      // Undelete between rounds, so that each round has something to do.
      if ((await clients[0]!.history(key)).entries.at(-1)?.operation === Operation.OPERATION_DELETE) {
        await call(clients[0]!.raw.undelete.bind(clients[0]!.raw), { ...key, validateOnly: false });
      }
    }
    await replay(clients[0]!, key);
    for (const client of clients) client.close();
  }, 120_000);
});
