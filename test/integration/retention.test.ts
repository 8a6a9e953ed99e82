/**
 * Retention on the embedded store: `--max-versions` and a config's own limit
 * (SetRetention) keep the newest versions and prune the rest in the
 * background; pruned versions answer VERSION_PRUNED; a watch asking for
 * them resynchronises from the current state; the store stays bounded.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WatchEventType, type SetRetentionResponse } from '../../generated/cfgd/v1/config_service.js';
import { collect, rejection, type TestClient } from '../helpers/client.js';
import { http, sendJson } from '../helpers/http.js';
import { grpcRefusal, restRefusal } from '../helpers/schemas.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { eventually } from '../helpers/wait.js';

let server: TestServer;
let client: TestClient;
beforeAll(async () => {
  server = await startTestServer({ maxVersions: 100 });
  client = server.client();
});
afterAll(async () => server.stop());

function setRetention(request: {
  userId: string;
  configName: string;
  maxVersions?: number;
}): Promise<SetRetentionResponse> {
  return new Promise((resolve, reject) =>
    client.raw.setRetention(request, (error: ServiceError | null, res: SetRetentionResponse) =>
      error ? reject(error) : resolve(res),
    ),
  );
}

/** The SQLite file and its write-ahead log, in bytes. */
function storeBytes(): number {
  const size = (name: string) => {
    try {
      return statSync(join(server.dataDir, name)).size;
    } catch {
      return 0;
    }
  };
  return size('cfgd.db') + size('cfgd.db-wal');
}

describe('retention', () => {
  it('a config written 10,000 times with --max-versions 100 keeps its newest 100 versions, in bounded space', async () => {
    const key = { userId: 'retention', configName: 'busy' };
    const filler = 'x'.repeat(200);
    let bytesAt2000 = 0;
    for (let i = 1; i <= 10_000; i++) {
      await client.put({ ...key, values: { i, filler } });
      if (i === 2000) bytesAt2000 = storeBytes();
    }
    await eventually(async () => {
      const history = await client.history({ ...key, pageSize: 1000 });
      expect(history.entries.map((e) => e.version)).toEqual(Array.from({ length: 100 }, (_, i) => 9901 + i));
    });
    // Pruned pages are reused: 8,000 more versions take no more room than the first 2,000 did.
    console.log(`store bytes: ${bytesAt2000} at 2,000 versions, ${storeBytes()} at 10,000`);
    expect(storeBytes()).toBeLessThan(bytesAt2000 * 1.5);
    // Pruned versions say so, naming the oldest kept one; History without a start starts there.
    const pruned = grpcRefusal(await rejection(client.get({ ...key, version: 50 })));
    expect(pruned).toMatchObject({ status: 'NOT_FOUND', reason: 'VERSION_PRUNED' });
    expect(pruned.metadata.first_kept_version).toBe('9901');
    expect(grpcRefusal(await rejection(client.history({ ...key, startVersion: 9900 }))).reason).toBe('VERSION_PRUNED');
    expect((await client.history({ ...key, startVersion: 9901, pageSize: 1 })).entries[0]?.version).toBe(9901);
    expect((await client.get({ ...key, version: 9901 })).config?.values).toEqual({ i: 9901, filler });
    // The kept history still verifies, from the oldest kept version.
    const verified = await new Promise<{ intact: boolean; firstCheckedVersion: number }>((resolve, reject) =>
      client.raw.verifyHistory(key, (error, res) => (error ? reject(error) : resolve(res))),
    );
    expect(verified).toMatchObject({ intact: true, firstCheckedVersion: 9901 });
  }, 180_000);

  it("a config's own limit (SetRetention) overrides the server's, and clearing it restores the server's", async () => {
    const key = { userId: 'retention', configName: 'own' };
    expect(grpcRefusal(await rejection(setRetention({ ...key, maxVersions: 5 }))).reason).toBe('CONFIG_NOT_FOUND');
    for (let i = 1; i <= 20; i++) await client.put({ ...key, values: { i } });
    const set = await setRetention({ ...key, maxVersions: 5 });
    expect(set).toMatchObject({ maxVersions: 5, effectiveMaxVersions: 5, latestVersion: 20 });
    await eventually(async () => expect((await client.history(key)).entries[0]?.version).toBe(16));
    await client.put({ ...key, values: { i: 21 } });
    await eventually(async () =>
      expect((await client.history(key)).entries.map((e) => e.version)).toEqual([17, 18, 19, 20, 21]),
    );
    // Cleared: the server's 100 again (nothing comes back, nothing more is pruned).
    const cleared = await setRetention(key);
    expect(cleared).toMatchObject({ maxVersions: undefined, effectiveMaxVersions: 100, firstKeptVersion: 17 });
    await client.put({ ...key, values: { i: 22 } });
    expect((await client.history(key)).entries).toHaveLength(6);
    // Over REST; a limit below 0 is refused.
    const rest = await sendJson(server.cfgd.httpPort, 'PUT', '/v1/users/retention/configs/own/retention', {
      max_versions: '0',
    });
    expect(rest.json).toMatchObject({ max_versions: '0', effective_max_versions: '0', first_kept_version: '17' });
    const bad = await sendJson(server.cfgd.httpPort, 'PUT', '/v1/users/retention/configs/own/retention', {
      max_versions: '-1',
    });
    expect(restRefusal(bad)).toMatchObject({ httpStatus: 400, reason: 'MAX_VERSIONS_INVALID' });
    expect(
      (await http(server.cfgd.httpPort, 'GET', '/v1/users/retention/configs/own/history')).json.entries[0].version,
    ).toBe('17');
  });

  it('a watch from a pruned start_version resynchronises from the current state, then goes on live', async () => {
    const key = { userId: 'retention', configName: 'watched' };
    for (let i = 1; i <= 10; i++) await client.put({ ...key, values: { i } });
    await setRetention({ ...key, maxVersions: 3 });
    await eventually(async () => expect((await client.history(key)).entries[0]?.version).toBe(8));
    const stream = client.watch({ ...key, startVersion: 2 });
    const seen = collect(stream, (events) => events.filter((e) => e.config !== undefined).length >= 2);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await client.put({ ...key, values: { i: 11 } });
    const { events, error } = await seen;
    stream.cancel();
    expect(error).toBeUndefined();
    const delivered = events.filter((e) => e.config !== undefined);
    expect(delivered.map((e) => [e.type, e.config?.version])).toEqual([
      [WatchEventType.WATCH_EVENT_TYPE_RESYNC, 10],
      [WatchEventType.WATCH_EVENT_TYPE_VERSION, 11],
    ]);
    expect(delivered[0]?.config?.values).toEqual({ i: 10 });
  });
});
