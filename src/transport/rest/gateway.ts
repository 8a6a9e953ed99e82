import {
  createFileRegistry,
  fromBinary,
  fromJson,
  getOption,
  ScalarType,
  toBinary,
  toJson,
  type DescEnum,
  type DescField,
  type DescMessage,
  type DescMethod,
  type FileRegistry,
  type JsonValue,
} from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { FILE_DESCRIPTOR_SET_BASE64 } from '../../../generated/descriptors.js';
import { HttpBody } from '../../../generated/google/api/httpbody.js';
import { CfgdError } from '../../domain/index.js';
import type { AnyMethod, MessageStream } from '../methods.js';
import { HttpStatusError } from '../status.js';
import {
  errorBody,
  etagOf,
  idempotencyKey,
  ifMatchVersion,
  noneMatch,
  sendJson,
  type Exchange,
  type Route,
} from './http.js';
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
}

/** The `google.api.HttpRule` as `getOption` decodes it. */
export interface HttpRule {
  readonly pattern: { readonly case: string | undefined; readonly value?: unknown };
  readonly body: string;
  readonly additionalBindings: readonly HttpRule[];
}

const JSON_WRITE = { useProtoFieldName: true, alwaysEmitImplicit: true } as const;

/** A response of this type is a file: its bytes are the HTTP body, its content type the header's (grpc-gateway). */
export const HTTP_BODY = 'google.api.HttpBody';

/**
 * Routes for every RPC of `service` that carries a `google.api.http`
 * annotation, with grpc-gateway semantics: path template variables, the
 * `body` mapping (`*` or one field), query parameters for the other fields,
 * proto3 JSON with the proto field names. Unary RPCs answer JSON, or, when
 * they return a `google.api.HttpBody`, its bytes with its content type;
 * server streams answer Server-Sent Events. An annotated RPC without an
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
  const rawBody = method.output.typeName === HTTP_BODY;
  if (rawBody && implementation.kind !== 'unary') {
    throw new Error(`${method.name}: a stream of ${HTTP_BODY} cannot be served as events`);
  }
  if (body !== '' && body !== '*' && fieldByPath(input, body) === undefined) {
    throw new Error(`${method.name}: body field "${body}" is not in ${input.typeName}`);
  }
  for (const field of template.fields) {
    if (fieldByPath(input, field) === undefined)
      throw new Error(`${method.name}: ${field} is not in ${input.typeName}`);
  }

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
    name: `${method.parent.typeName}/${method.name}`,
    streaming: implementation.kind === 'server-stream',
    async handle(exchange) {
      const json = await requestJson(exchange, input, body, template.fields);
      let request = decodeRequest(options.registry, input, json, codec);
      if (implementation.kind === 'unary') {
        const http = implementation.http;
        const expected = http?.ifMatch === undefined ? undefined : ifMatchVersion(exchange.req);
        if (expected !== undefined) request = http!.ifMatch!(request, expected);
        const requestId = http?.idempotencyKey === undefined ? undefined : idempotencyKey(exchange.req);
        if (requestId !== undefined) request = http!.idempotencyKey!(request, requestId);
        const response = await implementation.call(request, exchange.ctx);
        const version = http?.etag?.(response);
        const headers: Record<string, string> = version === undefined ? {} : { etag: etagOf(version) };
        if (verb === 'GET' && version !== undefined && noneMatch(exchange.req, etagOf(version))) {
          exchange.res.writeHead(304, headers).end();
          return;
        }
        if (rawBody) sendHttpBody(exchange, HttpBody.decode(codec.responseSerialize(response as never)), headers);
        else sendJson(exchange.res, 200, encodeResponse(options.registry, method.output, codec, response), headers);
      } else {
        const http = implementation.http;
        // Event ids (versions) let a client resume with Last-Event-ID, where the method declares it.
        const resumable = http !== undefined && http.resumable(request);
        if (resumable) {
          const lastEventId = lastEventIdOf(exchange);
          if (lastEventId !== undefined) request = http.resumeAfter(request, lastEventId);
        }
        const stream = await implementation.open(request, exchange.ctx);
        if (exchange.req.method === 'HEAD') {
          // HEAD gets GET's answer without its body. Opening the stream validated and authorized the
          // request as GET would; a stream without a body would never end, so it is released at once.
          stream.close();
          exchange.res.writeHead(200, SSE_HEADERS).end();
          return;
        }
        await serveEvents(exchange, stream, encodeEvents, resumable ? (message) => http.eventId(message) : undefined);
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
  const json = dataObject();
  if (body !== '') {
    const parsed = await exchange.readJsonBody();
    if (body === '*') {
      if (parsed !== undefined) {
        for (const [name, value] of Object.entries(requireObject(undefined, parsed))) defineData(json, name, value);
      }
    } else if (parsed !== undefined) {
      // A message field takes a JSON object; anything else would fail proto3 JSON parsing less clearly.
      if (fieldByPath(input, body)?.fieldKind === 'message') requireObject(body, parsed);
      setPath(json, body, parsed as JsonValue);
    }
  }
  const bound = [...pathFields, ...(body === '' || body === '*' ? [] : [body])];
  if (body !== '*') applyQuery(json, input, exchange.url.searchParams, bound);
  else refuseQuery(exchange.url.searchParams);
  for (const [field, value] of Object.entries(exchange.params)) setPath(json, field, value);
  return json;
}

/**
 * A route whose body is `*` takes every field in its body, so no query parameter names a field
 * there (a `?validate_only=true` or `?expected_schema_version=1` must not be silently dropped).
 */
function refuseQuery(query: URLSearchParams): void {
  const [name] = query.keys();
  if (name === undefined) return;
  throw new HttpStatusError(
    400,
    'invalid-argument',
    'QUERY_PARAMETER_UNKNOWN',
    `unknown query parameter ${quoted(name)}: this route takes every field in its JSON body`,
  );
}

/** The event id named by a `Last-Event-ID` header, or undefined when there is none. */
function lastEventIdOf(exchange: Exchange): number | undefined {
  const header = exchange.req.headers['last-event-id'];
  if (typeof header !== 'string' || header === '') return undefined;
  if (!/^\d+$/.test(header)) {
    throw new HttpStatusError(
      400,
      'invalid-argument',
      'LAST_EVENT_ID_INVALID',
      'Last-Event-ID must be a version number',
    );
  }
  return Number(header);
}

/**
 * Query parameters as grpc-gateway reads them: `field=value` or `msg.field=value` for scalar and
 * enum fields (once; a list field takes each value given) and `map_field[key]=value` for map
 * entries. A name that fits no field, a field bound by the path or the body, or a value given in a
 * form its field cannot take is INVALID_ARGUMENT naming the parameter: no query string reaches an
 * unexpected exception. Map keys are the client's text, so they are stored as own data properties
 * of null-prototype objects: `__proto__` or `constructor` are config names like any other.
 */
function applyQuery(
  json: Record<string, JsonValue>,
  input: DescMessage,
  query: URLSearchParams,
  bound: readonly string[],
): void {
  for (const name of new Set(query.keys())) {
    const values = query.getAll(name);
    const entry = MAP_ENTRY_PARAM.exec(name);
    const path = entry === null ? name : entry[1]!;
    const field = isBound(path, bound) ? undefined : queryField(input, path);
    if (field === undefined) {
      throw new HttpStatusError(
        400,
        'invalid-argument',
        'QUERY_PARAMETER_UNKNOWN',
        `unknown query parameter ${quoted(name)}`,
      );
    }
    if (values.length > 1 && field.fieldKind !== 'list') {
      throw invalidParameter(name, `given ${values.length} times; give it once`);
    }
    if (entry !== null) {
      if (field.fieldKind !== 'map') throw invalidParameter(name, `${path} is not a map; use ${path}=value`);
      if (field.mapKind === 'message')
        throw invalidParameter(name, `the values of ${path} are messages; they cannot be set in the query`);
      const map = mapAt(json, path);
      defineData(map, entry[2]!, queryValue(name, field.mapKind === 'scalar' ? field.scalar : undefined, values[0]!));
      continue;
    }
    switch (field.fieldKind) {
      case 'map':
        throw invalidParameter(name, `${name} is a map; use ${name}[key]=value`);
      case 'message':
        throw invalidParameter(
          name,
          `${name} is a message (${field.message.typeName}); it cannot be set as one query parameter`,
        );
      case 'list':
        if (field.listKind === 'message')
          throw invalidParameter(name, `${name} is a list of messages; it cannot be set in the query`);
        setPath(
          json,
          name,
          values.map((value) => queryValue(name, field.listKind === 'scalar' ? field.scalar : undefined, value)),
        );
        break;
      case 'scalar':
        setPath(json, name, queryValue(name, field.scalar, values[0]!));
        break;
      case 'enum':
        setPath(json, name, enumQueryValue(name, field.enum, values[0]!));
        break;
    }
  }
}

const MAP_ENTRY_PARAM = /^([a-z_][a-z0-9_.]*)\[([^\]]+)\]$/;

/**
 * The short names of an enum's values in a query: a value's name without the prefix every value
 * of the enum shares (buf's ENUM_VALUE_PREFIX), in lower case (`yaml` for `RENDER_FORMAT_YAML`),
 * mapped to the name; not the zero value, which stands for "not given". None for an enum whose
 * values share no prefix.
 */
export function enumShortNames(desc: DescEnum): ReadonlyMap<string, string> {
  let names = shortNames.get(desc);
  if (names === undefined) {
    const prefix = desc.sharedPrefix;
    names = new Map(
      prefix === undefined
        ? []
        : desc.values
            .filter((value) => value.number !== 0 && value.name.toLowerCase().startsWith(prefix))
            .map((value) => [value.name.slice(prefix.length).toLowerCase(), value.name]),
    );
    shortNames.set(desc, names);
  }
  return names;
}

const shortNames = new WeakMap<DescEnum, ReadonlyMap<string, string>>();

/** The name of the enum value a query parameter gives, by its name or its short name. */
function enumQueryValue(parameter: string, desc: DescEnum, text: string): string {
  if (desc.values.some((value) => value.name === text)) return text;
  const short = enumShortNames(desc);
  const name = short.get(text);
  if (name !== undefined) return name;
  const names = desc.values.map((value) => value.name).join(', ');
  const description =
    `${quoted(text)} is not a value of ${desc.typeName}: use one of ${names}` +
    (short.size === 0 ? '' : ` (or ${[...short.keys()].join(', ')})`);
  throw new CfgdError('invalid-argument', 'REQUEST_INVALID', `query parameter ${quoted(parameter)}: ${description}`, {
    metadata: { parameter: parameter.slice(0, 200) },
    fieldViolations: [{ field: parameter.slice(0, 200), description }],
  });
}

/**
 * The field a query parameter names. The path may pass through plain messages only: a
 * well-known type (Struct, Timestamp …) has a JSON form of its own, not its fields.
 */
function queryField(input: DescMessage, path: string): DescField | undefined {
  let current: DescMessage | undefined = input;
  let field: DescField | undefined;
  for (const name of path.split('.')) {
    if (current === undefined || current.typeName.startsWith('google.protobuf.')) return undefined;
    field = current.fields.find((f) => f.name === name);
    if (field === undefined) return undefined;
    current = field.fieldKind === 'message' ? field.message : undefined;
  }
  return field;
}

/** True when `path` is, contains or lies inside a field already set by the path or the body. */
function isBound(path: string, bound: readonly string[]): boolean {
  return bound.some((b) => path === b || path.startsWith(`${b}.`) || b.startsWith(`${path}.`));
}

function invalidParameter(name: string, description: string): CfgdError {
  return new CfgdError(
    'invalid-argument',
    'QUERY_PARAMETER_INVALID',
    `query parameter ${quoted(name)}: ${description}`,
    {
      metadata: { parameter: name.slice(0, 200) },
      fieldViolations: [{ field: name.slice(0, 200), description }],
    },
  );
}

/** A client-chosen name for a message, cut short: a 10 kB parameter name needs no echo in full. */
function quoted(name: string): string {
  return JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name);
}

function requireObject(field: string | undefined, value: unknown): Record<string, JsonValue> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    // The values, as the app layer names their error; any other body field by the field violation.
    const reason = field === 'values' ? 'VALUES_NOT_OBJECT' : 'BODY_NOT_OBJECT';
    const what = field ?? 'the request body';
    throw new CfgdError('invalid-argument', reason, `${what}: must be a JSON object, got ${kind}`, {
      fieldViolations: [{ field: field ?? 'body', description: 'must be a JSON object' }],
    });
  }
  return value as Record<string, JsonValue>;
}

/** Query strings are text; proto3 JSON takes numbers and enums as strings, but booleans only as booleans. */
function queryValue(name: string, scalar: ScalarType | undefined, value: string): JsonValue {
  if (scalar === ScalarType.BOOL) {
    if (value === 'true' || value === 'false') return value === 'true';
    throw new HttpStatusError(
      400,
      'invalid-argument',
      'QUERY_PARAMETER_INVALID',
      `${quoted(name)} must be true or false`,
    );
  }
  return value;
}

/** The field a dotted path (`config.values`) names in `message`, through nested messages. */
export function fieldByPath(message: DescMessage, path: string): DescField | undefined {
  let current: DescMessage | undefined = message;
  let field: DescField | undefined;
  for (const name of path.split('.')) {
    field = current?.fields.find((f) => f.name === name);
    if (field === undefined) return undefined;
    current = field.fieldKind === 'message' ? field.message : undefined;
  }
  return field;
}

/**
 * An object for JSON built from request text. Without a prototype, and written only through
 * `defineData`, a key such as `__proto__` is an own property like any other, never a setter.
 */
function dataObject(): Record<string, JsonValue> {
  return Object.create(null) as Record<string, JsonValue>;
}

function defineData(target: Record<string, JsonValue>, key: string, value: JsonValue): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** The object at a field path, created (or replaced, if something else is there) on the way. */
function objectAt(json: Record<string, JsonValue>, names: readonly string[]): Record<string, JsonValue> {
  let target = json;
  for (const name of names) {
    const next = Object.hasOwn(target, name) ? target[name] : undefined;
    if (typeof next !== 'object' || next === null || Array.isArray(next)) defineData(target, name, dataObject());
    target = target[name] as Record<string, JsonValue>;
  }
  return target;
}

function mapAt(json: Record<string, JsonValue>, path: string): Record<string, JsonValue> {
  return objectAt(json, path.split('.'));
}

function setPath(json: Record<string, JsonValue>, path: string, value: JsonValue): void {
  const names = path.split('.');
  defineData(objectAt(json, names.slice(0, -1)), names.at(-1)!, value);
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

/**
 * A `google.api.HttpBody` as the response itself, as grpc-gateway sends it: its bytes, with its
 * content type (`application/octet-stream` when it names none). `nosniff`, because the bytes are
 * config values, written by whoever may write the config: a browser must not guess them to be HTML.
 */
function sendHttpBody(exchange: Exchange, body: HttpBody, headers: Record<string, string>): void {
  exchange.res.writeHead(200, {
    'content-type': body.contentType === '' ? 'application/octet-stream' : body.contentType,
    'content-length': body.data.length,
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  exchange.res.end(body.data);
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
} as const;

/**
 * Serves a message stream as Server-Sent Events: one `data:` event per
 * message (its proto3 JSON), with `id:` = the message's event id when the
 * method declares them (so `Last-Event-ID` resumes), and an `event: error` with the error body
 * when the stream fails after it started (UNAVAILABLE at shutdown,
 * RESOURCE_EXHAUSTED for a reader that fell behind), which it then rethrows
 * so that the request pipeline sees how the call ended. Liveness comes from
 * the stream's own PROGRESS messages.
 */
async function serveEvents(
  exchange: Exchange,
  stream: MessageStream<unknown>,
  encode: (message: unknown) => string,
  eventId: ((message: unknown) => number | undefined) | undefined,
): Promise<void> {
  const { res, ctx } = exchange;
  res.writeHead(200, SSE_HEADERS);
  res.write(': open\n\n');
  try {
    for await (const message of stream) {
      const version = eventId?.(message);
      const id = version === undefined ? '' : `id: ${version}\n`;
      if (!res.write(`${id}data: ${encode(message)}\n\n`)) await drained(res, ctx.signal, stream.ended);
    }
  } catch (error: unknown) {
    if (!res.destroyed && !res.writableEnded) {
      // Unexpected errors are logged by the request pipeline, which sees this one rethrown.
      const { body } = errorBody(error, () => {});
      res.write(`event: error\ndata: ${JSON.stringify(body)}\n\n`);
    }
    throw error;
  } finally {
    stream.close();
    if (!res.writableEnded) res.end();
  }
}
