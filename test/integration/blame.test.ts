/**
 * Blame: for each top-level key of the current values, the version, author
 * and time that last set it, over gRPC and REST, through every kind of write.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlameResponse } from '../../generated/cfgd/v1/config_service.js';
import { call, rejection, type TestClient } from '../helpers/client.js';
import { http } from '../helpers/http.js';
import { grpcRefusal, restRefusal } from '../helpers/schemas.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let client: TestClient;
beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
});
afterAll(async () => server.stop());

const key = { userId: 'blame', configName: 'app' };
const blame = (): Promise<BlameResponse> => call(client.raw.blame.bind(client.raw), key);
const summary = (res: BlameResponse) => res.keys.map((k) => [k.key, k.version]);

describe('Blame', () => {
  it('names the version, author and time that last set each key, through every kind of write', async () => {
    expect(grpcRefusal(await rejection(blame())).reason).toBe('CONFIG_NOT_FOUND');
    await client.put({ ...key, values: { a: 1, b: 1, c: 1 } }); // 1
    await client.put({ ...key, values: { a: 1, b: 2, c: 1 } }); // 2
    await call(client.raw.patch.bind(client.raw), { ...key, patch: { c: 3, d: 3 }, validateOnly: false }); // 3
    expect(summary(await blame())).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 3],
      ['d', 3],
    ]);
    // A rollback to version 2 sets c back (and removes d): c is the rollback's, a and b keep theirs.
    await call(client.raw.rollback.bind(client.raw), { ...key, toVersion: 2, validateOnly: false }); // 4
    expect(summary(await blame())).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 4],
    ]);
    const entries = (await blame()).keys;
    const history = (await client.history(key)).entries;
    for (const entry of entries) {
      const setter = history[entry.version - 1]!;
      expect(entry.author).toBe(setter.author);
      expect(entry.updateTime).toEqual(setter.createTime);
    }
    await call(client.raw.delete.bind(client.raw), { ...key, validateOnly: false }); // 5
    expect(grpcRefusal(await rejection(blame())).reason).toBe('CONFIG_DELETED');
    // Restored values were set again by the undeletion.
    await call(client.raw.undelete.bind(client.raw), { ...key, validateOnly: false }); // 6
    expect(summary(await blame())).toEqual([
      ['a', 6],
      ['b', 6],
      ['c', 6],
    ]);
    await client.put({ ...key, values: { a: 1, b: 2, c: 1, e: 'new' } }); // 7
    const rest = await http(server.cfgd.httpPort, 'GET', '/v1/users/blame/configs/app/blame');
    expect(rest.status).toBe(200);
    expect(rest.json.version).toBe('7');
    expect(rest.json.keys.map((k: { key: string; version: string }) => [k.key, k.version])).toEqual([
      ['a', '6'],
      ['b', '6'],
      ['c', '6'],
      ['e', '7'],
    ]);
    expect(restRefusal(await http(server.cfgd.httpPort, 'GET', '/v1/users/blame/configs/none/blame')).httpStatus).toBe(
      404,
    );
  });
});
