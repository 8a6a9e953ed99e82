import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallError, grpcDriver, restDriver, type Driver, type Key } from '../helpers/drivers.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
const drivers: Record<string, Driver> = {};
let grpc: ReturnType<typeof grpcDriver>;

beforeAll(async () => {
  server = await startTestServer();
  grpc = grpcDriver(server.cfgd.grpcPort);
  drivers.gRPC = grpc;
  drivers.REST = restDriver(server.cfgd.httpPort);
});
afterAll(async () => {
  grpc.close();
  await server.stop();
});

async function failure(call: Promise<unknown>): Promise<CallError> {
  try {
    await call;
  } catch (error: unknown) {
    if (error instanceof CallError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

// The same bodies run over both transports; each transport gets its own configs.
describe.each(['gRPC', 'REST'])('scenarios over %s', (transport) => {
  const driver = (): Driver => drivers[transport]!;
  const key = (name: string): Key => ({ userId: `scenario-${transport}`, configName: name });

  it('put creates versions with their changes; equal values change nothing', async () => {
    const k = key('put');
    expect(await driver().put(k, { test: 1 })).toEqual({
      version: 1,
      changed: true,
      changes: [{ action: 'added', key: 'test', value: 1 }],
    });
    expect(await driver().put(k, { hello: 'world', test: 2 })).toEqual({
      version: 2,
      changed: true,
      changes: [
        { action: 'updated', key: 'test', value: 2, oldValue: 1 },
        { action: 'added', key: 'hello', value: 'world' },
      ],
    });
    expect(await driver().put(k, { test: 2, hello: 'world' })).toMatchObject({ version: 2, changed: false });
    expect(await driver().put(k, { hello: 'world' })).toMatchObject({
      version: 3,
      changes: [{ action: 'removed', key: 'test', value: 2 }],
    });
  });

  it('get returns the latest or any past version', async () => {
    const k = key('get');
    for (let i = 1; i <= 4; i++) await driver().put(k, { i, nested: { list: [i, null] } });
    expect(await driver().get(k)).toEqual({
      version: 4,
      values: { i: 4, nested: { list: [4, null] } },
      latestVersion: 4,
    });
    expect(await driver().get(k, 2)).toEqual({
      version: 2,
      values: { i: 2, nested: { list: [2, null] } },
      latestVersion: 4,
    });
    const missing = await failure(driver().get(k, 5));
    expect([missing.status, missing.reason]).toEqual(['NOT_FOUND', 'VERSION_NOT_FOUND']);
    const unknown = await failure(driver().get(key('nope')));
    expect([unknown.status, unknown.reason]).toEqual(['NOT_FOUND', 'CONFIG_NOT_FOUND']);
  });

  it('history pages through every entry once, in order', async () => {
    const k = key('history');
    for (let i = 1; i <= 12; i++) await driver().put(k, { i });
    const versions: number[] = [];
    let pageToken = '';
    do {
      const page = await driver().history(k, { pageSize: 5, pageToken });
      versions.push(...page.versions);
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    expect(versions).toEqual(range(1, 12));
    const tail = await driver().history(k, { startVersion: 11 });
    expect(tail.versions).toEqual([11, 12]);
    expect(tail.changes[0]).toEqual([{ action: 'updated', key: 'i', value: 11, oldValue: 10 }]);
  });

  it('compare-and-set conflicts are ABORTED and write nothing', async () => {
    const k = key('cas');
    await driver().put(k, { a: 1 }, 0);
    await driver().put(k, { a: 2 }, 1);
    const conflict = await failure(driver().put(k, { a: 3 }, 1));
    expect([conflict.status, conflict.reason]).toEqual(['ABORTED', 'VERSION_MISMATCH']);
    expect(conflict.message).toBe('expected version 1, but it is at version 2');
    const exists = await failure(driver().put(k, { a: 3 }, 0));
    expect(exists.status).toBe('ABORTED');
    expect(await driver().get(k)).toMatchObject({ version: 2, values: { a: 2 } });
    expect((await driver().history(k, {})).versions).toEqual([1, 2]);
  });

  it('watch resumes from a version with no gap and no duplicate while writes race it', async () => {
    const k = key('watch');
    for (let i = 1; i <= 30; i++) await driver().put(k, { i });
    let writes = 30;
    const versions = await driver().watch(k, 10, 50, async () => {
      // Writes race the switch from history to live.
      const writer = (async () => {
        while (writes < 60) await driver().put(k, { i: ++writes });
      })();
      await writer;
    });
    expect(versions).toEqual(range(11, 60));
    const current = await driver().watch(k, undefined, 1);
    expect(current).toEqual([60]);
  });

  it('a dry run (validate_only) answers what the Put would do and writes nothing', async () => {
    const k = key('dry');
    const dry = { validateOnly: true };
    // A config that does not exist yet: it would be version 1, and nothing is created.
    expect(await driver().put(k, { a: 1 }, undefined, dry)).toEqual({
      version: 1,
      changed: true,
      changes: [{ action: 'added', key: 'a', value: 1 }],
    });
    expect((await failure(driver().get(k))).status).toBe('NOT_FOUND');
    await driver().put(k, { a: 1, b: 2 });
    const history = await driver().history(k, {});
    expect(await driver().put(k, { a: 9 }, undefined, dry)).toEqual({
      version: 2,
      changed: true,
      changes: [
        { action: 'updated', key: 'a', value: 9, oldValue: 1 },
        { action: 'removed', key: 'b', value: 2 },
      ],
    });
    // Unchanged values: no version, as a real Put.
    expect(await driver().put(k, { b: 2, a: 1 }, undefined, dry)).toMatchObject({ version: 1, changed: false });
    // Compare-and-set and validation run as for a real Put.
    expect(await failure(driver().put(k, { a: 3 }, 7, dry))).toMatchObject({
      status: 'ABORTED',
      reason: 'VERSION_MISMATCH',
    });
    expect(await driver().put(k, { a: 3 }, 1, dry)).toMatchObject({ version: 2, changed: true });
    expect(await failure(driver().put({ ...k, configName: 'bad name' }, { a: 1 }, undefined, dry))).toMatchObject({
      status: 'INVALID_ARGUMENT',
    });
    // Nothing was written by any of them.
    expect(await driver().get(k)).toMatchObject({ version: 1, values: { a: 1, b: 2 }, latestVersion: 1 });
    expect(await driver().history(k, {})).toEqual(history);
  });
});
