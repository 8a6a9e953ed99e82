/**
 * Config schemas end to end: SetSchema / GetSchema / SchemaHistory over gRPC
 * and REST, and every write path (gRPC Put, REST PUT, legacy POST /values)
 * checked against the schema in effect, with every violation listed and
 * nothing written by a refused or dry-run call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangeAction, Operation, type PutResponse } from '../../generated/cfgd/v1/config_service.js';
import { rejection, type TestClient } from '../helpers/client.js';
import { http, sendJson } from '../helpers/http.js';
import {
  fieldsOf,
  getSchema,
  grpcRefusal,
  restRefusal,
  schemaHistory,
  setSchema,
  type Refusal,
} from '../helpers/schemas.js';
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
const fresh = (): Key => ({ userId: 'schemas', configName: `cfg-${++n}` });
const v1 = (key: Key): string => `/v1/users/${key.userId}/configs/${key.configName}`;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
  port = server.cfgd.httpPort;
});
afterAll(async () => server.stop());

const { OPERATION_PUT: PUT, OPERATION_SET_SCHEMA: SET_SCHEMA } = Operation;

/** A schema with several kinds of rules, one of them nested. */
const SERVICE_SCHEMA = {
  type: 'object',
  properties: {
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    name: { type: 'string', minLength: 3 },
    server: {
      type: 'object',
      properties: { host: { type: 'string', pattern: '^[a-z][a-z0-9.-]*$' } },
      required: ['host'],
    },
    mode: { enum: ['active', 'standby'] },
  },
  required: ['port', 'name'],
  additionalProperties: false,
};
const GOOD = { port: 8080, name: 'api', server: { host: 'db.internal' }, mode: 'active' };

/** Values breaking SERVICE_SCHEMA, and each violation they must be refused with: field → description. */
const INVALID: [string, Record<string, unknown>, Record<string, RegExp>][] = [
  ['a wrong type', { port: '8080', name: 'api' }, { 'values/port': /integer/ }],
  [
    'missing required properties, top-level and nested',
    { name: 'api', server: {} },
    { 'values/port': /required.*port/, 'values/server/host': /required.*host/ },
  ],
  [
    'six rules at once',
    { port: 70000, name: 'ab', server: { host: 'Not A Host' }, mode: 'paused', extra: true, 'a/b': 1 },
    {
      'values/port': /65535/,
      'values/name': /3/,
      'values/server/host': /pattern/,
      'values/mode': /allowed/,
      'values/extra': /additional/,
      // A JSON pointer escapes `/` in a key as `~1`.
      'values/a~1b': /additional/,
    },
  ],
];

function expectViolations(refusal: Refusal, expected: Record<string, RegExp>, schemaVersion: number): void {
  expect(refusal).toMatchObject({ status: 'INVALID_ARGUMENT', reason: 'SCHEMA_VIOLATION' });
  expect(refusal.metadata).toEqual({
    schema_version: String(schemaVersion),
    violations: String(Object.keys(expected).length),
  });
  expect(fieldsOf(refusal)).toEqual(Object.keys(expected).sort());
  for (const { field, description } of refusal.fields) expect(description, field).toMatch(expected[field]!);
  expect(refusal.message).toMatch(new RegExp(`^values do not satisfy schema version ${schemaVersion}: `));
}

type WriteResult = { ok: true; version: number } | { ok: false; refusal: Refusal };

/** One way of writing values. */
interface Writer {
  readonly name: string;
  write(key: Key, values: Record<string, unknown>): Promise<WriteResult>;
}

const WRITERS: Writer[] = [
  {
    name: 'gRPC Put',
    write: (key, values) =>
      client.put({ ...key, values }).then(
        (res) => ({ ok: true, version: res.config!.version }),
        (error) => ({ ok: false, refusal: grpcRefusal(error) }),
      ),
  },
  {
    name: 'REST PUT /v1/users/{user_id}/configs/{config_name}',
    async write(key, values) {
      const res = await sendJson(port, 'PUT', v1(key), values);
      return res.status === 200
        ? { ok: true, version: Number(res.json.config.version) }
        : { ok: false, refusal: restRefusal(res) };
    },
  },
  {
    name: 'legacy POST /values/{user_id}/{config_name}',
    async write(key, values) {
      const res = await sendJson(port, 'POST', `/values/${key.userId}/${key.configName}`, values);
      return res.status === 200 ? { ok: true, version: res.json.version } : { ok: false, refusal: restRefusal(res) };
    },
  },
];

function refused(result: WriteResult): Refusal {
  if (result.ok) throw new Error(`expected a refusal, but version ${result.version} was written`);
  return result.refusal;
}

/** The reason a gRPC call was refused (to put in a snapshot). */
const reasonOf = (error: unknown): string | undefined => grpcRefusal(error as never).reason;

/** Everything a write could change about a config, read over gRPC. */
async function snapshot(key: Key): Promise<Record<string, unknown>> {
  return {
    history: await client.history({ ...key, pageSize: 1000 }).catch(reasonOf),
    latest: await client.get(key).catch(reasonOf),
    schema: await getSchema(client, key).catch(reasonOf),
    schemas: await schemaHistory(client, { ...key, pageSize: 1000 }).catch(reasonOf),
  };
}

/** (version, operation, schema version) of every audit entry. */
async function trail(key: Key): Promise<[number, Operation, number][]> {
  const { entries } = await client.history({ ...key, pageSize: 1000 });
  return entries.map((e) => [e.version, e.operation, e.schemaVersion]);
}

describe.each(WRITERS)('writes through $name', (writer) => {
  it('are checked against the schema: valid values are written, invalid ones refused with every violation, writing nothing', async () => {
    const key = fresh();
    await setSchema(client, { ...key, schema: SERVICE_SCHEMA });

    // The first values, written after the schema, are checked too.
    const atSchemaOnly = await snapshot(key);
    expectViolations(refused(await writer.write(key, INVALID[0]![1])), INVALID[0]![2], 1);
    expect(await snapshot(key)).toEqual(atSchemaOnly);

    expect(await writer.write(key, GOOD)).toEqual({ ok: true, version: 2 });
    const before = await snapshot(key);
    for (const [what, values, expected] of INVALID) {
      const refusal = refused(await writer.write(key, values));
      if (writer.name !== 'gRPC Put') expect(refusal.httpStatus, what).toBe(400);
      expectViolations(refusal, expected, 1);
    }
    expect(await snapshot(key)).toEqual(before);

    // The refusals took no version number.
    expect(await writer.write(key, { ...GOOD, port: 9090, mode: 'standby' })).toEqual({ ok: true, version: 3 });
    expect(await trail(key)).toEqual([
      [1, SET_SCHEMA, 1],
      [2, PUT, 1],
      [3, PUT, 1],
    ]);
    expect((await client.get(key)).config).toMatchObject({
      version: 3,
      values: { ...GOOD, port: 9090, mode: 'standby' },
      schemaVersion: 1,
    });
  });
});

describe('violations', () => {
  it('are capped at 100 per answer, over gRPC and REST, and nothing is written', async () => {
    const key = fresh();
    await setSchema(client, { ...key, schema: { type: 'object', additionalProperties: { type: 'integer' } } });
    await client.put({ ...key, values: { k: 1 } });
    const before = await snapshot(key);
    const values = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`k${i}`, 'not a number']));
    const every = new Set(Object.keys(values).map((k) => `values/${k}`));
    for (const refusal of [
      grpcRefusal(await rejection(client.put({ ...key, values }))),
      restRefusal(await sendJson(port, 'PUT', v1(key), values)),
    ]) {
      expect(refusal).toMatchObject({ status: 'INVALID_ARGUMENT', reason: 'SCHEMA_VIOLATION' });
      expect(refusal.fields).toHaveLength(100);
      const fields = fieldsOf(refusal);
      expect(new Set(fields).size).toBe(100);
      for (const field of fields) expect(every.has(field), field).toBe(true);
      for (const { description } of refusal.fields) expect(description).toMatch(/integer/);
      expect(refusal.metadata.schema_version).toBe('1');
      // The count is of every violation, so a client can tell that the list was cut.
      expect(refusal.metadata.violations).toBe('150');
    }
    expect(await snapshot(key)).toEqual(before);
  });
});

describe('audit entries', () => {
  it('record the schema version each version was checked against, in Put, Get, History and over REST', async () => {
    const key = fresh();
    const unchecked = await client.put({ ...key, values: { a: 1 } });
    expect(unchecked.config?.schemaVersion).toBe(0);
    expect(unchecked.auditEntry).toMatchObject({ version: 1, operation: PUT, schemaVersion: 0 });

    const first = await setSchema(client, {
      ...key,
      schema: { type: 'object', properties: { a: { type: 'integer' } } },
    });
    expect(first.changed).toBe(true);
    expect(first.schema).toMatchObject({ schemaVersion: 1, version: 2, author: 'anonymous' });
    expect(first.config).toMatchObject({ version: 2, values: { a: 1 }, schemaVersion: 1 });
    // A schema change without migration values changes no values.
    expect(first.auditEntry).toMatchObject({ version: 2, operation: SET_SCHEMA, schemaVersion: 1, changes: [] });
    expect(first.schema?.createTime).toEqual(first.auditEntry?.createTime);

    const checked = await client.put({ ...key, values: { a: 20 } });
    expect(checked.config).toMatchObject({ version: 3, schemaVersion: 1 });
    expect(checked.auditEntry).toMatchObject({ version: 3, operation: PUT, schemaVersion: 1 });

    const second = await setSchema(client, {
      ...key,
      schema: { type: 'object', properties: { a: { type: 'integer', maximum: 100 } } },
    });
    expect(second.auditEntry).toMatchObject({ version: 4, operation: SET_SCHEMA, schemaVersion: 2 });
    // The new schema is the one checked from now on: 200 satisfied schema version 1, not 2.
    const refusal = grpcRefusal(await rejection(client.put({ ...key, values: { a: 200 } })));
    expect(refusal).toMatchObject({ reason: 'SCHEMA_VIOLATION', metadata: { schema_version: '2', violations: '1' } });
    expect(fieldsOf(refusal)).toEqual(['values/a']);
    const last = await client.put({ ...key, values: { a: 30 } });
    expect(last.auditEntry).toMatchObject({ version: 5, operation: PUT, schemaVersion: 2 });

    expect(await trail(key)).toEqual([
      [1, PUT, 0],
      [2, SET_SCHEMA, 1],
      [3, PUT, 1],
      [4, SET_SCHEMA, 2],
      [5, PUT, 2],
    ]);
    for (const [version, schemaVersion] of [
      [0, 2],
      [1, 0],
      [2, 1],
      [3, 1],
      [4, 2],
    ] as const) {
      expect((await client.get({ ...key, version })).config?.schemaVersion, `version ${version}`).toBe(schemaVersion);
    }

    const rest = await http(port, 'GET', `${v1(key)}/history`);
    expect(rest.json.entries.map((e: any) => [e.version, e.operation, e.schema_version])).toEqual([
      ['1', 'OPERATION_PUT', '0'],
      ['2', 'OPERATION_SET_SCHEMA', '1'],
      ['3', 'OPERATION_PUT', '1'],
      ['4', 'OPERATION_SET_SCHEMA', '2'],
      ['5', 'OPERATION_PUT', '2'],
    ]);
    const latest = await http(port, 'GET', v1(key));
    expect(latest.json.config).toMatchObject({ version: '5', values: { a: 30 }, schema_version: '2' });
    const restPut = await sendJson(port, 'PUT', v1(key), { a: 40 });
    expect(restPut.json.config.schema_version).toBe('2');
    expect(restPut.json.audit_entry).toMatchObject({ version: '6', operation: 'OPERATION_PUT', schema_version: '2' });
  });
});

describe('dry runs', () => {
  const schema = { type: 'object', properties: { port: { type: 'integer' } }, required: ['port'] };

  it('Put validate_only (gRPC and REST) checks the schema and answers the would-be version, writing nothing', async () => {
    const key = fresh();
    await setSchema(client, { ...key, schema });
    const beforeValues = await snapshot(key);
    // Against the schema set before the first values: would be version 2.
    const wouldCreate = await client.put({ ...key, values: { port: 1 }, validateOnly: true });
    expect(wouldCreate).toMatchObject({
      changed: true,
      config: { version: 2, values: { port: 1 }, schemaVersion: 1 },
      auditEntry: { version: 2, operation: PUT, schemaVersion: 1 },
    });
    expect(await snapshot(key)).toEqual(beforeValues);

    await client.put({ ...key, values: { port: 1 } });
    const before = await snapshot(key);
    const grpcDry = await client.put({ ...key, values: { port: 2 }, validateOnly: true });
    expect(grpcDry).toMatchObject({
      changed: true,
      config: { version: 3, values: { port: 2 }, schemaVersion: 1 },
      auditEntry: {
        version: 3,
        operation: PUT,
        schemaVersion: 1,
        changes: [{ action: ChangeAction.CHANGE_ACTION_UPDATED, key: 'port', value: 2, oldValue: 1 }],
      },
    });
    const restDry = await sendJson(port, 'PUT', `${v1(key)}?validate_only=true`, { port: 2 });
    expect(restDry.status).toBe(200);
    expect(restDry.json).toMatchObject({
      changed: true,
      config: { version: '3', values: { port: 2 }, schema_version: '1' },
      audit_entry: { version: '3', operation: 'OPERATION_PUT', schema_version: '1' },
    });

    const grpcBad = grpcRefusal(await rejection(client.put({ ...key, values: { port: 'x' }, validateOnly: true })));
    expectViolations(grpcBad, { 'values/port': /integer/ }, 1);
    const restBad = restRefusal(await sendJson(port, 'PUT', `${v1(key)}?validate_only=true`, { other: 1 }));
    expectViolations(restBad, { 'values/port': /required/ }, 1);
    expect(restBad.httpStatus).toBe(400);

    expect(await snapshot(key)).toEqual(before);
    expect((await client.get(key)).config).toMatchObject({ version: 2, values: { port: 1 } });
  });

  it('SetSchema validate_only (gRPC and REST) answers the would-be schema version, or the refusal, writing nothing', async () => {
    const key = fresh();
    // On a config that does not exist: nothing is created.
    const onNothing = await setSchema(client, { ...key, schema, validateOnly: true });
    expect(onNothing).toMatchObject({
      changed: true,
      config: undefined,
      schema: { schemaVersion: 1, version: 1 },
      auditEntry: { version: 1, operation: SET_SCHEMA, schemaVersion: 1 },
    });
    expect(grpcRefusal(await rejection(getSchema(client, key))).reason).toBe('CONFIG_NOT_FOUND');
    expect(grpcRefusal(await rejection(client.history(key))).reason).toBe('CONFIG_NOT_FOUND');

    await setSchema(client, { ...key, schema });
    await client.put({ ...key, values: { port: 1 } });
    const before = await snapshot(key);
    // The route takes every field in its body: a query parameter (as Put's dry run takes it) is
    // refused rather than dropped, which would turn the dry run into a write.
    const queried = await sendJson(port, 'PUT', `${v1(key)}/schema?validate_only=true`, { schema: { type: 'object' } });
    expect(restRefusal(queried)).toMatchObject({ httpStatus: 400, reason: 'QUERY_PARAMETER_UNKNOWN' });
    expect(await snapshot(key)).toEqual(before);
    const looser = { type: 'object', properties: { port: { type: 'integer' } } };
    expect(await setSchema(client, { ...key, schema: looser, validateOnly: true })).toMatchObject({
      changed: true,
      schema: { schemaVersion: 2, version: 3, schema: looser },
      config: { version: 3, values: { port: 1 }, schemaVersion: 2 },
      auditEntry: { version: 3, operation: SET_SCHEMA, schemaVersion: 2 },
    });
    const rest = await sendJson(port, 'PUT', `${v1(key)}/schema`, { schema: looser, validate_only: true });
    expect(rest.status).toBe(200);
    expect(rest.json).toMatchObject({
      changed: true,
      schema: { schema_version: '2', version: '3' },
      audit_entry: { version: '3', operation: 'OPERATION_SET_SCHEMA', schema_version: '2' },
    });
    // With migration values: the values it would commit.
    expect(
      await setSchema(client, { ...key, schema: looser, migrationValues: { port: 7 }, validateOnly: true }),
    ).toMatchObject({ config: { version: 3, values: { port: 7 } } });

    // Refusals are the same as without validate_only.
    const incompatible = { type: 'object', properties: { port: { type: 'string' } } };
    const gate = grpcRefusal(await rejection(setSchema(client, { ...key, schema: incompatible, validateOnly: true })));
    expect(gate).toMatchObject({ status: 'FAILED_PRECONDITION', reason: 'SCHEMA_INCOMPATIBLE' });
    const invalid = restRefusal(
      await sendJson(port, 'PUT', `${v1(key)}/schema`, {
        schema: { $ref: 'https://example.com/s.json' },
        validate_only: true,
      }),
    );
    expect(invalid).toMatchObject({ status: 'INVALID_ARGUMENT', reason: 'SCHEMA_INVALID' });

    expect(await snapshot(key)).toEqual(before);
    expect((await getSchema(client, key)).schema).toMatchObject({ schemaVersion: 1, schema });
  });
});

describe('the compatibility gate', () => {
  const strict = {
    type: 'object',
    properties: { port: { type: 'integer' }, host: { type: 'string' } },
    required: ['port', 'host'],
  };

  it('refuses a schema the current values do not satisfy, listing the violations, writing nothing', async () => {
    const key = fresh();
    await client.put({ ...key, values: { port: '8080' } });
    await client.put({ ...key, values: { port: '8081' } });
    const before = await snapshot(key);

    const grpc = grpcRefusal(await rejection(setSchema(client, { ...key, schema: strict })));
    const rest = restRefusal(await sendJson(port, 'PUT', `${v1(key)}/schema`, { schema: strict }));
    for (const refusal of [grpc, rest]) {
      expect(refusal).toMatchObject({ status: 'FAILED_PRECONDITION', reason: 'SCHEMA_INCOMPATIBLE' });
      expect(refusal.metadata).toEqual({ version: '2', schema_version: '1', violations: '2' });
      expect(fieldsOf(refusal)).toEqual(['values/host', 'values/port']);
      expect(refusal.message).toContain('migration_values');
    }
    expect(rest.httpStatus).toBe(400);
    expect(await snapshot(key)).toEqual(before);
    expect((await snapshot(key)).schema).toBe('SCHEMA_NOT_FOUND');
  });

  it('commits the schema and migration values together as one version; violating migration values write nothing', async () => {
    const key = fresh();
    await client.put({ ...key, values: { port: '8080', legacy: true } });
    const before = await snapshot(key);

    // Migration values that break the new schema: every violation, under migration_values.
    const grpcBad = grpcRefusal(
      await rejection(setSchema(client, { ...key, schema: strict, migrationValues: { port: 'still text' } })),
    );
    const restBad = restRefusal(
      await sendJson(port, 'PUT', `${v1(key)}/schema`, { schema: strict, migration_values: { port: 'still text' } }),
    );
    for (const refusal of [grpcBad, restBad]) {
      expect(refusal).toMatchObject({
        status: 'INVALID_ARGUMENT',
        reason: 'SCHEMA_VIOLATION',
        metadata: { schema_version: '1', violations: '2' },
      });
      expect(fieldsOf(refusal)).toEqual(['migration_values/host', 'migration_values/port']);
    }
    expect(restBad.httpStatus).toBe(400);
    expect(await snapshot(key)).toEqual(before);

    const migrated = await setSchema(client, {
      ...key,
      schema: strict,
      migrationValues: { port: 8080, host: 'db' },
    });
    expect(migrated.changed).toBe(true);
    expect(migrated.schema).toMatchObject({ schemaVersion: 1, version: 2, schema: strict });
    expect(migrated.config).toMatchObject({ version: 2, values: { port: 8080, host: 'db' }, schemaVersion: 1 });
    expect(migrated.auditEntry).toMatchObject({
      version: 2,
      operation: SET_SCHEMA,
      schemaVersion: 1,
      changes: [
        { action: ChangeAction.CHANGE_ACTION_UPDATED, key: 'port', value: 8080, oldValue: '8080' },
        { action: ChangeAction.CHANGE_ACTION_REMOVED, key: 'legacy', value: true },
        { action: ChangeAction.CHANGE_ACTION_ADDED, key: 'host', value: 'db' },
      ],
    });

    // One new version holding both; every read agrees.
    expect(await trail(key)).toEqual([
      [1, PUT, 0],
      [2, SET_SCHEMA, 1],
    ]);
    expect(await client.get(key)).toMatchObject({
      latestVersion: 2,
      config: { version: 2, values: { port: 8080, host: 'db' }, schemaVersion: 1 },
    });
    expect((await client.get({ ...key, version: 1 })).config?.values).toEqual({ port: '8080', legacy: true });
    const current = await getSchema(client, key);
    expect(current).toMatchObject({ latestSchemaVersion: 1, schema: { schemaVersion: 1, version: 2, schema: strict } });
    const history = await schemaHistory(client, key);
    expect(history.schemas).toEqual([current.schema]);
    expect(history.latestSchemaVersion).toBe(1);
    const rest = await http(port, 'GET', `${v1(key)}/schema`);
    expect(rest.json).toMatchObject({
      latest_schema_version: '1',
      schema: { schema_version: '1', version: '2', schema: strict },
    });

    // Over REST too, with a schema that the migrated values satisfy only after migrating again.
    const renamed = { type: 'object', properties: { listen: { type: 'integer' } }, required: ['listen'] };
    const viaRest = await sendJson(port, 'PUT', `${v1(key)}/schema`, {
      schema: renamed,
      migration_values: { listen: 8080 },
      expected_schema_version: 1,
      expected_version: 2,
    });
    expect(viaRest.status).toBe(200);
    expect(viaRest.json).toMatchObject({
      changed: true,
      schema: { schema_version: '2', version: '3' },
      config: { version: '3', values: { listen: 8080 }, schema_version: '2' },
      audit_entry: { operation: 'OPERATION_SET_SCHEMA', schema_version: '2' },
    });
    expect((await client.get(key)).config?.values).toEqual({ listen: 8080 });
  });

  it('expected_schema_version is a compare-and-set on the schema: ABORTED on a mismatch, writing nothing', async () => {
    const key = fresh();
    const s = (maximum: number) => ({ type: 'object', properties: { n: { type: 'integer', maximum } } });
    await client.put({ ...key, values: { n: 1 } });
    expect((await setSchema(client, { ...key, schema: s(10), expectedSchemaVersion: 0 })).schema?.schemaVersion).toBe(
      1,
    );
    const before = await snapshot(key);

    const stale = grpcRefusal(await rejection(setSchema(client, { ...key, schema: s(20), expectedSchemaVersion: 0 })));
    expect(stale).toMatchObject({
      status: 'ABORTED',
      reason: 'SCHEMA_VERSION_MISMATCH',
      metadata: { expected_schema_version: '0', current_schema_version: '1' },
    });
    const ahead = restRefusal(
      await sendJson(port, 'PUT', `${v1(key)}/schema`, { schema: s(20), expected_schema_version: 2 }),
    );
    expect(ahead).toMatchObject({
      status: 'ABORTED',
      httpStatus: 409,
      reason: 'SCHEMA_VERSION_MISMATCH',
      metadata: { expected_schema_version: '2', current_schema_version: '1' },
    });
    const version = grpcRefusal(await rejection(setSchema(client, { ...key, schema: s(20), expectedVersion: 1 })));
    expect(version).toMatchObject({ status: 'ABORTED', reason: 'VERSION_MISMATCH' });
    expect(await snapshot(key)).toEqual(before);

    const next = await setSchema(client, { ...key, schema: s(20), expectedSchemaVersion: 1, expectedVersion: 2 });
    expect(next.schema).toMatchObject({ schemaVersion: 2, version: 3 });
    // The same expectation again is now stale.
    const again = grpcRefusal(await rejection(setSchema(client, { ...key, schema: s(30), expectedSchemaVersion: 1 })));
    expect(again.reason).toBe('SCHEMA_VERSION_MISMATCH');
    expect((await getSchema(client, key)).schema?.schema).toEqual(s(20));
  });

  it('the same schema again changes nothing: changed=false, no new version', async () => {
    const key = fresh();
    await client.put({ ...key, values: { port: 1, host: 'h' } });
    const first = await setSchema(client, { ...key, schema: strict });
    const before = await snapshot(key);
    // Equal as JSON, keys in another order.
    const same = {
      required: ['port', 'host'],
      properties: { host: { type: 'string' }, port: { type: 'integer' } },
      type: 'object',
    };
    const again = await setSchema(client, { ...key, schema: same });
    expect(again.changed).toBe(false);
    expect(again.schema).toEqual(first.schema);
    expect(again.config).toEqual(first.config);
    expect(again.auditEntry).toEqual(first.auditEntry);
    const rest = await sendJson(port, 'PUT', `${v1(key)}/schema`, { schema: strict });
    expect(rest.json.changed).toBe(false);
    expect(await snapshot(key)).toEqual(before);
  });
});

describe('a schema set before the first values', () => {
  it('is version 1 without values: Get answers NOT_FOUND, History lists it, the first Put is checked and is version 2', async () => {
    const key = fresh();
    const schema = { type: 'object', properties: { port: { type: 'integer' } }, required: ['port'] };
    const set = await setSchema(client, { ...key, schema });
    expect(set.changed).toBe(true);
    expect(set.config).toBeUndefined();
    expect(set.schema).toMatchObject({ schemaVersion: 1, version: 1, schema });
    expect(set.auditEntry).toMatchObject({ version: 1, operation: SET_SCHEMA, schemaVersion: 1, changes: [] });

    const get = grpcRefusal(await rejection(client.get(key)));
    expect(get).toMatchObject({ status: 'NOT_FOUND', reason: 'CONFIG_NOT_FOUND' });
    const restGet = restRefusal(await http(port, 'GET', v1(key)));
    expect(restGet).toMatchObject({ status: 'NOT_FOUND', httpStatus: 404, reason: 'CONFIG_NOT_FOUND' });
    const legacyGet = restRefusal(await http(port, 'GET', `/values/${key.userId}/${key.configName}`));
    expect(legacyGet).toMatchObject({ httpStatus: 404, reason: 'CONFIG_NOT_FOUND' });
    const history = await client.history(key);
    expect(history.latestVersion).toBe(1);
    expect(history.entries).toEqual([set.auditEntry]);
    expect((await getSchema(client, key)).schema).toEqual(set.schema);

    // The first values are checked against it.
    const refusal = grpcRefusal(await rejection(client.put({ ...key, values: { port: 'eighty' } })));
    expectViolations(refusal, { 'values/port': /integer/ }, 1);
    expect(await trail(key)).toEqual([[1, SET_SCHEMA, 1]]);

    const put: PutResponse = await client.put({ ...key, values: { port: 80, extra: 'x' } });
    expect(put.changed).toBe(true);
    expect(put.config).toMatchObject({ version: 2, values: { port: 80, extra: 'x' }, schemaVersion: 1 });
    // Its changes are from no values at all.
    expect(put.auditEntry?.changes).toEqual([
      { action: ChangeAction.CHANGE_ACTION_ADDED, key: 'port', value: 80, oldValue: undefined },
      { action: ChangeAction.CHANGE_ACTION_ADDED, key: 'extra', value: 'x', oldValue: undefined },
    ]);
    expect(await client.get(key)).toMatchObject({ latestVersion: 2, config: { version: 2 } });
    expect(grpcRefusal(await rejection(client.get({ ...key, version: 1 }))).reason).toBe('VERSION_NOT_FOUND');
    expect(await trail(key)).toEqual([
      [1, SET_SCHEMA, 1],
      [2, PUT, 1],
    ]);
  });

  it('create-if-absent (expected_version 0) still creates it, once: it has no values yet', async () => {
    const key = fresh();
    await setSchema(client, { ...key, schema: { type: 'object' } });
    const first = await client.put({ ...key, values: { a: 1 }, expectedVersion: 0 });
    expect(first.config?.version).toBe(2);
    // Now it exists: a second create-if-absent is refused, through gRPC and the legacy If-Match alike.
    expect(grpcRefusal(await rejection(client.put({ ...key, values: { a: 2 }, expectedVersion: 0 }))).reason).toBe(
      'VERSION_MISMATCH',
    );
    const legacy = await sendJson(
      port,
      'POST',
      `/values/${key.userId}/${key.configName}`,
      { a: 3 },
      { 'if-match': '"0"' },
    );
    expect(restRefusal(legacy)).toMatchObject({ httpStatus: 409, reason: 'VERSION_MISMATCH' });
    expect((await client.get(key)).config?.values).toEqual({ a: 1 });
  });

  it('can come with migration values: then version 1 holds them', async () => {
    const key = fresh();
    const set = await setSchema(client, {
      ...key,
      schema: { type: 'object', required: ['a'] },
      migrationValues: { a: 1 },
    });
    expect(set.config).toMatchObject({ version: 1, values: { a: 1 }, schemaVersion: 1 });
    expect(set.auditEntry?.changes).toEqual([
      { action: ChangeAction.CHANGE_ACTION_ADDED, key: 'a', value: 1, oldValue: undefined },
    ]);
    expect((await client.get(key)).config).toMatchObject({ version: 1, values: { a: 1 } });
  });
});

describe('hostile schemas', () => {
  it('a catastrophically backtracking pattern is checked in linear time while other calls keep answering', async () => {
    const key = fresh();
    const other = fresh();
    await client.put({ ...other, values: { ok: true } });
    await setSchema(client, {
      ...key,
      schema: { type: 'object', properties: { s: { type: 'string', pattern: '^(a+)+$' } } },
    });
    // The pattern is enforced: a match passes, a non-match does not.
    expect((await client.put({ ...key, values: { s: 'aaaa' } })).config?.version).toBe(2);
    const before = await snapshot(key);

    // A backtracking engine would take exponential time on this; with it the event loop, and so
    // every other call, would never come back. That these calls complete at all is the proof.
    const hostile = { s: 'a'.repeat(50_000) + '!' };
    const started = performance.now();
    const [grpcError, restAnswer, gets, restGets] = await Promise.all([
      rejection(client.put({ ...key, values: hostile })),
      sendJson(port, 'PUT', v1(key), hostile),
      Promise.all(Array.from({ length: 10 }, () => client.get(other))),
      Promise.all(Array.from({ length: 10 }, () => http(port, 'GET', v1(other)))),
    ]);
    console.log(
      `hostile pattern: two 50 KB checks and 20 concurrent Gets took ${(performance.now() - started).toFixed(0)} ms`,
    );
    for (const refusal of [grpcRefusal(grpcError), restRefusal(restAnswer)]) {
      expectViolations(refusal, { 'values/s': /pattern/ }, 1);
    }
    for (const got of gets) expect(got.config?.values).toEqual({ ok: true });
    for (const got of restGets) expect(got.json.config.values).toEqual({ ok: true });
    expect(await snapshot(key)).toEqual(before);
  });

  const outside: [string, unknown][] = [
    ['a remote $ref', { $ref: 'https://example.com/s.json' }],
    ['a file: $ref', { $ref: 'file:///etc/passwd' }],
    ['a relative $ref', { $ref: 'other.json#/x' }],
    [
      'a remote $ref nested in properties',
      { type: 'object', properties: { a: { $ref: 'https://example.com/s.json' } } },
    ],
    ['a relative $ref under a remote $id', { $id: 'https://example.com/root.json', $ref: 'other.json' }],
    ['a remote $dynamicRef', { $dynamicRef: 'https://example.com/s.json#meta' }],
  ];

  it.each(outside)(
    '%s is SCHEMA_INVALID, on a new config and on one with a schema, writing nothing',
    async (_, schema) => {
      const blank = fresh();
      const existing = fresh();
      const current = { type: 'object', properties: { a: { type: 'integer' } } };
      await client.put({ ...existing, values: { a: 1 } });
      await setSchema(client, { ...existing, schema: current });
      const before = await snapshot(existing);
      const refusals = [
        grpcRefusal(await rejection(setSchema(client, { ...blank, schema: schema as never }))),
        grpcRefusal(await rejection(setSchema(client, { ...existing, schema: schema as never }))),
        restRefusal(await sendJson(port, 'PUT', `${v1(existing)}/schema`, { schema })),
      ];
      for (const refusal of refusals) {
        expect(refusal).toMatchObject({ status: 'INVALID_ARGUMENT', reason: 'SCHEMA_INVALID' });
        expect(refusal.fields.map((f) => f.field)).toEqual(['schema']);
        expect(refusal.message).toMatch(/outside the schema/);
      }
      expect(grpcRefusal(await rejection(client.history(blank))).reason).toBe('CONFIG_NOT_FOUND');
      expect(await snapshot(existing)).toEqual(before);
      // The old schema still guards writes.
      expect(grpcRefusal(await rejection(client.put({ ...existing, values: { a: 'x' } }))).reason).toBe(
        'SCHEMA_VIOLATION',
      );
    },
  );

  it('a local $ref is taken and enforced', async () => {
    const key = fresh();
    await setSchema(client, {
      ...key,
      schema: {
        $defs: { port: { type: 'integer', minimum: 1 } },
        type: 'object',
        properties: { listen: { $ref: '#/$defs/port' }, admin: { $ref: '#/$defs/port' } },
      },
    });
    const refusal = grpcRefusal(await rejection(client.put({ ...key, values: { listen: 0, admin: 'x' } })));
    expectViolations(refusal, { 'values/listen': />= 1/, 'values/admin': /integer/ }, 1);
    expect((await client.put({ ...key, values: { listen: 80, admin: 81 } })).config?.version).toBe(2);
  });

  const unrunnable: [string, unknown][] = [
    ['a backreference in pattern', { type: 'object', properties: { s: { type: 'string', pattern: '^(a)\\1$' } } }],
    ['a lookahead in pattern', { type: 'object', properties: { s: { type: 'string', pattern: '^(?=a)a' } } }],
    ['a backreference in patternProperties', { type: 'object', patternProperties: { '^(x)\\1$': { type: 'string' } } }],
  ];

  it.each(unrunnable)('%s is SCHEMA_INVALID, writing nothing', async (_, schema) => {
    const key = fresh();
    await client.put({ ...key, values: { s: 'a' } });
    const before = await snapshot(key);
    for (const refusal of [
      grpcRefusal(await rejection(setSchema(client, { ...key, schema: schema as never }))),
      restRefusal(await sendJson(port, 'PUT', `${v1(key)}/schema`, { schema })),
    ]) {
      expect(refusal).toMatchObject({ status: 'INVALID_ARGUMENT', reason: 'SCHEMA_INVALID' });
      expect(refusal.message).toMatch(/linear time/);
    }
    expect(await snapshot(key)).toEqual(before);
  });

  it('a schema over 256 KiB, one that is not draft 2020-12, and a missing one are SCHEMA_INVALID', async () => {
    const key = fresh();
    await client.put({ ...key, values: { a: 1 } });
    const before = await snapshot(key);
    const big = { type: 'object', description: 'x'.repeat(256 * 1024) };
    const tooBig = grpcRefusal(await rejection(setSchema(client, { ...key, schema: big })));
    expect(tooBig).toMatchObject({ reason: 'SCHEMA_INVALID' });
    expect(tooBig.message).toMatch(/larger than 262144 bytes/);
    for (const schema of [{ type: 'whole number' }, { minimum: 'one' }, { notAKeyword: true }]) {
      const refusal = grpcRefusal(await rejection(setSchema(client, { ...key, schema })));
      expect(refusal, JSON.stringify(schema)).toMatchObject({ status: 'INVALID_ARGUMENT', reason: 'SCHEMA_INVALID' });
    }
    const missing = grpcRefusal(await rejection(setSchema(client, { ...key })));
    expect(missing).toMatchObject({ status: 'INVALID_ARGUMENT', reason: 'SCHEMA_INVALID' });
    expect(await snapshot(key)).toEqual(before);
    // Just under the limit is fine.
    const fits = { type: 'object', description: 'x'.repeat(255 * 1024) };
    expect((await setSchema(client, { ...key, schema: fits })).schema?.schemaVersion).toBe(1);
  });
});

describe('schema history and GetSchema', () => {
  const schemaNo = (i: number) => ({ type: 'object', properties: { n: { type: 'integer', maximum: 100 * i } } });

  async function withSchemas(count: number): Promise<Key> {
    const key = fresh();
    await client.put({ ...key, values: { n: 1 } });
    for (let i = 1; i <= count; i++) await setSchema(client, { ...key, schema: schemaNo(i) });
    return key;
  }

  it('pages through every schema version in order with tokens, and starts at start_schema_version', async () => {
    const key = await withSchemas(5);
    const pages: number[][] = [];
    const tokens: string[] = [];
    let pageToken = '';
    do {
      const page = await schemaHistory(client, { ...key, pageSize: 2, pageToken });
      expect(page.latestSchemaVersion).toBe(5);
      pages.push(page.schemas.map((s) => s.schemaVersion));
      for (const s of page.schemas) {
        // Schema version i was set by config version i + 1 (version 1 holds the first values).
        expect(s).toMatchObject({
          version: s.schemaVersion + 1,
          schema: schemaNo(s.schemaVersion),
          author: 'anonymous',
        });
      }
      pageToken = page.nextPageToken;
      tokens.push(pageToken);
    } while (pageToken !== '');
    expect(pages).toEqual([[1, 2], [3, 4], [5]]);
    expect(tokens.map((t) => t !== '')).toEqual([true, true, false]);

    const tail = await schemaHistory(client, { ...key, startSchemaVersion: 4 });
    expect(tail.schemas.map((s) => s.schemaVersion)).toEqual([4, 5]);
    expect(tail.nextPageToken).toBe('');
    expect((await schemaHistory(client, { ...key, startSchemaVersion: 9 })).schemas).toEqual([]);

    // The same over REST.
    const restVersions: string[] = [];
    let restToken = '';
    let restPages = 0;
    do {
      const query = `page_size=2${restToken === '' ? '' : `&page_token=${restToken}`}`;
      const page = await http(port, 'GET', `${v1(key)}/schema/history?${query}`);
      expect(page.status).toBe(200);
      restVersions.push(...page.json.schemas.map((s: any) => s.schema_version));
      restToken = page.json.next_page_token;
      restPages++;
    } while (restToken !== '');
    expect(restPages).toBe(3);
    expect(restVersions).toEqual(['1', '2', '3', '4', '5']);
    const restTail = await http(port, 'GET', `${v1(key)}/schema/history?start_schema_version=5`);
    expect(restTail.json.schemas.map((s: any) => s.schema_version)).toEqual(['5']);
  });

  it('refuses page tokens of another config, of History, and garbage (PAGE_TOKEN_INVALID)', async () => {
    const a = await withSchemas(3);
    const b = await withSchemas(3);
    const ofA = (await schemaHistory(client, { ...a, pageSize: 1 })).nextPageToken;
    expect(ofA).not.toBe('');
    // A's token works for A.
    expect((await schemaHistory(client, { ...a, pageToken: ofA })).schemas.map((s) => s.schemaVersion)).toEqual([2, 3]);
    const historyToken = (await client.history({ ...b, pageSize: 1 })).nextPageToken;
    expect(historyToken).not.toBe('');
    for (const pageToken of [ofA, historyToken, 'garbage']) {
      const refusal = grpcRefusal(await rejection(schemaHistory(client, { ...b, pageToken })));
      expect(refusal, pageToken).toMatchObject({ status: 'INVALID_ARGUMENT', reason: 'PAGE_TOKEN_INVALID' });
      expect(refusal.fields.map((f) => f.field)).toEqual(['page_token']);
    }
    const rest = restRefusal(await http(port, 'GET', `${v1(b)}/schema/history?page_token=${ofA}`));
    expect(rest).toMatchObject({ httpStatus: 400, reason: 'PAGE_TOKEN_INVALID' });
  });

  it('GetSchema reads the current or a given schema version; SCHEMA_NOT_FOUND for a missing one', async () => {
    const key = await withSchemas(5);
    const current = await getSchema(client, key);
    expect(current).toMatchObject({
      latestSchemaVersion: 5,
      schema: { schemaVersion: 5, version: 6, schema: schemaNo(5) },
    });
    const third = await getSchema(client, { ...key, schemaVersion: 3 });
    expect(third).toMatchObject({
      latestSchemaVersion: 5,
      schema: { schemaVersion: 3, version: 4, schema: schemaNo(3) },
    });
    const history = await schemaHistory(client, key);
    expect(history.schemas[2]).toEqual(third.schema);

    const rest = await http(port, 'GET', `${v1(key)}/schema?schema_version=3`);
    expect(rest.status).toBe(200);
    expect(rest.json).toMatchObject({
      latest_schema_version: '5',
      schema: { schema_version: '3', version: '4', schema: schemaNo(3) },
    });

    const missing = grpcRefusal(await rejection(getSchema(client, { ...key, schemaVersion: 6 })));
    expect(missing).toMatchObject({
      status: 'NOT_FOUND',
      reason: 'SCHEMA_NOT_FOUND',
      metadata: { schema_version: '6', latest_schema_version: '5' },
    });
    const restMissing = restRefusal(await http(port, 'GET', `${v1(key)}/schema?schema_version=6`));
    expect(restMissing).toMatchObject({ httpStatus: 404, reason: 'SCHEMA_NOT_FOUND' });
    const negative = grpcRefusal(await rejection(getSchema(client, { ...key, schemaVersion: -1 })));
    expect(negative.status).toBe('INVALID_ARGUMENT');

    // A config without a schema, and one that was never written.
    const plain = fresh();
    await client.put({ ...plain, values: { a: 1 } });
    expect(grpcRefusal(await rejection(getSchema(client, plain)))).toMatchObject({
      status: 'NOT_FOUND',
      reason: 'SCHEMA_NOT_FOUND',
    });
    expect(await schemaHistory(client, plain)).toEqual({ schemas: [], nextPageToken: '', latestSchemaVersion: 0 });
    const never = fresh();
    expect(grpcRefusal(await rejection(getSchema(client, never)))).toMatchObject({
      status: 'NOT_FOUND',
      reason: 'CONFIG_NOT_FOUND',
    });
    expect(grpcRefusal(await rejection(schemaHistory(client, never))).reason).toBe('CONFIG_NOT_FOUND');
    expect(restRefusal(await http(port, 'GET', `${v1(never)}/schema`))).toMatchObject({
      httpStatus: 404,
      reason: 'CONFIG_NOT_FOUND',
    });
  });
});
