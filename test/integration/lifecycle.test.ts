/**
 * The config lifecycle beyond Put, end to end: Patch (JSON Merge Patch,
 * RFC 7386), Rollback, Delete and Undelete over gRPC and REST (with
 * compare-and-set by field and by If-Match), ListConfigs, and what a
 * deletion means for Get, History and later writes. Every refused or
 * dry-run call is checked to write nothing; a history mixing every
 * operation is checked to replay from {}.
 */
import type { ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChangeAction,
  ConfigView,
  Operation,
  type AuditEntry,
  type Config,
  type DeleteRequest,
  type DeleteResponse,
  type ListConfigsRequest,
  type ListConfigsResponse,
  type PatchRequest,
  type PatchResponse,
  type RollbackRequest,
  type RollbackResponse,
  type UndeleteRequest,
  type UndeleteResponse,
} from '../../generated/cfgd/v1/config_service.js';
import { apply, jsonEqual, type Change as DomainChange, type JsonObject } from '../../src/domain/index.js';
import { unary } from '../helpers/auth.js';
import { rejection, type TestClient } from '../helpers/client.js';
import { http, sendJson, type HttpResponse } from '../helpers/http.js';
import { fieldsOf, grpcRefusal, restRefusal, setSchema, type Refusal } from '../helpers/schemas.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

interface Key {
  readonly userId: string;
  readonly configName: string;
}

let server: TestServer;
let client: TestClient;
let port: number;
let n = 0;
/** A config no other test uses. */
const fresh = (): Key => ({ userId: 'lifecycle', configName: `cfg-${++n}` });
/** A user no other test uses (for listings). */
const freshUser = (): string => `lister-${++n}`;
const v1 = (key: Key): string => `/v1/users/${key.userId}/configs/${key.configName}`;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
  port = server.cfgd.httpPort;
});
afterAll(async () => server.stop());

// ---------------------------------------------------------------------------------------------
// The new RPCs with promises (the shared TestClient predates them).

const grpc = {
  list: (request: Partial<ListConfigsRequest> & { userId: string }) =>
    unary<ListConfigsRequest, ListConfigsResponse>(
      client.raw.listConfigs.bind(client.raw),
      {
        pageSize: 0,
        pageToken: '',
        namePrefix: '',
        showDeleted: false,
        view: ConfigView.CONFIG_VIEW_UNSPECIFIED,
        ...request,
      },
      undefined,
    ),
  patch: (request: Key & Partial<PatchRequest>) =>
    unary<PatchRequest, PatchResponse>(
      client.raw.patch.bind(client.raw),
      { patch: undefined, validateOnly: false, ...request },
      undefined,
    ),
  rollback: (request: Key & Partial<RollbackRequest>) =>
    unary<RollbackRequest, RollbackResponse>(
      client.raw.rollback.bind(client.raw),
      { toVersion: 0, validateOnly: false, ...request },
      undefined,
    ),
  delete: (request: Key & Partial<DeleteRequest>) =>
    unary<DeleteRequest, DeleteResponse>(
      client.raw.delete.bind(client.raw),
      { validateOnly: false, ...request },
      undefined,
    ),
  undelete: (request: Key & Partial<UndeleteRequest>) =>
    unary<UndeleteRequest, UndeleteResponse>(
      client.raw.undelete.bind(client.raw),
      { validateOnly: false, ...request },
      undefined,
    ),
};

// ---------------------------------------------------------------------------------------------
// One shape for a write's answer from either transport, in proto JSON names for enums.

interface WrittenChange {
  readonly action: string;
  readonly key: string;
  readonly value: unknown;
  readonly oldValue?: unknown;
}

interface Written {
  readonly changed: boolean;
  readonly config: {
    readonly name: string;
    readonly version: number;
    readonly deleted: boolean;
    readonly values: unknown;
    readonly schemaVersion: number;
  };
  readonly audit: {
    readonly version: number;
    readonly author: string;
    readonly operation: string;
    readonly schemaVersion: number;
    readonly rollbackTo: number;
    readonly changes: readonly WrittenChange[];
  };
  /** config.update_time equals audit_entry.create_time. */
  readonly sameTime: boolean;
}

type Result = { ok: true; written: Written; etag: string | undefined } | { ok: false; refusal: Refusal };

function fromGrpc(res: {
  config?: Config | undefined;
  auditEntry?: AuditEntry | undefined;
  changed: boolean;
}): Written {
  const config = res.config!;
  const audit = res.auditEntry!;
  return {
    changed: res.changed,
    config: {
      name: config.name,
      version: config.version,
      deleted: config.deleted,
      values: config.values,
      schemaVersion: config.schemaVersion,
    },
    audit: {
      version: audit.version,
      author: audit.author,
      operation: Operation[audit.operation],
      schemaVersion: audit.schemaVersion,
      rollbackTo: audit.rollbackToVersion,
      changes: audit.changes.map((c) => ({
        action: ChangeAction[c.action],
        key: c.key,
        value: c.value,
        ...(c.oldValue === undefined ? {} : { oldValue: c.oldValue }),
      })),
    },
    sameTime: config.updateTime?.getTime() === audit.createTime?.getTime(),
  };
}

function fromRest(json: any): Written {
  const config = json.config;
  const audit = json.audit_entry;
  return {
    changed: json.changed,
    config: {
      name: config.name,
      version: Number(config.version),
      deleted: config.deleted,
      values: config.values,
      schemaVersion: Number(config.schema_version),
    },
    audit: {
      version: Number(audit.version),
      author: audit.author,
      operation: audit.operation,
      schemaVersion: Number(audit.schema_version),
      rollbackTo: Number(audit.rollback_to_version),
      changes: audit.changes.map((c: any) => ({
        action: c.action,
        key: c.key,
        value: c.value,
        ...(c.old_value === undefined ? {} : { oldValue: c.old_value }),
      })),
    },
    sameTime: config.update_time === audit.create_time,
  };
}

function grpcResult(call: Promise<Parameters<typeof fromGrpc>[0]>): Promise<Result> {
  return call.then(
    (res) => ({ ok: true, written: fromGrpc(res), etag: undefined }),
    (error: ServiceError) => ({ ok: false, refusal: grpcRefusal(error) }),
  );
}

function restResult(res: HttpResponse): Result {
  if (res.status === 200) {
    const etag = res.headers.etag;
    return { ok: true, written: fromRest(res.json), etag: typeof etag === 'string' ? etag : undefined };
  }
  return { ok: false, refusal: restRefusal(res) };
}

function ok(result: Result): Written {
  if (!result.ok) throw new Error(`expected success, got ${JSON.stringify(result.refusal)}`);
  return result.written;
}

function refused(result: Result): Refusal {
  if (result.ok) throw new Error(`expected a refusal, got ${JSON.stringify(result.written)}`);
  return result.refusal;
}

interface WriteOptions {
  readonly expectedVersion?: number;
  readonly validateOnly?: boolean;
}

/** The four lifecycle writes through one transport. */
interface Transport {
  readonly name: string;
  readonly rest: boolean;
  patch(key: Key, patch: JsonObject, options?: WriteOptions): Promise<Result>;
  /** `toVersion` undefined: the field is left out. */
  rollback(key: Key, toVersion: number | undefined, options?: WriteOptions): Promise<Result>;
  delete(key: Key, options?: WriteOptions): Promise<Result>;
  undelete(key: Key, options?: WriteOptions): Promise<Result>;
}

const grpcTransport: Transport = {
  name: 'gRPC',
  rest: false,
  patch: (key, patch, o = {}) => grpcResult(grpc.patch({ ...key, patch, ...o })),
  rollback: (key, toVersion, o = {}) => grpcResult(grpc.rollback({ ...key, toVersion: toVersion ?? 0, ...o })),
  delete: (key, o = {}) => grpcResult(grpc.delete({ ...key, ...o })),
  undelete: (key, o = {}) => grpcResult(grpc.undelete({ ...key, ...o })),
};

/** REST with compare-and-set as the request's own field (query or body), or as If-Match. */
function restTransport(ifMatch: boolean): Transport {
  const query = (o: WriteOptions): string => {
    const params = new URLSearchParams();
    if (o.expectedVersion !== undefined && !ifMatch) params.set('expected_version', String(o.expectedVersion));
    if (o.validateOnly !== undefined) params.set('validate_only', String(o.validateOnly));
    const text = params.toString();
    return text === '' ? '' : `?${text}`;
  };
  const body = (o: WriteOptions): Record<string, unknown> => ({
    ...(o.expectedVersion !== undefined && !ifMatch ? { expected_version: String(o.expectedVersion) } : {}),
    ...(o.validateOnly !== undefined ? { validate_only: o.validateOnly } : {}),
  });
  const headers = (o: WriteOptions): Record<string, string> =>
    ifMatch && o.expectedVersion !== undefined ? { 'if-match': `"${o.expectedVersion}"` } : {};
  return {
    name: ifMatch ? 'REST with If-Match' : 'REST',
    rest: true,
    patch: async (key, patch, o = {}) =>
      restResult(
        await http(port, 'PATCH', `${v1(key)}${query(o)}`, {
          body: JSON.stringify(patch),
          headers: { 'content-type': 'application/merge-patch+json', ...headers(o) },
        }),
      ),
    rollback: async (key, toVersion, o = {}) =>
      restResult(
        await sendJson(
          port,
          'POST',
          `${v1(key)}:rollback`,
          { ...(toVersion === undefined ? {} : { to_version: String(toVersion) }), ...body(o) },
          headers(o),
        ),
      ),
    delete: async (key, o = {}) =>
      restResult(await http(port, 'DELETE', `${v1(key)}${query(o)}`, { headers: headers(o) })),
    undelete: async (key, o = {}) =>
      restResult(await sendJson(port, 'POST', `${v1(key)}:undelete`, body(o), headers(o))),
  };
}

const TRANSPORTS: Transport[] = [grpcTransport, restTransport(false), restTransport(true)];

// ---------------------------------------------------------------------------------------------
// Reading back what a config went through.

/** The reason a gRPC call was refused (to put in a snapshot). */
const reasonOf = (error: unknown): string | undefined => grpcRefusal(error as ServiceError).reason;

/** Everything a write could change about a config, read over gRPC and the legacy route. */
async function snapshot(key: Key): Promise<Record<string, unknown>> {
  return {
    history: await client.history({ ...key, pageSize: 1000 }).catch(reasonOf),
    latest: await client.get(key).catch(reasonOf),
    legacy: (await http(port, 'GET', `/values/${key.userId}/${key.configName}`)).text,
    listed: (await grpc.list({ userId: key.userId, showDeleted: true, namePrefix: key.configName, pageSize: 1000 }))
      .configs,
  };
}

/** The latest version as Get answers it, to compare exactly. */
async function current(key: Key): Promise<{ version: number; values: unknown; deleted: boolean }> {
  const { config } = await client.get(key);
  return { version: config!.version, values: config!.values, deleted: config!.deleted };
}

const OP = {
  PUT: 'OPERATION_PUT',
  SET_SCHEMA: 'OPERATION_SET_SCHEMA',
  PATCH: 'OPERATION_PATCH',
  ROLLBACK: 'OPERATION_ROLLBACK',
  DELETE: 'OPERATION_DELETE',
  UNDELETE: 'OPERATION_UNDELETE',
} as const;

/** (version, operation, rollback_to_version) of every audit entry. */
async function trail(key: Key): Promise<[number, string, number][]> {
  const { entries } = await client.history({ ...key, pageSize: 1000 });
  return entries.map((e) => [e.version, Operation[e.operation], e.rollbackToVersion]);
}

const added = (key: string, value: unknown): WrittenChange => ({ action: 'CHANGE_ACTION_ADDED', key, value });
const removed = (key: string, value: unknown): WrittenChange => ({ action: 'CHANGE_ACTION_REMOVED', key, value });
const updated = (key: string, value: unknown, oldValue: unknown): WrittenChange => ({
  action: 'CHANGE_ACTION_UPDATED',
  key,
  value,
  oldValue,
});

/** What a write's answer must be, all of it. */
function expectWritten(
  written: Written,
  key: Key,
  expected: {
    changed?: boolean;
    version: number;
    values: unknown;
    operation: string;
    changes: WrittenChange[];
    schemaVersion?: number;
    rollbackTo?: number;
  },
): void {
  const schemaVersion = expected.schemaVersion ?? 0;
  expect(written).toEqual({
    changed: expected.changed ?? true,
    config: {
      name: `users/${key.userId}/configs/${key.configName}`,
      version: expected.version,
      deleted: expected.operation === OP.DELETE,
      values: expected.values,
      schemaVersion,
    },
    audit: {
      version: expected.version,
      author: 'anonymous',
      operation: expected.operation,
      schemaVersion,
      rollbackTo: expected.rollbackTo ?? 0,
      changes: expected.changes,
    },
    sameTime: true,
  });
}

const SERVICE_SCHEMA = {
  type: 'object',
  properties: { port: { type: 'integer', maximum: 65535 }, name: { type: 'string' } },
  required: ['port'],
  additionalProperties: false,
};

// ---------------------------------------------------------------------------------------------

describe.each(TRANSPORTS)('over $name', (t) => {
  describe('Patch', () => {
    it('merges per RFC 7386: objects merge recursively, null removes, arrays and scalars are replaced', async () => {
      const key = fresh();
      const before = {
        server: { host: 'db', port: 80, tls: { on: true, ca: 'x' } },
        tags: ['a', 'b', { deep: 1 }],
        keep: 1,
        drop: 'x',
        scalar: 'becomes an object',
        object: { becomes: 'a scalar' },
      };
      await client.put({ ...key, values: before });
      const patch = {
        server: { port: 81, tls: { ca: null }, extra: { n: null, m: [null, 1] } },
        tags: ['c', null],
        drop: null,
        absent: null,
        scalar: { now: 'an object', gone: null },
        object: 'flat',
        added: { x: null, y: { z: null, w: 2 } },
      };
      const after = {
        server: { host: 'db', port: 81, tls: { on: true }, extra: { m: [null, 1] } },
        // An array is replaced as a whole: the null in it is a value, not a removal.
        tags: ['c', null],
        keep: 1,
        scalar: { now: 'an object' },
        object: 'flat',
        // Nulls in a new object are dropped too: it is merged into {}.
        added: { y: { w: 2 } },
      };
      const written = ok(await t.patch(key, patch));
      expectWritten(written, key, {
        version: 2,
        values: after,
        operation: OP.PATCH,
        changes: [
          updated('server', after.server, before.server),
          updated('tags', after.tags, before.tags),
          removed('drop', 'x'),
          updated('scalar', after.scalar, before.scalar),
          updated('object', 'flat', before.object),
          added('added', after.added),
        ],
      });
      // Kept members keep their place, new ones follow in the patch's order.
      const values = written.config.values as typeof after;
      expect(Object.keys(values)).toEqual(['server', 'tags', 'keep', 'scalar', 'object', 'added']);
      expect(Object.keys(values.server)).toEqual(['host', 'port', 'tls', 'extra']);
      expect(await current(key)).toEqual({ version: 2, values: after, deleted: false });
      expect(await trail(key)).toEqual([
        [1, OP.PUT, 0],
        [2, OP.PATCH, 0],
      ]);
      // A second patch on the result: a scalar replaced by an object replaced by a scalar again.
      const again = ok(await t.patch(key, { scalar: 7, keep: { a: [1] } }));
      expect(again.config).toMatchObject({ version: 3 });
      expect(again.config.values).toEqual({ ...after, scalar: 7, keep: { a: [1] } });
      expect(again.audit.changes).toEqual([updated('keep', { a: [1] }, 1), updated('scalar', 7, after.scalar)]);
    });

    it('that changes nothing creates no version and answers the current one with changed = false', async () => {
      const key = fresh();
      await client.put({ ...key, values: { a: 1, b: { c: [2] } } });
      await client.put({ ...key, values: { a: 1, b: { c: [2] }, d: null } });
      const before = await snapshot(key);
      for (const patch of [{}, { a: 1 }, { b: { c: [2] } }, { missing: null }, { b: { missing: null } }, { d: null }]) {
        // `d: null` removes d, which holds null: that is a change.
        const written = ok(await t.patch(key, patch));
        if ('d' in patch) {
          expectWritten(written, key, {
            version: 3,
            values: { a: 1, b: { c: [2] } },
            operation: OP.PATCH,
            changes: [removed('d', null)],
          });
          continue;
        }
        expect(written, JSON.stringify(patch)).toMatchObject({
          changed: false,
          config: { version: 2, values: { a: 1, b: { c: [2] }, d: null } },
          audit: { version: 2, operation: OP.PUT },
        });
        expect(await snapshot(key)).toEqual(before);
      }
      expect(await trail(key)).toEqual([
        [1, OP.PUT, 0],
        [2, OP.PUT, 0],
        [3, OP.PATCH, 0],
      ]);
    });

    it('of a config without values is NOT_FOUND: CONFIG_NOT_FOUND (never written, schema only), CONFIG_DELETED', async () => {
      const never = fresh();
      expect(refused(await t.patch(never, { a: 1 }))).toMatchObject({
        status: 'NOT_FOUND',
        reason: 'CONFIG_NOT_FOUND',
        ...(t.rest ? { httpStatus: 404 } : {}),
      });
      expect(grpcRefusal(await rejection(client.history(never))).reason).toBe('CONFIG_NOT_FOUND');

      const schemaOnly = fresh();
      await setSchema(client, { ...schemaOnly, schema: { type: 'object' } });
      const beforeSchemaOnly = await snapshot(schemaOnly);
      expect(refused(await t.patch(schemaOnly, { a: 1 }))).toMatchObject({
        status: 'NOT_FOUND',
        reason: 'CONFIG_NOT_FOUND',
        metadata: { latest_version: '1' },
      });
      expect(await snapshot(schemaOnly)).toEqual(beforeSchemaOnly);

      const deleted = fresh();
      await client.put({ ...deleted, values: { a: 1 } });
      ok(await t.delete(deleted));
      const beforeDeleted = await snapshot(deleted);
      for (const validateOnly of [false, true]) {
        expect(refused(await t.patch(deleted, { a: 2 }, { validateOnly }))).toMatchObject({
          status: 'NOT_FOUND',
          reason: 'CONFIG_DELETED',
          metadata: { deleted_version: '2' },
        });
      }
      expect(await snapshot(deleted)).toEqual(beforeDeleted);
    });

    it('is checked against the schema: every violation listed, dry run included, nothing written', async () => {
      const key = fresh();
      await client.put({ ...key, values: { port: 80 } });
      await setSchema(client, { ...key, schema: SERVICE_SCHEMA });
      const before = await snapshot(key);
      for (const validateOnly of [false, true]) {
        const refusal = refused(await t.patch(key, { port: 'x', extra: 1 }, { validateOnly }));
        expect(refusal).toMatchObject({
          status: 'INVALID_ARGUMENT',
          reason: 'SCHEMA_VIOLATION',
          metadata: { schema_version: '1', violations: '2' },
          ...(t.rest ? { httpStatus: 400 } : {}),
        });
        // The merged values are what is checked, so the fields name values.
        expect(fieldsOf(refusal)).toEqual(['values/extra', 'values/port']);
        // Removing a required key is a violation too.
        const missing = refused(await t.patch(key, { port: null }, { validateOnly }));
        expect(missing).toMatchObject({ reason: 'SCHEMA_VIOLATION' });
        expect(fieldsOf(missing)).toEqual(['values/port']);
      }
      expect(await snapshot(key)).toEqual(before);
      expectWritten(ok(await t.patch(key, { port: 81, name: 'web' })), key, {
        version: 3,
        values: { port: 81, name: 'web' },
        operation: OP.PATCH,
        schemaVersion: 1,
        changes: [updated('port', 81, 80), added('name', 'web')],
      });
    });
  });

  describe('Rollback', () => {
    it('creates a new version with the values of to_version, naming it; the same values again change nothing', async () => {
      const key = fresh();
      await client.put({ ...key, values: { a: 1, b: [1, { c: null }] } });
      await client.put({ ...key, values: { a: 2, c: 'x' } });
      await grpc.patch({ ...key, patch: { a: 3 } });
      const first = ok(await t.rollback(key, 1));
      expectWritten(first, key, {
        version: 4,
        values: { a: 1, b: [1, { c: null }] },
        operation: OP.ROLLBACK,
        rollbackTo: 1,
        changes: [updated('a', 1, 3), removed('c', 'x'), added('b', [1, { c: null }])],
      });
      // The values are those of version 1 already: no version, the current one answered.
      for (const toVersion of [1, 4]) {
        expect(ok(await t.rollback(key, toVersion))).toEqual({ ...first, changed: false });
      }
      const second = ok(await t.rollback(key, 2));
      expectWritten(second, key, {
        version: 5,
        values: { a: 2, c: 'x' },
        operation: OP.ROLLBACK,
        rollbackTo: 2,
        changes: [updated('a', 2, 1), removed('b', [1, { c: null }]), added('c', 'x')],
      });
      expect(await current(key)).toEqual({ version: 5, values: { a: 2, c: 'x' }, deleted: false });
      // History is never rewritten: the rolled-back versions stay as they were.
      expect((await client.get({ ...key, version: 3 })).config?.values).toEqual({ a: 3, c: 'x' });
      expect(await trail(key)).toEqual([
        [1, OP.PUT, 0],
        [2, OP.PUT, 0],
        [3, OP.PATCH, 0],
        [4, OP.ROLLBACK, 1],
        [5, OP.ROLLBACK, 2],
      ]);
    });

    it('refuses a missing, negative or unknown to_version, and one without values, writing nothing', async () => {
      const key = fresh();
      await client.put({ ...key, values: { a: 1 } });
      await grpc.delete(key);
      await client.put({ ...key, values: { a: 3 } });
      const schemaFirst = fresh();
      await setSchema(client, { ...schemaFirst, schema: { type: 'object' } });
      await client.put({ ...schemaFirst, values: { a: 1 } });
      const before = [await snapshot(key), await snapshot(schemaFirst)];

      for (const toVersion of [undefined, 0, -1]) {
        const refusal = refused(await t.rollback(key, toVersion));
        expect(refusal, String(toVersion)).toMatchObject({
          status: 'INVALID_ARGUMENT',
          reason: 'VERSION_INVALID',
          ...(t.rest ? { httpStatus: 400 } : {}),
        });
        expect(fieldsOf(refusal)).toEqual(['to_version']);
      }
      expect(refused(await t.rollback(key, 99))).toMatchObject({
        status: 'NOT_FOUND',
        reason: 'VERSION_NOT_FOUND',
        metadata: { version: '99' },
        ...(t.rest ? { httpStatus: 404 } : {}),
      });
      for (const validateOnly of [false, true]) {
        const tombstone = refused(await t.rollback(key, 2, { validateOnly }));
        expect(tombstone).toMatchObject({
          status: 'FAILED_PRECONDITION',
          reason: 'VERSION_HAS_NO_VALUES',
          metadata: { version: '2' },
          ...(t.rest ? { httpStatus: 400 } : {}),
        });
        expect(tombstone.message).toMatch(/deletion/);
        const schemaOnly = refused(await t.rollback(schemaFirst, 1, { validateOnly }));
        expect(schemaOnly).toMatchObject({ status: 'FAILED_PRECONDITION', reason: 'VERSION_HAS_NO_VALUES' });
        expect(schemaOnly.message).toMatch(/schema/);
      }
      expect([await snapshot(key), await snapshot(schemaFirst)]).toEqual(before);

      // A config that never existed has no version to roll back to, and is not created.
      const never = fresh();
      expect(refused(await t.rollback(never, 1))).toMatchObject({ status: 'NOT_FOUND' });
      expect(grpcRefusal(await rejection(client.history(never))).reason).toBe('CONFIG_NOT_FOUND');
    });

    it('of a deleted config revives it', async () => {
      const key = fresh();
      await client.put({ ...key, values: { a: 1 } });
      await client.put({ ...key, values: { a: 2, b: true } });
      await grpc.delete(key);
      expectWritten(ok(await t.rollback(key, 1)), key, {
        version: 4,
        values: { a: 1 },
        operation: OP.ROLLBACK,
        rollbackTo: 1,
        changes: [added('a', 1)],
      });
      expect(await current(key)).toEqual({ version: 4, values: { a: 1 }, deleted: false });
    });

    it('is checked against the current schema, not the one the old values were written under', async () => {
      const key = fresh();
      await client.put({ ...key, values: { port: 80, legacy: true } });
      await client.put({ ...key, values: { port: 81 } });
      await setSchema(client, { ...key, schema: SERVICE_SCHEMA });
      await client.put({ ...key, values: { port: 82 } });
      const before = await snapshot(key);
      for (const validateOnly of [false, true]) {
        const refusal = refused(await t.rollback(key, 1, { validateOnly }));
        expect(refusal).toMatchObject({
          status: 'INVALID_ARGUMENT',
          reason: 'SCHEMA_VIOLATION',
          metadata: { schema_version: '1', violations: '1' },
        });
        expect(fieldsOf(refusal)).toEqual(['values/legacy']);
      }
      expect(await snapshot(key)).toEqual(before);
      expectWritten(ok(await t.rollback(key, 2)), key, {
        version: 5,
        values: { port: 81 },
        operation: OP.ROLLBACK,
        rollbackTo: 2,
        schemaVersion: 1,
        changes: [updated('port', 81, 82)],
      });

      // A stricter schema set while the config is deleted (nothing to check it against then)
      // guards the rollback that revives it.
      await grpc.delete(key);
      await setSchema(client, { ...key, schema: { ...SERVICE_SCHEMA, required: ['port', 'name'] } });
      const revive = refused(await t.rollback(key, 5));
      expect(revive).toMatchObject({ reason: 'SCHEMA_VIOLATION', metadata: { schema_version: '2' } });
      expect(fieldsOf(revive)).toEqual(['values/name']);
    });
  });

  describe('Delete', () => {
    it('appends a tombstone removing every key; deleting it again changes nothing', async () => {
      const key = fresh();
      await client.put({ ...key, values: { a: 1, n: { x: [1, null] } } });
      await setSchema(client, { ...key, schema: { type: 'object' } });
      const first = ok(await t.delete(key));
      expectWritten(first, key, {
        version: 3,
        values: undefined,
        operation: OP.DELETE,
        schemaVersion: 1,
        changes: [removed('a', 1), removed('n', { x: [1, null] })],
      });
      // A tombstone has no values: the JSON has no such member (not even null).
      expect((await http(port, 'DELETE', v1(key))).json.config).not.toHaveProperty('values');
      const before = await snapshot(key);
      const again = ok(await t.delete(key));
      expect(again).toEqual({ ...first, changed: false });
      expect(await snapshot(key)).toEqual(before);
      expect(await trail(key)).toEqual([
        [1, OP.PUT, 0],
        [2, OP.SET_SCHEMA, 0],
        [3, OP.DELETE, 0],
      ]);
    });

    it('of a config that never had values is CONFIG_NOT_FOUND, and creates nothing', async () => {
      const never = fresh();
      expect(refused(await t.delete(never))).toMatchObject({
        status: 'NOT_FOUND',
        reason: 'CONFIG_NOT_FOUND',
        ...(t.rest ? { httpStatus: 404 } : {}),
      });
      expect(grpcRefusal(await rejection(client.history(never))).reason).toBe('CONFIG_NOT_FOUND');
      const schemaOnly = fresh();
      await setSchema(client, { ...schemaOnly, schema: { type: 'object' } });
      const before = await snapshot(schemaOnly);
      expect(refused(await t.delete(schemaOnly))).toMatchObject({ status: 'NOT_FOUND', reason: 'CONFIG_NOT_FOUND' });
      expect(await snapshot(schemaOnly)).toEqual(before);
    });
  });

  describe('Undelete', () => {
    it('restores the values the delete removed as a new version; only a deleted config can be undeleted', async () => {
      const key = fresh();
      const values = { a: 2, n: { x: [1, null], y: {} }, s: 'text' };
      await client.put({ ...key, values: { a: 1 } });
      await client.put({ ...key, values });
      await grpc.delete(key);
      const restored = ok(await t.undelete(key));
      expectWritten(restored, key, {
        version: 4,
        values,
        operation: OP.UNDELETE,
        changes: [added('a', 2), added('n', values.n), added('s', 'text')],
      });
      expect(Object.keys(restored.config.values as object)).toEqual(['a', 'n', 's']);
      expect(await current(key)).toEqual({ version: 4, values, deleted: false });

      const before = await snapshot(key);
      for (const validateOnly of [false, true]) {
        expect(refused(await t.undelete(key, { validateOnly }))).toMatchObject({
          status: 'FAILED_PRECONDITION',
          reason: 'CONFIG_NOT_DELETED',
          metadata: { latest_version: '4' },
          ...(t.rest ? { httpStatus: 400 } : {}),
        });
      }
      expect(await snapshot(key)).toEqual(before);

      // Revived by a Put instead: no longer deleted either.
      await grpc.delete(key);
      await client.put({ ...key, values: { b: 1 } });
      expect(refused(await t.undelete(key))).toMatchObject({ reason: 'CONFIG_NOT_DELETED' });
      expect(await trail(key)).toEqual([
        [1, OP.PUT, 0],
        [2, OP.PUT, 0],
        [3, OP.DELETE, 0],
        [4, OP.UNDELETE, 0],
        [5, OP.DELETE, 0],
        [6, OP.PUT, 0],
      ]);

      const never = fresh();
      expect(refused(await t.undelete(never))).toMatchObject({ status: 'NOT_FOUND', reason: 'CONFIG_NOT_FOUND' });
      expect(grpcRefusal(await rejection(client.history(never))).reason).toBe('CONFIG_NOT_FOUND');
      const schemaOnly = fresh();
      await setSchema(client, { ...schemaOnly, schema: { type: 'object' } });
      expect(refused(await t.undelete(schemaOnly))).toMatchObject({
        status: 'FAILED_PRECONDITION',
        reason: 'CONFIG_NOT_DELETED',
      });
    });

    it('keeps the schema in force: the restored version is checked against it and records it', async () => {
      const key = fresh();
      await client.put({ ...key, values: { port: 80 } });
      await setSchema(client, { ...key, schema: SERVICE_SCHEMA });
      await grpc.delete(key);
      expectWritten(ok(await t.undelete(key)), key, {
        version: 4,
        values: { port: 80 },
        operation: OP.UNDELETE,
        schemaVersion: 1,
        changes: [added('port', 80)],
      });
      // A schema set after the deletion makes the latest version a schema change: Undelete no
      // longer applies (Rollback does, checked against that schema).
      await grpc.delete(key);
      await setSchema(client, { ...key, schema: { type: 'object' } });
      expect(refused(await t.undelete(key))).toMatchObject({ reason: 'CONFIG_NOT_DELETED' });
      const revived = ok(await t.rollback(key, 4));
      expect(revived.config).toMatchObject({ version: 7, schemaVersion: 2, deleted: false });
      expect(revived.config.values).toEqual({ port: 80 });
    });
  });

  describe('compare-and-set and dry runs', () => {
    /** Each write, on a config its setup leaves at version 2. */
    const WRITES: {
      name: string;
      setup(key: Key): Promise<unknown>;
      run(key: Key, options: WriteOptions): Promise<Result>;
      expected: { values: unknown; operation: string; changes: WrittenChange[]; rollbackTo?: number };
    }[] = [
      {
        name: 'Patch',
        setup: async (key) => {
          await client.put({ ...key, values: { a: 1, b: { c: 2 } } });
          await client.put({ ...key, values: { a: 2, b: { c: 2 } } });
        },
        run: (key, o) => t.patch(key, { a: 3, b: { c: null } }, o),
        expected: {
          values: { a: 3, b: {} },
          operation: OP.PATCH,
          changes: [updated('a', 3, 2), updated('b', {}, { c: 2 })],
        },
      },
      {
        name: 'Rollback',
        setup: async (key) => {
          await client.put({ ...key, values: { a: 1 } });
          await client.put({ ...key, values: { a: 2 } });
        },
        run: (key, o) => t.rollback(key, 1, o),
        expected: { values: { a: 1 }, operation: OP.ROLLBACK, rollbackTo: 1, changes: [updated('a', 1, 2)] },
      },
      {
        name: 'Delete',
        setup: async (key) => {
          await client.put({ ...key, values: { a: 1 } });
          await client.put({ ...key, values: { a: 2, b: [1] } });
        },
        run: (key, o) => t.delete(key, o),
        expected: { values: undefined, operation: OP.DELETE, changes: [removed('a', 2), removed('b', [1])] },
      },
      {
        name: 'Undelete',
        setup: async (key) => {
          await client.put({ ...key, values: { a: 1, b: [1] } });
          await grpc.delete(key);
        },
        run: (key, o) => t.undelete(key, o),
        expected: { values: { a: 1, b: [1] }, operation: OP.UNDELETE, changes: [added('a', 1), added('b', [1])] },
      },
    ];

    it.each(WRITES)(
      '$name: a wrong expected version is ABORTED, validate_only answers the would-be version; neither writes',
      async (write) => {
        const key = fresh();
        await write.setup(key);
        const before = await snapshot(key);
        for (const expectedVersion of [1, 3]) {
          for (const validateOnly of [false, true]) {
            const refusal = refused(await write.run(key, { expectedVersion, validateOnly }));
            expect(refusal, `expected ${expectedVersion}, validate_only ${validateOnly}`).toMatchObject({
              status: 'ABORTED',
              reason: 'VERSION_MISMATCH',
              metadata: { expected_version: String(expectedVersion), current_version: '2' },
              ...(t.rest ? { httpStatus: 409 } : {}),
            });
          }
        }
        expect(await snapshot(key)).toEqual(before);

        const dry = ok(await write.run(key, { validateOnly: true }));
        expectWritten(dry, key, { version: 3, ...write.expected });
        expect(ok(await write.run(key, { validateOnly: true, expectedVersion: 2 }))).toEqual(dry);
        expect(await snapshot(key)).toEqual(before);

        const result = await write.run(key, { expectedVersion: 2 });
        // The write answers what the dry run said it would.
        expect(ok(result)).toEqual(dry);
        if (t.rest && write.name !== 'Delete') expect(result.ok && result.etag).toBe('"3"');
        expect((await trail(key)).at(-1)).toEqual([3, write.expected.operation, write.expected.rollbackTo ?? 0]);
        // The same expected version again is now stale.
        const after = await snapshot(key);
        expect(refused(await write.run(key, { expectedVersion: 2 }))).toMatchObject({
          reason: 'VERSION_MISMATCH',
          metadata: { current_version: '3' },
        });
        expect(await snapshot(key)).toEqual(after);
      },
    );
  });
});

describe('after a Delete', () => {
  it('Get is NOT_FOUND (CONFIG_DELETED) on gRPC, REST and the legacy route; earlier versions and History still read', async () => {
    const key = fresh();
    await client.put({ ...key, values: { a: 1 } });
    await client.put({ ...key, values: { a: 2 } });
    await grpc.delete(key);
    const metadata = {
      resource: `users/${key.userId}/configs/${key.configName}`,
      deleted_version: '3',
      latest_version: '3',
    };
    for (const version of [0, 3]) {
      expect(grpcRefusal(await rejection(client.get({ ...key, version })))).toMatchObject({
        status: 'NOT_FOUND',
        reason: 'CONFIG_DELETED',
        metadata,
      });
    }
    for (const path of [v1(key), `${v1(key)}?version=3`, `/values/${key.userId}/${key.configName}`]) {
      expect(restRefusal(await http(port, 'GET', path)), path).toMatchObject({
        httpStatus: 404,
        status: 'NOT_FOUND',
        reason: 'CONFIG_DELETED',
        metadata,
      });
    }
    expect((await http(port, 'HEAD', v1(key))).status).toBe(404);

    // Earlier versions still read, with the latest version named.
    expect(await client.get({ ...key, version: 2 })).toMatchObject({
      latestVersion: 3,
      config: { version: 2, values: { a: 2 }, deleted: false },
    });
    const rest = await http(port, 'GET', `${v1(key)}?version=1`);
    expect(rest.json).toMatchObject({ latest_version: '3', config: { version: '1' } });
    expect(rest.json.config.values).toEqual({ a: 1 });
    expect(grpcRefusal(await rejection(client.get({ ...key, version: 4 })))).toMatchObject({
      reason: 'VERSION_NOT_FOUND',
    });

    // History reads on, the deletion in it.
    const history = await client.history(key);
    expect(history.latestVersion).toBe(3);
    expect(history.entries.map((e) => [e.version, Operation[e.operation]])).toEqual([
      [1, OP.PUT],
      [2, OP.PUT],
      [3, OP.DELETE],
    ]);
    expect(history.entries[2]?.changes).toEqual([
      { action: ChangeAction.CHANGE_ACTION_REMOVED, key: 'a', value: 2, oldValue: undefined },
    ]);
    const restHistory = await http(port, 'GET', `${v1(key)}/history`);
    expect(restHistory.status).toBe(200);
    expect(restHistory.json.entries[2]).toMatchObject({
      version: '3',
      operation: 'OPERATION_DELETE',
      changes: [{ action: 'CHANGE_ACTION_REMOVED', key: 'a', value: 2 }],
    });
  });

  it('a Put (gRPC, REST or legacy) continues the version sequence, adding every key, even the same values', async () => {
    const key = fresh();
    await client.put({ ...key, values: { a: 1 } });
    await grpc.delete(key);
    // The same values as before the deletion: still a new version, since the config had none.
    const put = await client.put({ ...key, values: { a: 1 } });
    expect(put).toMatchObject({ changed: true, config: { version: 3, deleted: false } });
    expect(put.config?.values).toEqual({ a: 1 });
    expect(put.auditEntry).toMatchObject({
      version: 3,
      operation: Operation.OPERATION_PUT,
      changes: [{ action: ChangeAction.CHANGE_ACTION_ADDED, key: 'a', value: 1 }],
    });
    expect((await client.get(key)).config?.values).toEqual({ a: 1 });

    await grpc.delete(key);
    const restPut = await sendJson(port, 'PUT', v1(key), { b: 2 });
    expect(restPut.json).toMatchObject({
      changed: true,
      config: { version: '5', values: { b: 2 }, deleted: false },
      audit_entry: { operation: 'OPERATION_PUT', changes: [{ action: 'CHANGE_ACTION_ADDED', key: 'b', value: 2 }] },
    });

    await grpc.delete(key);
    const legacy = await sendJson(port, 'POST', `/values/${key.userId}/${key.configName}`, { c: 3 });
    expect(legacy.status).toBe(200);
    expect(legacy.json).toMatchObject({ version: 7 });
    expect(legacy.json.values).toEqual({ c: 3 });
    expect(legacy.json.audit_trail.at(-1)).toMatchObject({
      version: 7,
      changes: [{ action: 'added', key: 'c', value: 3 }],
    });
    expect((await http(port, 'GET', `/values/${key.userId}/${key.configName}`)).json.values).toEqual({ c: 3 });
    expect(await trail(key)).toEqual([
      [1, OP.PUT, 0],
      [2, OP.DELETE, 0],
      [3, OP.PUT, 0],
      [4, OP.DELETE, 0],
      [5, OP.PUT, 0],
      [6, OP.DELETE, 0],
      [7, OP.PUT, 0],
    ]);
  });

  it('a Put with expected_version checks against the tombstone: its version, or 0 (no values)', async () => {
    const key = fresh();
    await client.put({ ...key, values: { a: 1 } });
    await grpc.delete(key);
    const refusal = grpcRefusal(await rejection(client.put({ ...key, values: { a: 2 }, expectedVersion: 1 })));
    expect(refusal).toMatchObject({ reason: 'VERSION_MISMATCH', metadata: { current_version: '2' } });
    expect((await client.put({ ...key, values: { a: 2 }, expectedVersion: 2 })).config?.version).toBe(3);
  });
});

describe('request checks', () => {
  it('gRPC: a Patch without a patch, and names that are not names, are INVALID_ARGUMENT', async () => {
    const key = fresh();
    await client.put({ ...key, values: { a: 1 } });
    const before = await snapshot(key);
    expect(grpcRefusal(await rejection(grpc.patch(key)))).toMatchObject({
      status: 'INVALID_ARGUMENT',
      reason: 'VALUES_REQUIRED',
    });
    const bad = { userId: 'lifecycle', configName: 'bad name' };
    for (const call of [
      grpc.patch({ ...bad, patch: { a: 1 } }),
      grpc.rollback({ ...bad, toVersion: 1 }),
      grpc.delete(bad),
      grpc.undelete(bad),
      grpc.list({ userId: 'bad user' }),
    ]) {
      expect(grpcRefusal(await rejection(call))).toMatchObject({ status: 'INVALID_ARGUMENT', reason: 'NAME_INVALID' });
    }
    for (const expectedVersion of [-1]) {
      for (const call of [
        grpc.patch({ ...key, patch: { a: 2 }, expectedVersion }),
        grpc.rollback({ ...key, toVersion: 1, expectedVersion }),
        grpc.delete({ ...key, expectedVersion }),
        grpc.undelete({ ...key, expectedVersion }),
      ]) {
        const refusal = grpcRefusal(await rejection(call));
        expect(refusal).toMatchObject({ status: 'INVALID_ARGUMENT', reason: 'VERSION_INVALID' });
        expect(fieldsOf(refusal)).toEqual(['expected_version']);
      }
    }
    expect(await snapshot(key)).toEqual(before);
  });

  it('a patch within the limits whose merged values are not is VALUES_TOO_LARGE, dry run included', async () => {
    const key = fresh();
    await client.put({ ...key, values: { a: 'x'.repeat(600 * 1024) } });
    const before = await snapshot(key);
    for (const t of TRANSPORTS.slice(0, 2)) {
      for (const validateOnly of [false, true]) {
        const refusal = refused(await t.patch(key, { b: 'y'.repeat(600 * 1024) }, { validateOnly }));
        expect(refusal, `${t.name} ${validateOnly}`).toMatchObject({ reason: 'VALUES_TOO_LARGE' });
        expect(fieldsOf(refusal)).toEqual(['values']);
      }
    }
    expect(await snapshot(key)).toEqual(before);
  });

  it('REST: PATCH takes merge-patch+json or JSON objects only; body-"*" routes refuse query parameters', async () => {
    const key = fresh();
    await client.put({ ...key, values: { a: 1 } });
    const before = await snapshot(key);
    const patchWith = (body: string | undefined, headers: Record<string, string>) =>
      http(port, 'PATCH', v1(key), { body, headers });
    const json = { 'content-type': 'application/json' };
    const cases: [string, Promise<HttpResponse>, number, string][] = [
      ['an array', patchWith('[1]', json), 400, 'BODY_NOT_OBJECT'],
      ['null', patchWith('null', json), 400, 'BODY_NOT_OBJECT'],
      ['a string', patchWith('"x"', json), 400, 'BODY_NOT_OBJECT'],
      ['malformed JSON', patchWith('{"a": ', json), 400, 'MALFORMED_JSON'],
      ['no body', patchWith(undefined, {}), 400, 'VALUES_REQUIRED'],
      ['no content type', patchWith('{"a": 2}', {}), 415, 'CONTENT_TYPE_MISSING'],
      ['text/plain', patchWith('{"a": 2}', { 'content-type': 'text/plain' }), 415, 'CONTENT_TYPE_UNSUPPORTED'],
      ['a bad If-Match', patchWith('{"a": 2}', { ...json, 'if-match': 'one' }), 400, 'IF_MATCH_INVALID'],
      ['an unknown query parameter', http(port, 'DELETE', `${v1(key)}?colour=blue`), 400, 'QUERY_PARAMETER_UNKNOWN'],
      [
        // Taken as a query parameter and dropped, it would turn a dry run into a write.
        'validate_only in the query of :rollback',
        sendJson(port, 'POST', `${v1(key)}:rollback?validate_only=true`, { to_version: '1' }),
        400,
        'QUERY_PARAMETER_UNKNOWN',
      ],
      [
        'validate_only in the query of :undelete',
        sendJson(port, 'POST', `${v1(key)}:undelete?validate_only=true`, {}),
        400,
        'QUERY_PARAMETER_UNKNOWN',
      ],
      ['an unknown body field', sendJson(port, 'POST', `${v1(key)}:undelete`, { nope: 1 }), 400, 'REQUEST_INVALID'],
    ];
    for (const [what, response, status, reason] of cases) {
      expect(restRefusal(await response), what).toMatchObject({ httpStatus: status, reason });
    }
    expect(await snapshot(key)).toEqual(before);

    // Both media types are taken; the answer has the new version as its ETag, which If-Match takes back.
    const merged = await http(port, 'PATCH', v1(key), {
      body: '{"b": 2}',
      headers: { 'content-type': 'application/merge-patch+json; charset=utf-8' },
    });
    expect(merged.status).toBe(200);
    expect(merged.headers.etag).toBe('"2"');
    const plain = await sendJson(port, 'PATCH', v1(key), { c: 3 }, { 'if-match': 'W/"2"' });
    expect(plain.status).toBe(200);
    expect(plain.json.config).toMatchObject({ version: '3' });
    expect(plain.json.config.values).toEqual({ a: 1, b: 2, c: 3 });
    expect(restRefusal(await sendJson(port, 'PATCH', v1(key), { d: 4 }, { 'if-match': '"2"' }))).toMatchObject({
      httpStatus: 409,
      reason: 'VERSION_MISMATCH',
    });
    // A number is as good as a string for an int64 in proto3 JSON.
    const rolledBack = await sendJson(port, 'POST', `${v1(key)}:rollback`, { to_version: 1 });
    expect(rolledBack.json.config).toMatchObject({ version: '4' });
    expect(rolledBack.json.config.values).toEqual({ a: 1 });
    expect(rolledBack.headers.etag).toBe('"4"');

    // Keys such as __proto__ and constructor are plain members of a patch: merged, never an object's prototype.
    const odd = fresh();
    await sendJson(port, 'PUT', v1(odd), { constructor: { x: 1, y: 2 }, toString: 'kept' });
    const oddPatch = await http(port, 'PATCH', v1(odd), {
      body: '{"__proto__": {"polluted": true, "n": null}, "constructor": {"x": null}}',
      headers: { 'content-type': 'application/merge-patch+json' },
    });
    expect(oddPatch.status, oddPatch.text).toBe(200);
    const oddValues = (await http(port, 'GET', v1(odd))).text;
    expect(JSON.parse(oddValues).config.values).toEqual(
      JSON.parse('{"constructor": {"y": 2}, "toString": "kept", "__proto__": {"polluted": true}}'),
    );
    expect(oddValues).toContain('"__proto__"');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    // The config's route now also takes PATCH and DELETE; the list route only GET.
    const wrong = await sendJson(port, 'POST', v1(key), {});
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow?.toString().split(', ').sort()).toEqual(['DELETE', 'GET', 'HEAD', 'PATCH', 'PUT']);
    const wrongList = await http(port, 'DELETE', `/v1/users/${key.userId}/configs`);
    expect(wrongList.status).toBe(405);
    expect(wrongList.headers.allow?.toString().split(', ').sort()).toEqual(['GET', 'HEAD']);
  });
});

describe('concurrent lifecycle writes', () => {
  it('patches of different keys, sent at once over gRPC and REST, all apply: no update is lost', async () => {
    const key = fresh();
    await client.put({ ...key, values: { base: true } });
    const rest = restTransport(false);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        i % 2 === 0 ? grpcTransport.patch(key, { [`k${i}`]: i }) : rest.patch(key, { [`k${i}`]: i }),
      ),
    );
    const versions = results.map((r) => ok(r).config.version).sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    const expected = { base: true, ...Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])) };
    expect(await current(key)).toEqual({ version: 21, values: expected, deleted: false });
  });

  it('deletes and undeletes sent at once: one of each takes effect, the others change nothing or are refused', async () => {
    const key = fresh();
    await client.put({ ...key, values: { a: 1 } });
    const deletes = await Promise.all(Array.from({ length: 8 }, () => grpcTransport.delete(key)));
    expect(deletes.map((r) => ok(r).changed).filter(Boolean)).toHaveLength(1);
    for (const r of deletes) expect(ok(r).config).toMatchObject({ version: 2, deleted: true });
    const undeletes = await Promise.all(Array.from({ length: 8 }, () => restTransport(false).undelete(key)));
    expect(undeletes.filter((r) => r.ok).map((r) => ok(r).config.version)).toEqual([3]);
    for (const r of undeletes.filter((u) => !u.ok)) expect(refused(r).reason).toBe('CONFIG_NOT_DELETED');
    expect(await trail(key)).toEqual([
      [1, OP.PUT, 0],
      [2, OP.DELETE, 0],
      [3, OP.UNDELETE, 0],
    ]);
  });
});

describe('a tombstone whose values the schema now refuses', () => {
  it('is not undeleted: Undelete checks the restored values against the schema in force', async () => {
    // Through the API the schema in force at a tombstone is the one its values satisfied (a
    // schema set after the deletion makes the latest version a schema change), so this state is
    // made through the store: what Undelete must refuse if it ever arises (an older release's data).
    const key = fresh();
    await client.put({ ...key, values: { port: 80 } });
    await setSchema(client, { ...key, schema: SERVICE_SCHEMA });
    await server.cfgd.store.write(key, (current) => ({
      kind: 'create',
      next: {
        key,
        version: current!.version + 1,
        values: {},
        hasValues: false,
        audit: {
          version: current!.version + 1,
          createdAt: new Date(),
          author: 'test',
          changes: [{ action: 'removed', key: 'port', value: 'not a port' }],
          operation: 'delete',
          schemaVersion: current!.audit.schemaVersion,
        },
      },
    }));
    const before = await snapshot(key);
    for (const t of TRANSPORTS) {
      for (const validateOnly of [false, true]) {
        const refusal = refused(await t.undelete(key, { validateOnly }));
        expect(refusal, t.name).toMatchObject({ reason: 'SCHEMA_VIOLATION', metadata: { schema_version: '1' } });
        expect(fieldsOf(refusal)).toEqual(['values/port']);
      }
    }
    expect(await snapshot(key)).toEqual(before);
  });
});

describe('ListConfigs', () => {
  /** Writes configs in an order that is not theirs by name, with mixed case; returns the names sorted. */
  async function populate(userId: string): Promise<string[]> {
    const names = ['b-two', 'A-upper', 'a-one', 'c.three', 'b_one', 'Z', 'a-two', '0-digit'];
    for (const [i, configName] of names.entries()) {
      await client.put({ userId, configName, values: { i } });
      // Some with more than one version: the listing has the latest.
      if (i % 3 === 0) await client.put({ userId, configName, values: { i, again: true } });
    }
    // Code-unit order: digits, upper case, lower case; '-' before '_'.
    const sorted = ['0-digit', 'A-upper', 'Z', 'a-one', 'a-two', 'b-two', 'b_one', 'c.three'];
    expect([...names].sort()).toEqual(sorted);
    return sorted;
  }

  async function everyPage(
    request: Partial<ListConfigsRequest> & { userId: string },
  ): Promise<{ pages: string[][]; configs: Config[] }> {
    const pages: string[][] = [];
    const configs: Config[] = [];
    let pageToken = request.pageToken ?? '';
    do {
      const page = await grpc.list({ ...request, pageToken });
      pages.push(page.configs.map((c) => c.configName));
      configs.push(...page.configs);
      pageToken = page.nextPageToken;
      expect(pages.length).toBeLessThan(50);
    } while (pageToken !== '');
    return { pages, configs };
  }

  it('pages through the latest version of every config by name, with values only in the FULL view', async () => {
    const userId = freshUser();
    const sorted = await populate(userId);
    const { pages, configs } = await everyPage({ userId, pageSize: 3 });
    expect(pages).toEqual([sorted.slice(0, 3), sorted.slice(3, 6), sorted.slice(6)]);
    for (const config of configs) {
      const latest = (await client.get({ userId, configName: config.configName })).config!;
      expect(config).toEqual({ ...latest, values: undefined });
      expect(config.deleted).toBe(false);
    }
    const full = await everyPage({ userId, pageSize: 3, view: ConfigView.CONFIG_VIEW_FULL });
    expect(full.pages).toEqual(pages);
    for (const config of full.configs) {
      expect(config).toEqual((await client.get({ userId, configName: config.configName })).config);
    }
    const basic = await grpc.list({ userId, view: ConfigView.CONFIG_VIEW_BASIC });
    expect(basic.configs.every((c) => c.values === undefined)).toBe(true);

    // A page size that divides the count: no empty last page. The default holds them all.
    expect((await everyPage({ userId, pageSize: 4 })).pages).toEqual([sorted.slice(0, 4), sorted.slice(4)]);
    expect((await everyPage({ userId, pageSize: 8 })).pages).toEqual([sorted]);
    expect((await everyPage({ userId })).pages).toEqual([sorted]);
    expect((await everyPage({ userId, pageSize: 1 })).pages).toEqual(sorted.map((name) => [name]));
    // A user without configs.
    expect(await grpc.list({ userId: freshUser() })).toEqual({ configs: [], nextPageToken: '' });
  });

  it('continues a token after the last name it returned, whatever was written in between', async () => {
    const userId = freshUser();
    const sorted = await populate(userId);
    const first = await grpc.list({ userId, pageSize: 3 });
    expect(first.configs.map((c) => c.configName)).toEqual(sorted.slice(0, 3));
    // Before the token's position (not listed), after it (listed), and one deleted after it.
    await client.put({ userId, configName: '00-early', values: {} });
    await client.put({ userId, configName: 'bb-late', values: {} });
    await grpc.delete({ userId, configName: 'c.three' });
    const rest = await everyPage({ userId, pageSize: 3, pageToken: first.nextPageToken });
    const expected = ['a-one', 'a-two', 'b-two', 'b_one', 'bb-late'];
    expect(rest.pages.flat()).toEqual(expected);
  });

  it('filters by name prefix (case-sensitive), with paging', async () => {
    const userId = freshUser();
    await populate(userId);
    const names = async (request: Partial<ListConfigsRequest>) =>
      (await everyPage({ userId, ...request })).pages.flat();
    expect(await names({ namePrefix: 'a-' })).toEqual(['a-one', 'a-two']);
    expect(await names({ namePrefix: 'a' })).toEqual(['a-one', 'a-two']);
    expect(await names({ namePrefix: 'A' })).toEqual(['A-upper']);
    expect(await names({ namePrefix: 'b' })).toEqual(['b-two', 'b_one']);
    expect(await names({ namePrefix: 'c.three' })).toEqual(['c.three']);
    expect(await names({ namePrefix: 'c.three.' })).toEqual([]);
    expect(await names({ namePrefix: 'x' })).toEqual([]);
    expect((await everyPage({ userId, namePrefix: 'b', pageSize: 1 })).pages).toEqual([['b-two'], ['b_one']]);
  });

  it('hides deleted configs unless show_deleted (then as tombstones, without values), and schema-only configs always', async () => {
    const userId = freshUser();
    await client.put({ userId, configName: 'live', values: { a: 1 } });
    await client.put({ userId, configName: 'gone', values: { b: 1 } });
    await grpc.delete({ userId, configName: 'gone' });
    await setSchema(client, { userId, configName: 'schema-only', schema: { type: 'object' } });
    await client.put({ userId, configName: 'revived', values: { c: 1 } });
    await grpc.delete({ userId, configName: 'revived' });
    await grpc.undelete({ userId, configName: 'revived' });

    const names = (res: ListConfigsResponse) => res.configs.map((c) => c.configName);
    expect(names(await grpc.list({ userId }))).toEqual(['live', 'revived']);
    const all = await grpc.list({ userId, showDeleted: true, view: ConfigView.CONFIG_VIEW_FULL });
    expect(names(all)).toEqual(['gone', 'live', 'revived']);
    expect(all.configs[0]).toMatchObject({ configName: 'gone', version: 2, deleted: true, values: undefined });
    expect(all.configs[2]).toMatchObject({ configName: 'revived', version: 3, deleted: false });
    expect(all.configs[2]?.values).toEqual({ c: 1 });
    // Paging over the deleted ones too.
    expect((await everyPage({ userId, showDeleted: true, pageSize: 1 })).pages).toEqual([
      ['gone'],
      ['live'],
      ['revived'],
    ]);

    // Undeleted, it is listed again; with values now, the schema-only one too.
    await grpc.undelete({ userId, configName: 'gone' });
    await client.put({ userId, configName: 'schema-only', values: {} });
    expect(names(await grpc.list({ userId }))).toEqual(['gone', 'live', 'revived', 'schema-only']);
  });

  it('refuses page tokens of another user and of other lists, bad page sizes and prefixes', async () => {
    const alice = freshUser();
    const bob = freshUser();
    await populate(alice);
    await populate(bob);
    const ofAlice = (await grpc.list({ userId: alice, pageSize: 2 })).nextPageToken;
    expect(ofAlice).not.toBe('');
    expect((await grpc.list({ userId: alice, pageToken: ofAlice })).configs).toHaveLength(6);
    const historyKey = { userId: bob, configName: 'a-one' };
    await client.put({ ...historyKey, values: { more: 1 } });
    const ofHistory = (await client.history({ ...historyKey, pageSize: 1 })).nextPageToken;
    expect(ofHistory).not.toBe('');
    for (const pageToken of [ofAlice, ofHistory, 'garbage', Buffer.from('{"n":1}').toString('base64url')]) {
      const refusal = grpcRefusal(await rejection(grpc.list({ userId: bob, pageToken })));
      expect(refusal, pageToken).toMatchObject({ status: 'INVALID_ARGUMENT', reason: 'PAGE_TOKEN_INVALID' });
      expect(fieldsOf(refusal)).toEqual(['page_token']);
    }
    // A list token is no History token either.
    const ofBob = (await grpc.list({ userId: bob, pageSize: 2 })).nextPageToken;
    expect(grpcRefusal(await rejection(client.history({ ...historyKey, pageToken: ofBob }))).reason).toBe(
      'PAGE_TOKEN_INVALID',
    );
    expect(grpcRefusal(await rejection(grpc.list({ userId: bob, pageSize: -1 })))).toMatchObject({
      status: 'INVALID_ARGUMENT',
      reason: 'PAGE_SIZE_INVALID',
    });
    for (const namePrefix of ['a/b', 'a b', 'x'.repeat(129)]) {
      const refusal = grpcRefusal(await rejection(grpc.list({ userId: bob, namePrefix })));
      expect(refusal, namePrefix).toMatchObject({ status: 'INVALID_ARGUMENT', reason: 'NAME_INVALID' });
      expect(fieldsOf(refusal)).toEqual(['name_prefix']);
    }
    // Larger page sizes are capped, not refused.
    expect((await grpc.list({ userId: bob, pageSize: 1_000_000 })).configs).toHaveLength(8);
  });

  it('over REST: GET /v1/users/{user_id}/configs with paging, prefix, show_deleted and view', async () => {
    const userId = freshUser();
    const sorted = await populate(userId);
    await grpc.delete({ userId, configName: 'Z' });
    const list = (query: string) => http(port, 'GET', `/v1/users/${userId}/configs?${query}`);
    const pages: string[][] = [];
    let token = '';
    do {
      const res = await list(`page_size=3${token === '' ? '' : `&page_token=${token}`}`);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      pages.push(res.json.configs.map((c: any) => c.config_name));
      for (const c of res.json.configs) expect(c).not.toHaveProperty('values');
      token = res.json.next_page_token;
    } while (token !== '');
    const live = sorted.filter((name) => name !== 'Z');
    expect(pages).toEqual([live.slice(0, 3), live.slice(3, 6), live.slice(6)]);

    const full = await list('view=CONFIG_VIEW_FULL&name_prefix=0');
    expect(full.json).toEqual({
      configs: [
        {
          name: `users/${userId}/configs/0-digit`,
          user_id: userId,
          config_name: '0-digit',
          id: expect.any(String),
          version: '1',
          values: { i: 7 },
          update_time: expect.any(String),
          schema_version: '0',
          deleted: false,
          author: 'anonymous',
        },
      ],
      next_page_token: '',
    });
    const deleted = await list('show_deleted=true&name_prefix=Z&view=CONFIG_VIEW_FULL');
    expect(deleted.json.configs).toEqual([expect.objectContaining({ config_name: 'Z', version: '2', deleted: true })]);
    expect(deleted.json.configs[0]).not.toHaveProperty('values');
    expect((await list('name_prefix=Z')).json.configs).toEqual([]);

    const otherUser = freshUser();
    await populate(otherUser);
    const foreign = (await http(port, 'GET', `/v1/users/${otherUser}/configs?page_size=1`)).json.next_page_token;
    expect(restRefusal(await list(`page_token=${foreign}`))).toMatchObject({
      httpStatus: 400,
      reason: 'PAGE_TOKEN_INVALID',
    });
    expect(restRefusal(await list('view=CONFIG_VIEW_NOPE'))).toMatchObject({ httpStatus: 400 });
    expect(restRefusal(await list('page_size=-1'))).toMatchObject({ reason: 'PAGE_SIZE_INVALID' });
    expect(restRefusal(await list('colour=blue'))).toMatchObject({ reason: 'QUERY_PARAMETER_UNKNOWN' });
  });
});

describe('a history mixing every operation', () => {
  it("replays: each entry's changes, applied from {} in order, give that version's values (none for a tombstone)", async () => {
    const key = fresh();
    const rest = restTransport(false);
    const steps: [string, () => Promise<unknown>, JsonObject | undefined][] = [
      ['put', () => client.put({ ...key, values: { a: 1, b: { c: 1 } } }), { a: 1, b: { c: 1 } }],
      ['patch', () => grpc.patch({ ...key, patch: { b: { d: 2 }, e: [1] } }), { a: 1, b: { c: 1, d: 2 }, e: [1] }],
      [
        'set schema',
        () => setSchema(client, { ...key, schema: { type: 'object' } }),
        { a: 1, b: { c: 1, d: 2 }, e: [1] },
      ],
      ['delete', () => grpc.delete(key), undefined],
      ['put after delete', () => sendJson(port, 'PUT', v1(key), { x: 1 }), { x: 1 }],
      ['rollback to 2', () => rest.rollback(key, 2), { a: 1, b: { c: 1, d: 2 }, e: [1] }],
      ['delete (REST)', () => rest.delete(key), undefined],
      ['undelete', () => grpc.undelete(key), { a: 1, b: { c: 1, d: 2 }, e: [1] }],
      ['patch (REST)', () => rest.patch(key, { a: null, b: { c: null } }), { b: { d: 2 }, e: [1] }],
      [
        'set schema with migration values',
        () =>
          setSchema(client, { ...key, schema: { type: 'object', required: ['m'] }, migrationValues: { m: 1, e: [2] } }),
        { m: 1, e: [2] },
      ],
      [
        'rollback to 5 is refused by the schema',
        () => grpc.rollback({ ...key, toVersion: 5 }).catch(() => undefined),
        undefined,
      ],
      ['delete', () => grpc.delete(key), undefined],
      [
        'legacy POST after delete',
        () => sendJson(port, 'POST', `/values/${key.userId}/${key.configName}`, { m: 2 }),
        { m: 2 },
      ],
      ['rollback to 10', () => grpc.rollback({ ...key, toVersion: 10 }), { m: 1, e: [2] }],
    ];
    const expected: (JsonObject | undefined)[] = [];
    for (const [what, step, values] of steps) {
      await step();
      if (what.includes('refused')) continue;
      expected.push(values);
      expect((await trail(key)).length, what).toBe(expected.length);
    }
    expect((await trail(key)).map(([, operation, to]) => [operation, to])).toEqual([
      [OP.PUT, 0],
      [OP.PATCH, 0],
      [OP.SET_SCHEMA, 0],
      [OP.DELETE, 0],
      [OP.PUT, 0],
      [OP.ROLLBACK, 2],
      [OP.DELETE, 0],
      [OP.UNDELETE, 0],
      [OP.PATCH, 0],
      [OP.SET_SCHEMA, 0],
      [OP.DELETE, 0],
      [OP.PUT, 0],
      [OP.ROLLBACK, 10],
    ]);

    // The history, read in pages of 4.
    const entries: { version: number; changes: DomainChange[] }[] = [];
    let pageToken = '';
    do {
      const page = await client.history({ ...key, pageSize: 4, pageToken });
      for (const entry of page.entries) {
        entries.push({
          version: entry.version,
          changes: entry.changes.map((c): DomainChange => {
            switch (c.action) {
              case ChangeAction.CHANGE_ACTION_ADDED:
                return { action: 'added', key: c.key, value: c.value };
              case ChangeAction.CHANGE_ACTION_REMOVED:
                return { action: 'removed', key: c.key, value: c.value };
              case ChangeAction.CHANGE_ACTION_UPDATED:
                return { action: 'updated', key: c.key, value: c.value, oldValue: c.oldValue };
              default:
                throw new Error(`unexpected action ${c.action}`);
            }
          }),
        });
      }
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    expect(entries.map((e) => e.version)).toEqual(expected.map((_, i) => i + 1));

    let values: JsonObject = {};
    for (const [i, entry] of entries.entries()) {
      values = apply(entry.changes, values);
      const want = expected[i];
      if (want === undefined) {
        // A tombstone: every key removed, nothing left; reading it is refused.
        expect(values, `version ${entry.version}`).toEqual({});
        const refusal = grpcRefusal(await rejection(client.get({ ...key, version: entry.version })));
        expect(refusal.status).toBe('NOT_FOUND');
        continue;
      }
      expect(values, `version ${entry.version}`).toEqual(want);
      const stored = (await client.get({ ...key, version: entry.version })).config!;
      expect(jsonEqual(values, stored.values as JsonObject), `version ${entry.version}`).toBe(true);
    }
    expect((await client.get(key)).config?.values).toEqual(values);
  });
});
