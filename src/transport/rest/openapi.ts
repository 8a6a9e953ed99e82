/**
 * An OpenAPI 3.1 description of the `/v1` REST routes, derived from the same
 * `google.api.http` annotations and descriptors the gateway (`gateway.ts`)
 * builds its routes from. Nothing here is written per message: the schemas
 * follow the proto3 JSON mapping as the gateway reads and writes it.
 */
import {
  getOption,
  ScalarType,
  type DescEnum,
  type DescField,
  type DescMessage,
  type DescMethod,
  type DescService,
  type FileRegistry,
} from '@bufbuild/protobuf';
import { enumShortNames, fieldByPath, HTTP_BODY, type HttpRule } from './gateway.js';
import { parseTemplate, type PathTemplate } from './path-template.js';

export interface OpenApiOptions {
  readonly registry: FileRegistry;
  /** Fully qualified service names, e.g. 'cfgd.v1.ConfigService'. */
  readonly services: readonly string[];
  readonly title: string;
  readonly version: string;
}

type Schema = Record<string, unknown>;
type TemplatePart = PathTemplate['parts'][number];

/** The HTTP methods an OpenAPI path item can hold; a custom verb outside them has no place there. */
const OPENAPI_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

const ERROR_REF = { $ref: '#/components/schemas/Error' } as const;

/**
 * The OpenAPI 3.1.0 document of the REST routes the gateway serves for `services`: one operation
 * per binding (the primary one and each `additional_bindings` entry) of every method that carries a
 * `google.api.http` rule, with its path, query and body parameters, its response (JSON, the bytes
 * of a `google.api.HttpBody`, or Server-Sent Events for a server stream) and the shared error body. `components.schemas` holds
 * exactly the messages and enums those operations reach, named by their full proto names, plus
 * `Error`. Throws when a service or the annotation is not in `registry`, or when a route cannot
 * be written in OpenAPI exactly (a custom HTTP method, a wildcard outside a variable, two bindings
 * on one method and path), rather than describe an API that differs from the one served.
 */
export function openApiDocument(options: OpenApiOptions): Record<string, unknown> {
  const { registry } = options;
  const http = registry.getExtension('google.api.http');
  if (http === undefined) throw new Error('google.api.http is not in the descriptors');
  const schemas = new SchemaSet(registry);
  const paths: Record<string, Record<string, unknown>> = {};
  const tags: { name: string; description: string }[] = [];

  for (const name of options.services) {
    const service = registry.getService(name);
    if (service === undefined) throw new Error(`service ${name} is not in the descriptors`);
    tags.push({ name: service.name, description: `The RPCs of ${service.typeName}.` });
    for (const method of service.methods) {
      const rule = getOption(method, http) as HttpRule | undefined;
      if (rule?.pattern.case === undefined) continue;
      [rule, ...rule.additionalBindings].forEach((binding, index) => {
        const { verb, template } = bindingTarget(binding);
        const path = openApiPath(template.source);
        const item = (paths[path] ??= {});
        if (item[verb] !== undefined) {
          throw new Error(
            `${verb.toUpperCase()} ${path} is bound twice (again by ${method.parent.typeName}.${method.name})`,
          );
        }
        item[verb] = operation(service, method, binding, template, index, schemas);
      });
    }
  }

  // Built before the schemas are listed: it reaches google.rpc.ErrorInfo and BadRequest.
  const error = errorSchema(registry, schemas);
  return {
    openapi: '3.1.0',
    info: { title: options.title, version: options.version, description: API_DESCRIPTION },
    tags,
    security: [{ bearerAuth: [] }],
    paths,
    components: {
      schemas: { ...schemas.all(), Error: error },
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A cfgd token (`Authorization: Bearer cfgd_…`) or, where the server is configured for them, ' +
            'a JWT of the configured issuer. HTTP Basic with the token as the password (the user name is ignored: ' +
            '`curl -u :TOKEN`) is accepted too. A client certificate (mutual TLS) authenticates instead ' +
            'where the server trusts a client CA; with `--auth off` no credential is needed.',
        },
      },
    },
  };
}

/**
 * The OpenAPI path of a `google.api.http` path template: each variable becomes `{field.path}`
 * whatever its sub-pattern (`{name=users/*}` → `{name}`), literals and the custom verb
 * (`:rollback`) stay. Throws for a `*` or `**` outside a variable: the gateway matches it but
 * binds it to no field, and an OpenAPI path has no anonymous wildcard.
 */
export function openApiPath(source: string): string {
  const template = parseTemplate(source);
  const segments = template.parts.map((part) => {
    if (part.kind === 'literal') return part.value;
    if (part.kind === 'variable') return `{${part.field}}`;
    throw new Error(`${source}: a wildcard outside a variable cannot be written as an OpenAPI path`);
  });
  return `/${segments.join('/')}${template.verb === undefined ? '' : `:${template.verb}`}`;
}

const API_DESCRIPTION = [
  'The REST routes of cfgd, derived from the `google.api.http` annotations of its protos; each operation is the RPC its tag and operationId name, also served over gRPC.',
  '',
  'Bodies are proto3 JSON with the proto field names (snake_case). Responses carry every field without explicit presence, at its default when unset; 64-bit integers are decimal strings, enums their value names, timestamps RFC 3339 strings. Requests also accept the lowerCamelCase JSON names, 64-bit integers as JSON numbers, enum numbers (in a body, not in the query) and `null` for an unset field; an unknown field, or a field given twice under both names, is INVALID_ARGUMENT (400, `REQUEST_INVALID`). A method that returns a `google.api.HttpBody` answers with its bytes as they are, in the content type it names.',
  '',
  'Query parameters set the request fields that neither the path nor the body binds: `field=value`, `message.field=value`, a repeated field once per element, a map entry as `map_field[key]=value`; an unknown parameter is 400 (`QUERY_PARAMETER_UNKNOWN`). A route whose body is `*` takes no query parameter at all. Every GET route also answers HEAD.',
  '',
  'Some methods take HTTP headers that their implementation declares rather than their proto (`If-Match`, `If-None-Match` and `ETag`, `Idempotency-Key`, `Last-Event-ID`); they are not listed per operation here.',
].join('\n');

function bindingTarget(binding: HttpRule): { verb: string; template: PathTemplate } {
  const { pattern } = binding;
  let verb: string;
  let path: string;
  if (pattern.case === 'custom') {
    const custom = pattern.value as { kind: string; path: string };
    verb = custom.kind.toLowerCase();
    path = custom.path;
  } else {
    verb = String(pattern.case);
    path = String(pattern.value);
  }
  if (!OPENAPI_METHODS.has(verb)) {
    throw new Error(`HTTP method ${verb.toUpperCase()} of ${path} cannot be written in OpenAPI`);
  }
  return { verb, template: parseTemplate(path) };
}

function operation(
  service: DescService,
  method: DescMethod,
  binding: HttpRule,
  template: PathTemplate,
  index: number,
  schemas: SchemaSet,
): Record<string, unknown> {
  const input = method.input;
  const { body } = binding;
  if (method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming') {
    throw new Error(`${service.typeName}.${method.name} streams requests, which the gateway cannot serve`);
  }
  const bodyField = body === '' || body === '*' ? undefined : fieldByPath(input, body);
  if (body !== '' && body !== '*' && bodyField === undefined) {
    throw new Error(`${method.name}: body field "${body}" is not in ${input.typeName}`);
  }
  const parameters = [
    ...pathParameters(input, template, schemas),
    // The gateway refuses every query parameter on a `*` body route: the body sets every field.
    ...(body === '*' ? [] : queryParameters(input, [...template.fields, ...(bodyField ? [body] : [])], schemas)),
  ];

  const streaming = method.methodKind === 'server_streaming';
  const result: Record<string, unknown> = {
    // A second binding of one RPC needs an id of its own; grpc-gateway's generator numbers them so.
    operationId: `${service.name}_${method.name}${index === 0 ? '' : String(index + 1)}`,
    tags: [service.name],
    description:
      `The RPC \`${service.typeName}/${method.name}\`` +
      (index === 0 ? '.' : `, additional binding ${index}.`) +
      (streaming ? ' A server stream, served as Server-Sent Events.' : ''),
  };
  if (method.deprecated) result.deprecated = true;
  if (parameters.length > 0) result.parameters = parameters;
  if (body === '*') {
    result.requestBody = {
      required: false,
      description:
        `The request message \`${input.typeName}\`` +
        (template.fields.length === 0
          ? '.'
          : ` without the fields the path binds (${template.fields.join(', ')}): the path's values replace any given here.`),
      content: { 'application/json': { schema: schemas.messageWithout(input, template.fields) } },
    };
  } else if (bodyField !== undefined) {
    result.requestBody = {
      required: false,
      description: `The field \`${body}\` of \`${input.typeName}\`${bodyField.fieldKind === 'message' ? '; a JSON object' : ''}.`,
      content: { 'application/json': { schema: schemas.field(bodyField) } },
    };
  }
  result.responses = {
    '200': streaming
      ? eventStreamResponse(method, schemas)
      : method.output.typeName === HTTP_BODY
        ? httpBodyResponse(method)
        : jsonResponse(method, schemas),
    default: {
      description: 'An error, with its HTTP status.',
      headers: {
        'WWW-Authenticate': {
          description: 'On 401: the Bearer challenge (RFC 6750), naming the error when a credential was refused.',
          schema: { type: 'string' },
        },
      },
      content: { 'application/json': { schema: { ...ERROR_REF } } },
    },
  };
  return result;
}

function jsonResponse(method: DescMethod, schemas: SchemaSet): Schema {
  return {
    description: `The response message \`${method.output.typeName}\`.`,
    content: { 'application/json': { schema: schemas.message(method.output) } },
  };
}

/**
 * A method that returns a `google.api.HttpBody` answers its bytes as they are, with the content type
 * it names, as the gateway sends them: any media type, a binary body, not the message's JSON.
 */
function httpBodyResponse(method: DescMethod): Schema {
  return {
    description:
      `The body of the \`${HTTP_BODY}\` that \`${method.parent.typeName}/${method.name}\` returns, as it is, ` +
      'with its content type in the Content-Type header.',
    content: { '*/*': { schema: { type: 'string', format: 'binary' } } },
  };
}

/**
 * OpenAPI 3.1 cannot type the events of a stream (3.2's `itemSchema` can): the body is described
 * as text, and the event forms go in `x-itemSchema`, shaped as 3.2 would have them.
 */
function eventStreamResponse(method: DescMethod, schemas: SchemaSet): Schema {
  const output = method.output.typeName;
  const json = (schema: Schema): Schema => ({
    type: 'string',
    contentMediaType: 'application/json',
    contentSchema: schema,
  });
  return {
    description:
      `Server-Sent Events: a \`: open\` comment once the stream is open, then one event per message, ` +
      `its \`data\` the proto3 JSON of \`${output}\`, with an \`id\` where the method numbers its events ` +
      '(a `Last-Event-ID` header then resumes after that event). A stream that fails after it opened ends ' +
      'with an `event: error` whose `data` is the error body; a failure before it opened is an ordinary ' +
      'error response.',
    content: {
      'text/event-stream': {
        schema: { type: 'string', description: 'A stream of Server-Sent Events.' },
        'x-itemSchema': {
          oneOf: [
            {
              type: 'object',
              description: `A message of the stream.`,
              required: ['data'],
              properties: {
                id: { type: 'string', description: 'The event id, where the method declares one.' },
                data: json(schemas.message(method.output)),
              },
            },
            {
              type: 'object',
              description: 'The error that ended the stream.',
              required: ['event', 'data'],
              properties: { event: { const: 'error' }, data: json({ ...ERROR_REF }) },
            },
          ],
        },
      },
    },
  };
}

function pathParameters(input: DescMessage, template: PathTemplate, schemas: SchemaSet): Schema[] {
  return variables(template.parts).map((variable) => {
    const field = fieldByPath(input, variable.field);
    if (field === undefined) throw new Error(`${template.source}: ${variable.field} is not in ${input.typeName}`);
    const schema: Schema = field.fieldKind === 'scalar' || field.fieldKind === 'enum' ? schemas.field(field) : {};
    const parameter: Schema = { name: variable.field, in: 'path', required: true, schema };
    const pattern = subPattern(variable.parts);
    if (pattern !== undefined) {
      // The gateway matches such a variable over several segments: its '/' travel unescaped, which
      // OpenAPI's path serialization would escape. The pattern at least says what must be sent.
      parameter.schema = { ...schema, type: 'string', pattern: pattern.regex };
      parameter.description = `Matches \`${pattern.source}\`; its \`/\` are sent as they are, not escaped.`;
    }
    return parameter;
  });
}

function variables(parts: readonly TemplatePart[]): Extract<TemplatePart, { kind: 'variable' }>[] {
  return parts.filter((part): part is Extract<TemplatePart, { kind: 'variable' }> => part.kind === 'variable');
}

/** The sub-pattern of a variable when it is more than the default single segment (`*`). */
function subPattern(parts: readonly TemplatePart[]): { source: string; regex: string } | undefined {
  if (parts.length === 1 && parts[0]!.kind === 'any') return undefined;
  const sources: string[] = [];
  const regexes: string[] = [];
  for (const part of parts) {
    switch (part.kind) {
      case 'literal':
        sources.push(part.value);
        regexes.push(part.value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
        break;
      case 'any':
        sources.push('*');
        regexes.push('[^/]+');
        break;
      case 'rest':
        sources.push('**');
        regexes.push('.+');
        break;
      case 'variable':
        // parseTemplate refuses a variable inside a variable.
        throw new Error('a variable inside a variable');
    }
  }
  return { source: sources.join('/'), regex: `^${regexes.join('/')}$` };
}

/**
 * The query parameters of a request, as the gateway's `applyQuery` takes them: scalar and enum
 * fields, lists of them (the parameter repeated) and maps of them (`field[key]`), at any depth
 * through plain messages but never into a well-known type, skipping every field the path or the
 * body binds. A message that contains itself is followed once: its deeper paths are served but
 * cannot all be listed.
 */
function queryParameters(input: DescMessage, bound: readonly string[], schemas: SchemaSet): Schema[] {
  const parameters: Schema[] = [];
  const visit = (message: DescMessage, prefix: string, seen: ReadonlySet<string>): void => {
    if (message.typeName.startsWith('google.protobuf.') || seen.has(message.typeName)) return;
    const inside = new Set([...seen, message.typeName]);
    for (const field of message.fields) {
      const path = `${prefix}${field.name}`;
      if (bound.some((b) => path === b || path.startsWith(`${b}.`))) continue;
      const deprecated = field.deprecated ? { deprecated: true } : {};
      switch (field.fieldKind) {
        case 'message':
          visit(field.message, `${path}.`, inside);
          break;
        case 'scalar':
        case 'enum':
          parameters.push({
            name: path,
            in: 'query',
            ...deprecated,
            ...(field.fieldKind === 'scalar' && field.scalar === ScalarType.BOOL
              ? { description: '`true` or `false`.' }
              : field.fieldKind === 'enum'
                ? { description: enumQueryDescription(field.enum) }
                : {}),
            schema: schemas.field(field),
          });
          break;
        case 'list':
          if (field.listKind === 'message') break;
          parameters.push({
            name: path,
            in: 'query',
            ...deprecated,
            description: 'Repeat the parameter for each element.',
            style: 'form',
            explode: true,
            schema: schemas.field(field),
          });
          break;
        case 'map':
          if (field.mapKind === 'message') break;
          parameters.push({
            name: path,
            in: 'query',
            ...deprecated,
            description: `One parameter per entry: \`${path}[key]=value\`.`,
            style: 'deepObject',
            explode: true,
            schema: schemas.field(field),
          });
          break;
      }
    }
  };
  visit(input, '', new Set());
  return parameters;
}

/** How an enum is named in a query: as the gateway's `applyQuery` takes it. */
function enumQueryDescription(desc: DescEnum): string {
  const short = [...enumShortNames(desc).keys()];
  return short.length === 0
    ? 'A value name; numbers are not taken in the query.'
    : 'A value name, or the name without its prefix in lower case (' +
        short.map((name) => `\`${name}\``).join(', ') +
        '); numbers are not taken in the query.';
}

/**
 * The schemas of `components.schemas`, created as operations reach them, so that the document
 * holds exactly the reachable ones.
 */
class SchemaSet {
  private readonly components = new Map<string, Schema>();

  constructor(private readonly registry: FileRegistry) {}

  all(): Record<string, Schema> {
    return Object.fromEntries([...this.components].sort(([a], [b]) => a.localeCompare(b)));
  }

  /** A reference to the message's schema, creating it (and whatever it reaches) on first use. */
  message(message: DescMessage): Schema {
    if (!this.components.has(message.typeName)) {
      // Registered before it is built: a message that contains itself refers to itself.
      const schema: Schema = {};
      this.components.set(message.typeName, schema);
      Object.assign(schema, this.messageBody(message));
    }
    return ref(message.typeName);
  }

  /** The message's schema inline, without the fields at `excluded` (field paths). */
  messageWithout(message: DescMessage, excluded: readonly string[]): Schema {
    if (excluded.length === 0) return this.message(message);
    const properties: Record<string, Schema> = {};
    for (const field of message.fields) {
      if (excluded.includes(field.name)) continue;
      const inner = excluded
        .filter((path) => path.startsWith(`${field.name}.`))
        .map((path) => path.slice(field.name.length + 1));
      properties[field.name] =
        inner.length > 0 && field.fieldKind === 'message'
          ? this.messageWithout(field.message, inner)
          : this.field(field);
    }
    return { type: 'object', properties };
  }

  field(field: DescField): Schema {
    const schema = this.fieldValue(field);
    if (field.deprecated) schema.deprecated = true;
    if (field.oneof !== undefined) {
      const members = field.oneof.fields.map((member) => member.name).join(', ');
      const note = `A member of the oneof \`${field.oneof.name}\`: at most one of ${members} is set.`;
      schema.description = typeof schema.description === 'string' ? `${note} ${schema.description}` : note;
    }
    return schema;
  }

  private fieldValue(field: DescField): Schema {
    switch (field.fieldKind) {
      case 'scalar':
        return scalarSchema(field.scalar);
      case 'enum':
        return this.enum(field.enum);
      case 'message':
        return this.message(field.message);
      case 'list':
        return {
          type: 'array',
          items:
            field.listKind === 'scalar'
              ? scalarSchema(field.scalar)
              : field.listKind === 'enum'
                ? this.enum(field.enum)
                : this.message(field.message),
        };
      case 'map':
        return {
          type: 'object',
          ...mapKeyNames(field.mapKey),
          additionalProperties:
            field.mapKind === 'scalar'
              ? scalarSchema(field.scalar)
              : field.mapKind === 'enum'
                ? this.enum(field.enum)
                : this.message(field.message),
        };
    }
  }

  private enum(desc: DescEnum): Schema {
    // NullValue is JSON's null, not a name (google.protobuf.Value's null_value).
    if (desc.typeName === 'google.protobuf.NullValue') return { type: 'null' };
    if (!this.components.has(desc.typeName)) {
      this.components.set(desc.typeName, { type: 'string', enum: desc.values.map((value) => value.name) });
    }
    return ref(desc.typeName);
  }

  /** The proto3 JSON form of a message: its own form for a well-known type, else its fields. */
  private messageBody(message: DescMessage): Schema {
    switch (message.typeName) {
      case 'google.protobuf.Struct':
        return { type: 'object', description: 'Any JSON object.' };
      case 'google.protobuf.Value':
        return { description: 'Any JSON value.' };
      case 'google.protobuf.ListValue':
        return { type: 'array', description: 'Any JSON array.' };
      case 'google.protobuf.Timestamp':
        return {
          type: 'string',
          format: 'date-time',
          description: 'RFC 3339, in UTC ("Z"), with 0, 3, 6 or 9 fractional digits.',
        };
      case 'google.protobuf.Duration':
        return {
          type: 'string',
          pattern: '^-?[0-9]+(\\.[0-9]{1,9})?s$',
          description: 'Seconds with an "s" suffix, e.g. "1.5s".',
        };
      case 'google.protobuf.FieldMask':
        return { type: 'string', description: 'Field paths in lowerCamelCase, separated by commas.' };
      case 'google.protobuf.Empty':
        return { type: 'object' };
      case 'google.protobuf.Any':
        return {
          type: 'object',
          description: 'A message of the type `@type` names, with its fields (or its JSON form in `value`).',
          required: ['@type'],
          properties: { '@type': { type: 'string', description: 'e.g. type.googleapis.com/cfgd.v1.Config' } },
        };
    }
    if (isWrapper(message)) return scalarSchema(message.fields[0]!.scalar!);
    const properties: Record<string, Schema> = {};
    for (const field of message.fields) properties[field.name] = this.field(field);
    const schema: Schema = { type: 'object', properties };
    if (message.deprecated) schema.deprecated = true;
    return schema;
  }

  /** The registry's message, by full name, or an error naming what the document needs it for. */
  required(typeName: string, why: string): DescMessage {
    const message = this.registry.getMessage(typeName);
    if (message === undefined) throw new Error(`${typeName} is not in the descriptors (${why})`);
    return message;
  }
}

function ref(typeName: string): Schema {
  return { $ref: `#/components/schemas/${typeName}` };
}

/** google.protobuf.*Value wrappers are their one field's JSON (and null when unset). */
function isWrapper(message: DescMessage): boolean {
  return (
    message.typeName.startsWith('google.protobuf.') &&
    message.typeName.endsWith('Value') &&
    message.fields.length === 1 &&
    message.fields[0]!.name === 'value' &&
    message.fields[0]!.fieldKind === 'scalar'
  );
}

function scalarSchema(scalar: ScalarType): Schema {
  switch (scalar) {
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return {
        type: 'number',
        format: scalar === ScalarType.DOUBLE ? 'double' : 'float',
        description: 'Non-finite values are the strings "NaN", "Infinity" and "-Infinity".',
      };
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return {
        type: 'string',
        format: 'int64',
        pattern: '^-?[0-9]+$',
        description: 'A 64-bit integer as a decimal string; requests may give a JSON number.',
      };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return {
        type: 'string',
        format: 'uint64',
        pattern: '^[0-9]+$',
        description: 'A 64-bit unsigned integer as a decimal string; requests may give a JSON number.',
      };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: 'integer', format: 'int32' };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: 'integer', format: 'uint32', minimum: 0, maximum: 4294967295 };
    case ScalarType.BOOL:
      return { type: 'boolean' };
    case ScalarType.STRING:
      return { type: 'string' };
    case ScalarType.BYTES:
      return { type: 'string', contentEncoding: 'base64' };
  }
}

/** JSON object keys are strings: a map with integer or bool keys takes them in decimal or as true/false. */
function mapKeyNames(key: ScalarType): Schema {
  switch (key) {
    case ScalarType.STRING:
      return {};
    case ScalarType.BOOL:
      return { propertyNames: { enum: ['true', 'false'] } };
    default:
      return { propertyNames: { pattern: '^-?[0-9]+$' } };
  }
}

/**
 * The body `errorBody` (http.ts) writes for every REST error, also the `data` of an SSE
 * `event: error`: the HTTP status, the gRPC code's name, the message, and details of which the
 * first is always a google.rpc.ErrorInfo and a google.rpc.BadRequest follows for bad fields.
 */
function errorSchema(registry: FileRegistry, schemas: SchemaSet): Schema {
  const codes = registry.getEnum('google.rpc.Code');
  if (codes === undefined) throw new Error('google.rpc.Code is not in the descriptors (the error body needs it)');
  const detail = (typeName: string): Schema => ({
    allOf: [
      schemas.message(schemas.required(typeName, 'the error details need it')),
      {
        type: 'object',
        required: ['@type'],
        properties: { '@type': { const: `type.googleapis.com/${typeName}` } },
      },
    ],
  });
  return {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'status', 'message', 'details'],
        properties: {
          code: { type: 'integer', description: 'The HTTP status of the response.' },
          status: {
            type: 'string',
            description: 'The gRPC status code, by name.',
            enum: codes.values.map((value) => value.name).filter((name) => name !== 'OK'),
          },
          message: { type: 'string', description: 'What went wrong, for people.' },
          details: {
            type: 'array',
            description:
              'A google.rpc.ErrorInfo (its `reason` names the error for programs; `domain` is "cfgd.v1"), ' +
              'then, when fields were at fault, a google.rpc.BadRequest.',
            prefixItems: [detail('google.rpc.ErrorInfo')],
            items: detail('google.rpc.BadRequest'),
            minItems: 1,
            maxItems: 2,
          },
        },
      },
    },
  };
}
