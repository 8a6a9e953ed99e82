import {
  createFileRegistry,
  fromBinary,
  fromJson,
  getOption,
  ScalarType,
  toBinary,
  toJson,
  type DescField,
  type DescMessage,
  type DescMethod,
  type FileRegistry,
  type JsonValue,
} from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { FILE_DESCRIPTOR_SET_BASE64 } from '../../../generated/descriptors.js';
import { CfgdError } from '../../domain/index.js';
import type { AnyMethod, MessageStream } from '../methods.js';
import { HttpStatusError } from '../status.js';
import { errorBody, etagOf, ifMatchVersion, noneMatch, sendJson, type Exchange, type Route } from './http.js';
import { parseTemplate } from './path-template.js';
import { drained } from '../drained.js';

/** The protos' descriptors, as compiled by `npm run generate`. */
export function loadRegistry(): FileRegistry {
  const bytes = Buffer.from(FILE_DESCRIPTOR_SET_BASE64, 'base64');
  return createFileRegistry(fromBinary(FileDescriptorSetSchema, bytes));
}

/** How a method's messages cross the wire in binary, from the ts-proto service definition. */
export interface MethodCodec {
  readonly path: string;
  requestDeserialize(bytes: Buffer): unknown;
  responseSerialize(message: never): Buffer;
}

export interface GatewayOptions {
  readonly registry: FileRegistry;
  /** Fully qualified service name, e.g. `cfgd.v1.ConfigService`. */
  readonly service: string;
  /** Implementations by proto method name. */
  readonly methods: Readonly<Record<string, AnyMethod>>;
  /** The ts-proto service definition (its entries carry `path` and the binary codecs). */
  readonly codecs: Readonly<Record<string, MethodCodec>>;
  readonly onUnexpected: (error: unknown) => void;
}

interface HttpRule {
  readonly pattern: { readonly case: string | undefined; readonly value?: unknown };
  readonly body: string;
  readonly additionalBindings: readonly HttpRule[];
}

const JSON_WRITE = { useProtoFieldName: true, alwaysEmitImplicit: true } as const;

/**
 * Routes for every RPC of `service` that carries a `google.api.http`
 * annotation, with grpc-gateway semantics: path template variables, the
 * `body` mapping (`*` or one field), query parameters for the other fields,
 * proto3 JSON with the proto field names. Unary RPCs answer JSON; server
 * streams answer Server-Sent Events. An annotated RPC without an
 * implementation fails here, at start.
 */
export function gatewayRoutes(options: GatewayOptions): Route[] {
  const { registry } = options;
  const service = registry.getService(options.service);
  if (service === undefined) throw new Error(`service ${options.service} is not in the descriptors`);
  const http = registry.getExtension('google.api.http');
  if (http === undefined) throw new Error('google.api.http is not in the descriptors');
  const codecs = new Map(Object.values(options.codecs).map((codec) => [codec.path, codec]));

  const routes: Route[] = [];
  for (const method of service.methods) {
    const rule = getOption(method, http) as HttpRule | undefined;
    if (rule?.pattern.case === undefined) continue;
    const implementation = options.methods[method.name];
    const codec = codecs.get(`/${service.typeName}/${method.name}`);
    if (implementation === undefined || codec === undefined) {
      throw new Error(`${service.typeName}.${method.name} is annotated but has no implementation`);
    }
    for (const binding of [rule, ...rule.additionalBindings]) {
      routes.push(bindingRoute(options, method, binding, implementation, codec));
    }
  }
  return routes;
}

function bindingRoute(
  options: GatewayOptions,
  method: DescMethod,
  binding: HttpRule,
  implementation: AnyMethod,
  codec: MethodCodec,
): Route {
  const { pattern, body } = binding;
  let verb: string;
  let path: string;
  if (pattern.case === 'custom') {
    const custom = pattern.value as { kind: string; path: string };
    verb = custom.kind.toUpperCase();
    path = custom.path;
  } else {
    verb = String(pattern.case).toUpperCase();
    path = String(pattern.value);
  }
  const template = parseTemplate(path);
  const input = method.input;
  if (body !== '' && body !== '*' && fieldByPath(input, body) === undefined) {
    throw new Error(`${method.name}: body field "${body}" is not in ${input.typeName}`);
  }
  for (const field of template.fields) {
    if (fieldByPath(input, field) === undefined) throw new Error(`${method.name}: ${field} is not in ${input.typeName}`);
  }

  const takesExpectedVersion = input.fields.some((f) => f.name === 'expected_version');
  // A message sent to many streams (a watch event) is encoded once: keyed on the message object.
  const encodings = new WeakMap<object, string>();
  const encodeEvents = (message: unknown): string => {
    let text = encodings.get(message as object);
    if (text === undefined) {
      text = JSON.stringify(encodeResponse(options.registry, method.output, codec, message));
      encodings.set(message as object, text);
    }
    return text;
  };

  return {
    method: verb,
    template,
    name: `${method.parent.typeName}.${method.name}`,
    async handle(exchange) {
      const json = await requestJson(exchange, input, body, template.fields);
      if (takesExpectedVersion) {
        const expected = ifMatchVersion(exchange.req);
        if (expected !== undefined) json.expected_version = String(expected);
      }
      const request = decodeRequest(options.registry, input, json, codec);
      if (implementation.kind === 'unary') {
        const response = await implementation.call(request, exchange.ctx);
        const version = configVersionOf(response);
        const headers: Record<string, string> = version === undefined ? {} : { etag: etagOf(version) };
        if (verb === 'GET' && version !== undefined && noneMatch(exchange.req, etagOf(version))) {
          exchange.res.writeHead(304, headers).end();
          return;
        }
        sendJson(exchange.res, 200, encodeResponse(options.registry, method.output, codec, response), headers);
      } else {
        const stream = await implementation.open(request, exchange.ctx);
        // Event ids (versions) let a client resume with Last-Event-ID; only a stream of one config has them.
        const withIds = typeof json.config_name === 'string' && json.config_name !== '';
        await serveEvents(exchange, stream, encodeEvents, withIds, options);
      }
    },
  };
}

/** Builds the request's proto3 JSON from the body, the path variables, the query and headers. */
async function requestJson(
  exchange: Exchange,
  input: DescMessage,
  body: string,
  pathFields: readonly string[],
): Promise<Record<string, JsonValue>> {
  const json: Record<string, JsonValue> = {};
  if (body !== '') {
    const parsed = await exchange.readJsonBody();
    if (body === '*') {
      if (parsed !== undefined) Object.assign(json, requireObject(undefined, parsed));
    } else if (parsed !== undefined) {
      // A message field takes a JSON object; anything else would fail proto3 JSON parsing less clearly.
      if (fieldByPath(input, body)?.fieldKind === 'message') requireObject(body, parsed);
      setPath(json, body, parsed as JsonValue);
    }
  }
  const bound = new Set([...pathFields, ...(body === '' || body === '*' ? [] : [body])]);
  if (body !== '*') {
    for (const name of new Set(exchange.url.searchParams.keys())) {
      const entry = MAP_ENTRY_PARAM.exec(name);
      if (entry !== null) {
        // grpc-gateway's syntax for map fields: `field[key]=value`.
        const mapField = fieldByPath(input, entry[1]!);
        if (mapField?.fieldKind !== 'map' || bound.has(entry[1]!)) {
          throw new HttpStatusError(400, 'invalid-argument', 'QUERY_PARAMETER_UNKNOWN', `unknown query parameter "${name}"`);
        }
        const map = (json[entry[1]!] ??= {}) as Record<string, JsonValue>;
        map[entry[2]!] = exchange.url.searchParams.getAll(name).at(-1)!;
        continue;
      }
      const field = fieldByPath(input, name);
      if (field === undefined || bound.has(name)) {
        throw new HttpStatusError(
          400,
          'invalid-argument',
          'QUERY_PARAMETER_UNKNOWN',
          `unknown query parameter "${name}"`,
        );
      }
      const values = exchange.url.searchParams.getAll(name).map((value) => queryValue(name, field, value));
      setPath(json, name, field.fieldKind === 'list' ? values : (values.at(-1) as JsonValue));
    }
  }
  for (const [field, value] of Object.entries(exchange.params)) setPath(json, field, value);
  if (input.fields.some((f) => f.name === 'start_version') && typeof json.config_name === 'string' && json.config_name !== '') {
    const lastEventId = exchange.req.headers['last-event-id'];
    if (typeof lastEventId === 'string' && lastEventId !== '') {
      if (!/^\d+$/.test(lastEventId)) {
        throw new HttpStatusError(400, 'invalid-argument', 'LAST_EVENT_ID_INVALID', 'Last-Event-ID must be a version number');
      }
      json.start_version = lastEventId;
    }
  }
  return json;
}

function requireObject(field: string | undefined, value: unknown): Record<string, JsonValue> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    // Named after the field the body maps to, as the app layer names it: VALUES_NOT_OBJECT.
    const reason = field === undefined ? 'BODY_NOT_OBJECT' : `${field.toUpperCase().replace(/\./g, '_')}_NOT_OBJECT`;
    const what = field ?? 'the request body';
    throw new CfgdError('invalid-argument', reason, `${what}: must be a JSON object, got ${kind}`, {
      fieldViolations: [{ field: field ?? 'body', description: 'must be a JSON object' }],
    });
  }
  return value as Record<string, JsonValue>;
}

const MAP_ENTRY_PARAM = /^([a-z_][a-z0-9_.]*)\[([^\]]+)\]$/;

/** Query strings are text; proto3 JSON takes numbers and enums as strings, but booleans only as booleans. */
function queryValue(name: string, field: DescField, value: string): JsonValue {
  const scalar = field.fieldKind === 'scalar' || field.fieldKind === 'list' ? field.scalar : undefined;
  if (scalar === ScalarType.BOOL) {
    if (value === 'true' || value === 'false') return value === 'true';
    throw new HttpStatusError(400, 'invalid-argument', 'QUERY_PARAMETER_INVALID', `${name} must be true or false`);
  }
  return value;
}

function fieldByPath(message: DescMessage, path: string): DescField | undefined {
  let current: DescMessage | undefined = message;
  let field: DescField | undefined;
  for (const name of path.split('.')) {
    field = current?.fields.find((f) => f.name === name);
    if (field === undefined) return undefined;
    current = field.fieldKind === 'message' ? field.message : undefined;
  }
  return field;
}

function setPath(json: Record<string, JsonValue>, path: string, value: JsonValue): void {
  const names = path.split('.');
  let target = json;
  for (const name of names.slice(0, -1)) {
    const next = target[name];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) target[name] = {};
    target = target[name] as Record<string, JsonValue>;
  }
  target[names.at(-1)!] = value;
}

function decodeRequest(registry: FileRegistry, input: DescMessage, json: JsonValue, codec: MethodCodec): unknown {
  let bytes: Uint8Array;
  try {
    bytes = toBinary(input, fromJson(input, json, { registry }));
  } catch (error: unknown) {
    const why = error instanceof Error ? error.message : String(error);
    throw new CfgdError('invalid-argument', 'REQUEST_INVALID', `the request does not fit ${input.typeName}: ${why}`);
  }
  try {
    return codec.requestDeserialize(Buffer.from(bytes));
  } catch (error: unknown) {
    const why = error instanceof Error ? error.message : String(error);
    throw new CfgdError('invalid-argument', 'REQUEST_UNDECODABLE', `the request could not be decoded: ${why}`);
  }
}

function encodeResponse(registry: FileRegistry, output: DescMessage, codec: MethodCodec, message: unknown): JsonValue {
  const bytes = codec.responseSerialize(message as never);
  return toJson(output, fromBinary(output, bytes), { ...JSON_WRITE, registry });
}

function configVersionOf(message: unknown): number | undefined {
  const version = (message as { config?: { version?: unknown } } | undefined)?.config?.version;
  return typeof version === 'number' ? version : undefined;
}

/**
 * Serves a message stream as Server-Sent Events: one `data:` event per
 * message (its proto3 JSON), with `id:` = the config version when `withIds`
 * (so `Last-Event-ID` resumes), and an `event: error` with the error body
 * when the stream fails after it started (UNAVAILABLE at shutdown,
 * RESOURCE_EXHAUSTED for a reader that fell behind). Liveness comes from the
 * stream's own PROGRESS messages.
 */
async function serveEvents(
  exchange: Exchange,
  stream: MessageStream<unknown>,
  encode: (message: unknown) => string,
  withIds: boolean,
  options: GatewayOptions,
): Promise<void> {
  const { res, ctx } = exchange;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  res.write(': open\n\n');
  try {
    for await (const message of stream) {
      const version = withIds ? configVersionOf(message) : undefined;
      const id = version === undefined ? '' : `id: ${version}\n`;
      if (!res.write(`${id}data: ${encode(message)}\n\n`)) await drained(res, ctx.signal, stream.ended);
    }
  } catch (error: unknown) {
    if (!res.destroyed && !res.writableEnded) {
      const { body } = errorBody(error, options.onUnexpected);
      res.write(`event: error\ndata: ${JSON.stringify(body)}\n\n`);
    }
  } finally {
    stream.close();
    if (!res.writableEnded) res.end();
  }
}
