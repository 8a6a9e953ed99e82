import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangeAction } from '../../generated/cfgd/v1/config_service.js';
import { rejection, statusDetails, type TestClient } from '../helpers/client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let client: TestClient;
let n = 0;
/** A config name no other test uses. */
const fresh = (): { userId: string; configName: string } => ({ userId: 'u1', configName: `cfg-${++n}` });

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
});
afterAll(async () => server.stop());

describe('Put', () => {
  it('creates version 1 with an added change, and reports the config', async () => {
    const before = Date.now();
    const res = await client.put({ userId: '1', configName: 'test', values: { test: 1 } });
    expect(res.changed).toBe(true);
    expect(res.config).toMatchObject({
      name: 'users/1/configs/test',
      userId: '1',
      configName: 'test',
      version: 1,
      values: { test: 1 },
    });
    expect(res.config?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(res.config?.updateTime?.getTime()).toBeGreaterThanOrEqual(before - 1);
    expect(res.auditEntry).toMatchObject({
      version: 1,
      author: 'anonymous',
      changes: [{ action: ChangeAction.CHANGE_ACTION_ADDED, key: 'test', value: 1, oldValue: undefined }],
    });
  });

  it('follows the seed: replacing test with hello removes then adds', async () => {
    const res = await client.put({ userId: '1', configName: 'test', values: { hello: 'world' } });
    expect(res.config?.version).toBe(2);
    expect(res.config?.values).toEqual({ hello: 'world' });
    expect(res.auditEntry?.changes).toEqual([
      { action: ChangeAction.CHANGE_ACTION_REMOVED, key: 'test', value: 1, oldValue: undefined },
      { action: ChangeAction.CHANGE_ACTION_ADDED, key: 'hello', value: 'world', oldValue: undefined },
    ]);
  });

  it('reports updated keys with value and old_value, nested values intact', async () => {
    const key = fresh();
    await client.put({ ...key, values: { a: { deep: [1, { x: null }] }, b: true } });
    const res = await client.put({ ...key, values: { a: { deep: [1, { x: 'y' }] }, b: true } });
    expect(res.auditEntry?.changes).toEqual([
      {
        action: ChangeAction.CHANGE_ACTION_UPDATED,
        key: 'a',
        value: { deep: [1, { x: 'y' }] },
        oldValue: { deep: [1, { x: null }] },
      },
    ]);
  });

  it('creates no version for equal values and says changed=false', async () => {
    const key = fresh();
    const first = await client.put({ ...key, values: { a: 1, b: { c: 2, d: 3 } } });
    const again = await client.put({ ...key, values: { b: { d: 3, c: 2 }, a: 1.0 } });
    expect(again.changed).toBe(false);
    expect(again.config).toEqual(first.config);
    expect(again.auditEntry).toEqual(first.auditEntry);
    expect((await client.history(key)).entries).toHaveLength(1);
  });

  it('accepts empty values as a version of its own', async () => {
    const key = fresh();
    await client.put({ ...key, values: { a: 1 } });
    const res = await client.put({ ...key, values: {} });
    expect(res.config?.values).toEqual({});
    expect(res.auditEntry?.changes).toEqual([
      { action: ChangeAction.CHANGE_ACTION_REMOVED, key: 'a', value: 1, oldValue: undefined },
    ]);
  });

  it('compare-and-set: writes at the expected version, ABORTED otherwise with nothing written', async () => {
    const key = fresh();
    await client.put({ ...key, values: { a: 1 }, expectedVersion: 0 });
    await client.put({ ...key, values: { a: 2 }, expectedVersion: 1 });
    const stale = await rejection(client.put({ ...key, values: { a: 3 }, expectedVersion: 1 }));
    expect(stale.code).toBe(status.ABORTED);
    expect(stale.details).toBe('expected version 1, but it is at version 2');
    expect(statusDetails(stale).errorInfo).toEqual({
      reason: 'VERSION_MISMATCH',
      domain: 'cfgd.v1',
      metadata: { expected_version: '1', current_version: '2' },
    });
    const exists = await rejection(client.put({ ...key, values: { a: 3 }, expectedVersion: 0 }));
    expect(exists.code).toBe(status.ABORTED);
    const missing = await rejection(client.put({ ...fresh(), values: { a: 3 }, expectedVersion: 4 }));
    expect(missing.code).toBe(status.ABORTED);
    expect(missing.details).toContain('it does not exist');
    const latest = await client.get(key);
    expect(latest.config?.version).toBe(2);
    expect(latest.config?.values).toEqual({ a: 2 });
    expect((await client.history(key)).entries.map((e) => e.version)).toEqual([1, 2]);
  });
});

describe('Get', () => {
  it('returns the latest version or the values at a version', async () => {
    const key = fresh();
    for (let i = 1; i <= 5; i++) await client.put({ ...key, values: { i } });
    const latest = await client.get(key);
    expect(latest.config?.version).toBe(5);
    expect(latest.config?.values).toEqual({ i: 5 });
    expect(latest.latestVersion).toBe(5);
    const third = await client.get({ ...key, version: 3 });
    expect(third.config?.version).toBe(3);
    expect(third.config?.values).toEqual({ i: 3 });
    expect(third.latestVersion).toBe(5);
  });
});

describe('History', () => {
  it('pages through every entry in ascending order with opaque tokens', async () => {
    const key = fresh();
    for (let i = 1; i <= 25; i++) await client.put({ ...key, values: { i } });
    const versions: number[] = [];
    let pageToken = '';
    let pages = 0;
    do {
      const page = await client.history({ ...key, pageSize: 10, pageToken });
      expect(page.latestVersion).toBe(25);
      versions.push(...page.entries.map((e) => e.version));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== '');
    expect(pages).toBe(3);
    expect(versions).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
  });

  it('starts at start_version and uses the default page size', async () => {
    const key = fresh();
    for (let i = 1; i <= 5; i++) await client.put({ ...key, values: { i } });
    const page = await client.history({ ...key, startVersion: 4 });
    expect(page.entries.map((e) => e.version)).toEqual([4, 5]);
    expect(page.nextPageToken).toBe('');
    expect(page.entries[0]?.changes).toEqual([
      { action: ChangeAction.CHANGE_ACTION_UPDATED, key: 'i', value: 4, oldValue: 3 },
    ]);
    expect((await client.history({ ...key, startVersion: 9 })).entries).toEqual([]);
  });
});

describe('errors', () => {
  const invalidNames: [string, string, string][] = [
    ['', 'test', 'user_id'],
    ['1', '', 'config_name'],
    ['a/b', 'test', 'user_id'],
    ['1', 'has space', 'config_name'],
    ['1', 'x'.repeat(129), 'config_name'],
    ['1', 'ctl\u0001', 'config_name'],
  ];

  it.each(invalidNames)(
    'rejects user_id=%j config_name=%j on every RPC, naming %s',
    async (userId, configName, field) => {
      const calls = [
        client.put({ userId, configName, values: { a: 1 } }),
        client.get({ userId, configName }),
        client.history({ userId, configName }),
      ];
      for (const call of calls) {
        const error = await rejection(call);
        expect(error.code).toBe(status.INVALID_ARGUMENT);
        expect(error.details).toMatch(new RegExp(`^${field}: `));
        const details = statusDetails(error);
        expect(details.errorInfo?.domain).toBe('cfgd.v1');
        expect(details.errorInfo?.metadata).toEqual({ field });
        expect(details.badRequest?.fieldViolations.map((v) => v.field)).toEqual([field]);
      }
    },
  );

  it('rejects missing values', async () => {
    const error = await rejection(client.put({ ...fresh() }));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(statusDetails(error).errorInfo?.reason).toBe('VALUES_REQUIRED');
  });

  it('rejects values that are not JSON (NaN)', async () => {
    const error = await rejection(client.put({ ...fresh(), values: { n: Number.NaN } }));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(statusDetails(error).errorInfo?.reason).toBe('VALUES_NOT_JSON');
  });

  it('rejects values over the size limit with the size and limit', async () => {
    const error = await rejection(client.put({ ...fresh(), values: { big: 'x'.repeat(1024 * 1024) } }));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    const info = statusDetails(error).errorInfo;
    expect(info?.reason).toBe('VALUES_TOO_LARGE');
    expect(info?.metadata.limit).toBe(String(1024 * 1024));
  });

  it('rejects a message over the transport limit with RESOURCE_EXHAUSTED', async () => {
    const error = await rejection(client.put({ ...fresh(), values: { big: 'x'.repeat(5 * 1024 * 1024) } }));
    expect(error.code).toBe(status.RESOURCE_EXHAUSTED);
  });

  it('rejects values nested deeper than 32 levels', async () => {
    const nest = (levels: number): Record<string, unknown> => {
      let deep: Record<string, unknown> = { leaf: 1 };
      for (let i = 1; i < levels; i++) deep = { d: deep };
      return deep;
    };
    const error = await rejection(client.put({ ...fresh(), values: nest(33) }));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(statusDetails(error).errorInfo?.reason).toBe('VALUES_TOO_DEEP');
    // Past the protobuf decoder's recursion limit the request cannot even be decoded.
    const undecodable = await rejection(client.put({ ...fresh(), values: nest(200) }));
    expect(undecodable.code).toBe(status.INVALID_ARGUMENT);
    expect(statusDetails(undecodable).errorInfo?.reason).toBe('REQUEST_UNDECODABLE');
    expect((await client.put({ ...fresh(), values: nest(32) })).config?.version).toBe(1);
  });

  it('rejects negative versions and negative expected versions', async () => {
    const key = fresh();
    await client.put({ ...key, values: { a: 1 } });
    for (const call of [
      client.get({ ...key, version: -1 }),
      client.put({ ...key, values: { a: 2 }, expectedVersion: -1 }),
      client.history({ ...key, startVersion: -1 }),
      client.history({ ...key, pageSize: -1 }),
    ]) {
      const error = await rejection(call);
      expect(error.code).toBe(status.INVALID_ARGUMENT);
    }
    expect((await client.get(key)).config?.version).toBe(1);
  });

  it('answers NOT_FOUND for unknown configs and versions', async () => {
    const key = fresh();
    const unknown = await rejection(client.get(key));
    expect(unknown.code).toBe(status.NOT_FOUND);
    expect(unknown.details).toBe(`users/${key.userId}/configs/${key.configName} does not exist`);
    expect(statusDetails(unknown).errorInfo?.reason).toBe('CONFIG_NOT_FOUND');
    expect((await rejection(client.history(key))).code).toBe(status.NOT_FOUND);
    await client.put({ ...key, values: { a: 1 } });
    const version = await rejection(client.get({ ...key, version: 2 }));
    expect(version.code).toBe(status.NOT_FOUND);
    expect(statusDetails(version).errorInfo).toMatchObject({
      reason: 'VERSION_NOT_FOUND',
      metadata: { version: '2', latest_version: '1' },
    });
  });

  it('rejects page tokens that History did not issue, or issued for another config', async () => {
    const a = fresh();
    const b = fresh();
    for (let i = 1; i <= 3; i++) {
      await client.put({ ...a, values: { i } });
      await client.put({ ...b, values: { i } });
    }
    const page = await client.history({ ...a, pageSize: 1 });
    expect(page.nextPageToken).not.toBe('');
    for (const pageToken of ['garbage', Buffer.from('{"v":-1}').toString('base64url'), page.nextPageToken]) {
      const error = await rejection(client.history({ ...b, pageToken }));
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(statusDetails(error).badRequest?.fieldViolations[0]?.field).toBe('page_token');
    }
  });
});

describe('unexpected failures', () => {
  it('become INTERNAL with a generic message, never the underlying error text', async () => {
    const own = await startTestServer();
    try {
      const c = own.client();
      await own.cfgd.store.close(); // The database is gone under the running server.
      const error = await rejection(c.put({ userId: 'u', configName: 'c', values: { a: 1 } }));
      expect(error.code).toBe(status.INTERNAL);
      expect(error.details).toBe('internal error');
      expect(statusDetails(error).errorInfo?.reason).toBe('INTERNAL');
    } finally {
      await own.stop();
    }
  });
});
