/**
 * Request ids (AIP-155): a retry of a write with the same request_id (REST:
 * Idempotency-Key) answers what the first call did instead of writing again,
 * on every mutating RPC and route; the same id with another request is
 * refused; ids are per config and must be UUIDs.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, rejection, type TestClient } from '../helpers/client.js';
import { http, sendJson } from '../helpers/http.js';
import { grpcRefusal, restRefusal, setSchema } from '../helpers/schemas.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let client: TestClient;
let port: number;
let n = 0;
const fresh = () => ({ userId: 'idem', configName: `c${++n}` });
const path = (key: { userId: string; configName: string }) => `/v1/users/${key.userId}/configs/${key.configName}`;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
  port = server.cfgd.httpPort;
});
afterAll(async () => server.stop());

async function latestVersion(key: { userId: string; configName: string }): Promise<number> {
  return (await client.history({ ...key, pageSize: 1000 })).latestVersion;
}

describe('request ids over gRPC', () => {
  it('a retried Put answers the first call, also after later writes, and writes nothing', async () => {
    const key = fresh();
    const requestId = randomUUID();
    const first = await client.put({ ...key, values: { a: 1 }, requestId });
    expect(first).toMatchObject({ changed: true, config: { version: 1 } });
    const again = await client.put({ ...key, values: { a: 1 }, requestId });
    expect(again).toEqual(first);
    await client.put({ ...key, values: { a: 2 } });
    // Later versions exist: the retry still answers version 1, and creates nothing.
    const late = await client.put({ ...key, values: { a: 1 }, requestId: requestId.toUpperCase() });
    expect(late).toMatchObject({ changed: true, config: { version: 1, values: { a: 1 } } });
    expect(await latestVersion(key)).toBe(2);
  });

  it('an unchanged Put is remembered as unchanged', async () => {
    const key = fresh();
    await client.put({ ...key, values: { a: 1 } });
    const requestId = randomUUID();
    expect(await client.put({ ...key, values: { a: 1 }, requestId })).toMatchObject({ changed: false });
    await client.put({ ...key, values: { a: 2 } });
    const retry = await client.put({ ...key, values: { a: 1 }, requestId });
    expect(retry).toMatchObject({ changed: false, config: { version: 1 } });
    expect(await latestVersion(key)).toBe(2);
  });

  it('the same id with another request is INVALID_ARGUMENT; a malformed id too; nothing is written', async () => {
    const key = fresh();
    const requestId = randomUUID();
    await client.put({ ...key, values: { a: 1 }, requestId });
    const reused = grpcRefusal(await rejection(client.put({ ...key, values: { a: 2 }, requestId })));
    expect(reused).toMatchObject({ status: 'INVALID_ARGUMENT', reason: 'REQUEST_ID_REUSED' });
    const otherOperation = grpcRefusal(
      await rejection(call(client.raw.delete.bind(client.raw), { ...key, validateOnly: false, requestId })),
    );
    expect(otherOperation.reason).toBe('REQUEST_ID_REUSED');
    const malformed = grpcRefusal(await rejection(client.put({ ...key, values: { a: 3 }, requestId: 'retry-1' })));
    expect(malformed).toMatchObject({ status: 'INVALID_ARGUMENT', reason: 'REQUEST_ID_INVALID' });
    expect(await latestVersion(key)).toBe(1);
  });

  it('ids are per config: the same id on another config is a new request', async () => {
    const [a, b] = [fresh(), fresh()];
    const requestId = randomUUID();
    await client.put({ ...a, values: { x: 1 }, requestId });
    expect(await client.put({ ...b, values: { y: 1 }, requestId })).toMatchObject({ changed: true });
  });

  it('Patch, Rollback, Delete, Undelete and SetSchema answer their retries without writing again', async () => {
    const key = fresh();
    await client.put({ ...key, values: { n: 0 } });
    const ids = {
      patch: randomUUID(),
      rollback: randomUUID(),
      del: randomUUID(),
      undel: randomUUID(),
      schema: randomUUID(),
    };
    const patch = () =>
      call(client.raw.patch.bind(client.raw), { ...key, patch: { n: 1 }, validateOnly: false, requestId: ids.patch });
    const rollback = () =>
      call(client.raw.rollback.bind(client.raw), {
        ...key,
        toVersion: 1,
        validateOnly: false,
        requestId: ids.rollback,
      });
    const del = () => call(client.raw.delete.bind(client.raw), { ...key, validateOnly: false, requestId: ids.del });
    const undel = () =>
      call(client.raw.undelete.bind(client.raw), { ...key, validateOnly: false, requestId: ids.undel });
    const schema = () => setSchema(client, { ...key, schema: { type: 'object' }, requestId: ids.schema });
    for (const [operation, expected] of [
      [patch, 2],
      [rollback, 3],
      [del, 4],
      [undel, 5],
      [schema, 6],
    ] as const) {
      const first = (await operation()) as { changed: boolean; auditEntry?: { version: number } };
      expect(first.auditEntry?.version).toBe(expected);
      // Retried now, and again after everything else: the first answer, nothing written.
      expect(await operation()).toEqual(first);
    }
    for (const operation of [patch, rollback, del, undel]) {
      const retry = (await operation()) as { changed: boolean };
      expect(retry.changed).toBe(true);
    }
    expect(await latestVersion(key)).toBe(6);
  });

  it('a dry run ignores the id: the id is still free afterwards', async () => {
    const key = fresh();
    const requestId = randomUUID();
    expect(await client.put({ ...key, values: { a: 1 }, requestId, validateOnly: true })).toMatchObject({
      changed: true,
    });
    expect(await latestVersion(key).catch(() => 0)).toBe(0);
    expect(await client.put({ ...key, values: { a: 1 }, requestId })).toMatchObject({ config: { version: 1 } });
  });
});

describe('Idempotency-Key over REST', () => {
  it('names the request of PUT, PATCH, DELETE and the legacy POST', async () => {
    const key = fresh();
    const idempotency = (id: string) => ({ 'idempotency-key': id });
    const putId = randomUUID();
    const put = await sendJson(port, 'PUT', path(key), { a: 1 }, idempotency(putId));
    expect(put.status).toBe(200);
    const patchId = randomUUID();
    const patch = await sendJson(
      port,
      'PATCH',
      path(key),
      { b: 2 },
      { ...idempotency(patchId), 'content-type': 'application/merge-patch+json' },
    );
    expect(patch.json.config.version).toBe('2');
    // Retries answer the same, write nothing.
    expect((await sendJson(port, 'PUT', path(key), { a: 1 }, idempotency(putId))).json).toEqual(put.json);
    expect(
      (
        await sendJson(
          port,
          'PATCH',
          path(key),
          { b: 2 },
          { ...idempotency(patchId), 'content-type': 'application/merge-patch+json' },
        )
      ).json,
    ).toEqual(patch.json);
    const delId = randomUUID();
    const del = await http(port, 'DELETE', path(key), { headers: idempotency(delId) });
    expect(del.json.audit_entry.version).toBe('3');
    expect((await http(port, 'DELETE', path(key), { headers: idempotency(delId) })).json).toEqual(del.json);
    const legacyId = randomUUID();
    const legacy = await sendJson(
      port,
      'POST',
      `/values/${key.userId}/${key.configName}`,
      { c: 3 },
      idempotency(legacyId),
    );
    expect(legacy.json.version).toBe(4);
    const legacyRetry = await sendJson(
      port,
      'POST',
      `/values/${key.userId}/${key.configName}`,
      { c: 3 },
      idempotency(legacyId),
    );
    expect(legacyRetry.json.version).toBe(4);
    expect(await latestVersion(key)).toBe(4);
    // Reused with another body: refused.
    expect(restRefusal(await sendJson(port, 'PUT', path(key), { a: 9 }, idempotency(putId)))).toMatchObject({
      httpStatus: 400,
      reason: 'REQUEST_ID_REUSED',
    });
    expect(restRefusal(await sendJson(port, 'PUT', path(key), { a: 9 }, idempotency('not-a-uuid')))).toMatchObject({
      httpStatus: 400,
      reason: 'REQUEST_ID_INVALID',
    });
    expect(await latestVersion(key)).toBe(4);
  });

  it('refuses an Idempotency-Key that contradicts request_id in the body', async () => {
    const key = fresh();
    const res = await sendJson(
      port,
      'POST',
      `${path(key)}:rollback`,
      { to_version: '1', request_id: randomUUID() },
      { 'idempotency-key': randomUUID() },
    );
    expect(restRefusal(res)).toMatchObject({ httpStatus: 400, reason: 'REQUEST_ID_INVALID' });
  });
});
