import { fromJson, toJson, type JsonValue } from '@bufbuild/protobuf';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { AuthServiceService } from '../../generated/cfgd/v1/auth_service.js';
import { ConfigServiceService } from '../../generated/cfgd/v1/config_service.js';
import { StatusServiceService } from '../../generated/cfgd/v1/status_service.js';
import { CfgdError } from '../../src/domain/index.js';
import type { AnyMethod } from '../../src/transport/methods.js';
import { gatewayRoutes, loadRegistry, type MethodCodec } from '../../src/transport/rest/gateway.js';
import { errorBody } from '../../src/transport/rest/http.js';
import { openApiDocument, openApiPath } from '../../src/transport/rest/openapi.js';

type Definition = Readonly<Record<string, MethodCodec & { readonly responseStream: boolean }>>;

const SERVICES: readonly { name: string; definition: Definition }[] = [
  { name: 'cfgd.v1.ConfigService', definition: ConfigServiceService },
  { name: 'cfgd.v1.AuthService', definition: AuthServiceService },
  { name: 'cfgd.v1.StatusService', definition: StatusServiceService },
];
const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

const registry = loadRegistry();
const doc = openApiDocument({ registry, services: SERVICES.map((s) => s.name), title: 'cfgd', version: '0.0.0-test' });
const schemas = (doc.components as any).schemas as Record<string, any>;
const paths = doc.paths as Record<string, Record<string, any>>;

/** An implementation of every RPC of a definition (by proto name, as main.ts keys them) that is never called. */
function unusedMethods(definition: Definition): Record<string, AnyMethod> {
  const unused = async (): Promise<never> => {
    throw new Error('unused');
  };
  return Object.fromEntries(
    Object.values(definition).map((entry): [string, AnyMethod] => [
      entry.path.slice(entry.path.lastIndexOf('/') + 1),
      entry.responseStream ? { kind: 'server-stream', open: unused } : { kind: 'unary', call: unused },
    ]),
  );
}

/** The OpenAPI form of a template, written independently of openapi.ts: `{field=pattern}` → `{field}`. */
function templatePath(source: string): string {
  return source.replace(/\{([^}=]+)=[^}]*\}/g, '{$1}');
}

function operation(method: string, path: string): any {
  const found = paths[path]?.[method];
  if (found === undefined) throw new Error(`no ${method.toUpperCase()} ${path} in the document`);
  return found;
}

/** What a `$ref` (or a schema) stands for, following references through the document. */
function resolve(schema: any): any {
  let current = schema;
  while (typeof current?.$ref === 'string') current = pointer(current.$ref);
  return current;
}

function pointer(ref: string): any {
  if (!ref.startsWith('#/')) throw new Error(`not a local reference: ${ref}`);
  let current: any = doc;
  for (const token of ref.slice(2).split('/')) {
    const key = token.replace(/~1/g, '/').replace(/~0/g, '~');
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, key)) return undefined;
    current = current[key];
  }
  return current;
}

function refsIn(value: unknown, into: string[] = []): string[] {
  if (Array.isArray(value)) for (const item of value) refsIn(item, into);
  else if (value !== null && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      if (key === '$ref' && typeof inner === 'string') into.push(inner);
      else refsIn(inner, into);
    }
  }
  return into;
}

const SCHEMA_PREFIX = '#/components/schemas/';

/** A validator of instances against the document's component schemas. */
function schemaValidator(): (name: string, value: unknown) => string[] {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  // The proto scalar formats say what a field holds; the schemas' types and patterns check it.
  for (const format of ['int32', 'uint32', 'int64', 'uint64', 'float', 'double']) ajv.addFormat(format, true);
  ajv.addSchema({ $id: 'https://cfgd.test/openapi.json', components: doc.components }, 'openapi');
  return (name, value) => {
    const validate = ajv.getSchema(`https://cfgd.test/openapi.json#/components/schemas/${name}`);
    if (validate === undefined) throw new Error(`no schema ${name}`);
    return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
  };
}

/** A message as the gateway writes it: proto3 JSON with the proto field names and every implicit field. */
function gatewayJson(typeName: string, json: JsonValue): JsonValue {
  const desc = registry.getMessage(typeName);
  if (desc === undefined) throw new Error(`no message ${typeName}`);
  return toJson(desc, fromJson(desc, json, { registry }), {
    useProtoFieldName: true,
    alwaysEmitImplicit: true,
    registry,
  });
}

describe('the OpenAPI document of the REST gateway', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(doc);
    if (!result.valid) console.error(JSON.stringify(result.errors, null, 2));
    expect(result.valid).toBe(true);
  });

  it('describes exactly the routes the gateway serves', () => {
    const served = SERVICES.flatMap(({ name, definition }) =>
      gatewayRoutes({ registry, service: name, methods: unusedMethods(definition), codecs: definition }),
    ).map((route) => `${route.method} ${templatePath(route.template.source)}`);
    const described = Object.entries(paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((key) => HTTP_METHODS.has(key))
        .map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(new Set(served).size).toBe(served.length);
    expect(described.length).toBe(served.length);
    expect(new Set(described)).toEqual(new Set(served));
    expect(served).toContain('GET /v1/users/{user_id}/configs:watch');
    expect(served).toContain('POST /v1/users/{user_id}/configs/{config_name}:rollback');
  });

  it('gives every operation a unique id named after its RPC', () => {
    const ids = Object.values(paths).flatMap((item) => Object.values(item).map((op) => op.operationId as string));
    expect(new Set(ids).size).toBe(ids.length);
    expect(operation('put', '/v1/users/{user_id}/configs/{config_name}')).toMatchObject({
      operationId: 'ConfigService_Put',
      tags: ['ConfigService'],
    });
    expect(operation('get', '/v1/users/{user_id}/configs/{config_name}:watch').operationId).toBe('ConfigService_Watch');
    expect(operation('get', '/v1/users/{user_id}/configs:watch').operationId).toBe('ConfigService_Watch2');
    expect(operation('get', '/v1/status').operationId).toBe('StatusService_GetStatus');
  });

  it('resolves every $ref and holds only the schemas its operations reach', () => {
    const refs = refsIn(doc);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(pointer(ref), ref).toBeDefined();

    const reached = new Set<string>();
    const pending = refsIn(doc.paths);
    while (pending.length > 0) {
      const ref = pending.pop()!;
      expect(ref.startsWith(SCHEMA_PREFIX), ref).toBe(true);
      const name = ref.slice(SCHEMA_PREFIX.length);
      if (reached.has(name)) continue;
      reached.add(name);
      pending.push(...refsIn(schemas[name]));
    }
    expect(new Set(Object.keys(schemas))).toEqual(reached);
    // Request messages whose every field is bound to the path or the query have no schema.
    expect(schemas['cfgd.v1.GetRequest']).toBeUndefined();
  });

  it('binds Put like the gateway: path variables, the values as body, the rest in the query', () => {
    const put = operation('put', '/v1/users/{user_id}/configs/{config_name}');
    const pathParams = put.parameters.filter((p: any) => p.in === 'path');
    expect(pathParams.map((p: any) => p.name)).toEqual(['user_id', 'config_name']);
    for (const p of pathParams) expect(p).toMatchObject({ required: true, schema: { type: 'string' } });
    const query = put.parameters.filter((p: any) => p.in === 'query').map((p: any) => p.name);
    expect(query).toEqual(['expected_version', 'validate_only', 'request_id']);
    const body = put.requestBody.content['application/json'].schema;
    expect(body).toEqual({ $ref: '#/components/schemas/google.protobuf.Struct' });
    expect(resolve(body)).toMatchObject({ type: 'object' });
    expect(resolve(put.responses['200'].content['application/json'].schema)).toBe(schemas['cfgd.v1.PutResponse']);
    expect(put.responses.default.content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/Error',
    });
  });

  it('takes a whole request without its path fields as a `*` body, and no query', () => {
    const rollback = operation('post', '/v1/users/{user_id}/configs/{config_name}:rollback');
    expect(rollback.parameters.map((p: any) => p.in)).toEqual(['path', 'path']);
    const body = rollback.requestBody.content['application/json'].schema;
    expect(Object.keys(body.properties)).toEqual(['to_version', 'expected_version', 'validate_only', 'request_id']);
    // No path variable and a `*` body: the request message itself.
    const create = operation('post', '/v1/tokens');
    expect(create.parameters).toBeUndefined();
    expect(create.requestBody.content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/cfgd.v1.CreateTokenRequest',
    });
  });

  it('describes query parameters of every form the gateway reads', () => {
    const userWatch = operation('get', '/v1/users/{user_id}/configs:watch');
    const byName = Object.fromEntries(userWatch.parameters.map((p: any) => [p.name, p]));
    expect(byName.config_name).toMatchObject({ in: 'query', schema: { type: 'string' } });
    expect(byName.start_version).toMatchObject({ in: 'query', schema: { type: 'string', format: 'int64' } });
    expect(byName.known_versions).toMatchObject({
      in: 'query',
      style: 'deepObject',
      explode: true,
      schema: { type: 'object', additionalProperties: { type: 'string', format: 'int64' } },
    });
    const list = operation('get', '/v1/users/{user_id}/configs');
    const view = list.parameters.find((p: any) => p.name === 'view');
    expect(resolve(view.schema).enum).toEqual(['CONFIG_VIEW_UNSPECIFIED', 'CONFIG_VIEW_BASIC', 'CONFIG_VIEW_FULL']);
    expect(list.parameters.find((p: any) => p.name === 'page_size').schema).toEqual({
      type: 'integer',
      format: 'int32',
    });
    expect(list.parameters.find((p: any) => p.name === 'show_deleted').schema).toEqual({ type: 'boolean' });
  });

  it('answers a server stream with Server-Sent Events', () => {
    for (const path of ['/v1/users/{user_id}/configs/{config_name}:watch', '/v1/users/{user_id}/configs:watch']) {
      const ok = operation('get', path).responses['200'];
      expect(Object.keys(ok.content)).toEqual(['text/event-stream']);
      const [message, error] = ok.content['text/event-stream']['x-itemSchema'].oneOf;
      expect(message.properties.data.contentSchema).toEqual({ $ref: '#/components/schemas/cfgd.v1.WatchResponse' });
      expect(error.properties.data.contentSchema).toEqual({ $ref: '#/components/schemas/Error' });
    }
    expect(Object.keys(operation('get', '/v1/status').responses['200'].content)).toEqual(['application/json']);
  });

  it('answers a google.api.HttpBody with its bytes, of any content type, not the message (RenderConfig)', () => {
    const render = operation('get', '/v1/users/{user_id}/configs/{config_name}:render');
    expect(render.operationId).toBe('ConfigService_RenderConfig');
    expect(render.responses['200'].content).toEqual({ '*/*': { schema: { type: 'string', format: 'binary' } } });
    expect(render.responses['200'].description).toContain('google.api.HttpBody');
    expect(render.responses.default.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
    // The message's schema is reached by no operation.
    expect(schemas['google.api.HttpBody']).toBeUndefined();
    const query = Object.fromEntries(
      render.parameters.filter((p: any) => p.in === 'query').map((p: any) => [p.name, p]),
    );
    expect(Object.keys(query)).toEqual(['format', 'version']);
    expect(resolve(query.format.schema).enum).toEqual([
      'RENDER_FORMAT_UNSPECIFIED',
      'RENDER_FORMAT_JSON',
      'RENDER_FORMAT_YAML',
      'RENDER_FORMAT_ENV',
      'RENDER_FORMAT_PROPERTIES',
    ]);
    // The gateway also takes the short names; the document says which.
    expect(query.format.description).toContain('`json`, `yaml`, `env`, `properties`');
    expect(query.version.schema).toMatchObject({ type: 'string', format: 'int64' });
  });

  it('maps fields by the proto3 JSON mapping with the proto field names', () => {
    const config = schemas['cfgd.v1.Config'];
    expect(Object.keys(config.properties)).toContain('user_id');
    expect(config.properties.version).toMatchObject({ type: 'string', format: 'int64' });
    expect(resolve(config.properties.values)).toMatchObject({ type: 'object' });
    expect(resolve(config.properties.update_time)).toMatchObject({ type: 'string', format: 'date-time' });
    expect(resolve(schemas['cfgd.v1.AuditEntry'].properties.operation).enum).toContain('OPERATION_PUT');
    expect(schemas['cfgd.v1.AuditEntry'].properties.changes).toEqual({
      type: 'array',
      items: { $ref: '#/components/schemas/cfgd.v1.Change' },
    });
    expect(resolve(schemas['cfgd.v1.Change'].properties.value)).not.toHaveProperty('type');
    expect(schemas['cfgd.v1.WorkerStatus'].properties.pid).toEqual({ type: 'integer', format: 'int32' });
    expect(resolve(schemas['cfgd.v1.CreateTokenRequest'].properties.ttl)).toMatchObject({ type: 'string' });
  });

  it('accepts messages as the gateway writes them, and refuses a broken mapping', () => {
    const check = schemaValidator();
    const put = gatewayJson('cfgd.v1.PutResponse', {
      config: {
        name: 'users/u/configs/c',
        user_id: 'u',
        config_name: 'c',
        version: 3,
        values: { a: 1, b: [true, null, 'x'] },
        update_time: '2024-05-01T10:00:00.123Z',
      },
      audit_entry: {
        version: 3,
        create_time: '2024-05-01T10:00:00Z',
        author: 'token:ci',
        changes: [{ action: 'CHANGE_ACTION_ADDED', key: 'a', value: 1 }],
        operation: 'OPERATION_PUT',
      },
      changed: true,
    });
    expect(check('cfgd.v1.PutResponse', put)).toEqual([]);
    const token = gatewayJson('cfgd.v1.CreateTokenResponse', {
      token: { id: 't1', name: 'ci', grants: [{ verb: 'read', resource: 'users/u/configs/*' }] },
      secret: 'cfgd_x',
    });
    expect(check('cfgd.v1.CreateTokenResponse', token)).toEqual([]);
    expect(check('cfgd.v1.GetStatusResponse', gatewayJson('cfgd.v1.GetStatusResponse', { workers: [{}] }))).toEqual([]);

    expect(check('cfgd.v1.Config', { version: 3 })).not.toEqual([]);
    expect(check('cfgd.v1.AuditEntry', { operation: 1 })).not.toEqual([]);
    expect(check('cfgd.v1.Config', { update_time: 'yesterday' })).not.toEqual([]);
  });

  it('describes the error body the gateway writes', () => {
    const check = schemaValidator();
    const invalid = new CfgdError('invalid-argument', 'QUERY_PARAMETER_INVALID', 'query parameter "x": no', {
      metadata: { parameter: 'x' },
      fieldViolations: [{ field: 'x', description: 'no' }],
    });
    expect(check('Error', errorBody(invalid, () => {}).body)).toEqual([]);
    expect(check('Error', errorBody(new Error('boom'), () => {}).body)).toEqual([]);
    expect(check('Error', { error: { code: 400, status: 'OK', message: 'x', details: [] } })).not.toEqual([]);
  });

  it('requires a bearer token everywhere, and says Basic works too', () => {
    expect(doc.security).toEqual([{ bearerAuth: [] }]);
    const scheme = (doc.components as any).securitySchemes.bearerAuth;
    expect(scheme).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(scheme.description).toMatch(/Basic/);
  });

  it('converts path templates as the gateway parses them', () => {
    expect(openApiPath('/v1/users/{user_id}/configs/{config_name}')).toBe('/v1/users/{user_id}/configs/{config_name}');
    expect(openApiPath('/v1/{name=users/*/configs/*}:rollback')).toBe('/v1/{name}:rollback');
    expect(openApiPath('/v1/{config.name=**}')).toBe('/v1/{config.name}');
    expect(() => openApiPath('/v1/*/x')).toThrow(/wildcard/);
  });

  it('refuses a service that is not in the descriptors', () => {
    expect(() => openApiDocument({ registry, services: ['cfgd.v1.Nope'], title: 'cfgd', version: '0' })).toThrow(
      /cfgd\.v1\.Nope/,
    );
  });
});
