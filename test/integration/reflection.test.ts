/**
 * gRPC server reflection, as grpcurl and other tools use it (`list`,
 * `describe`): both versions of the protocol (v1, and v1alpha that grpcurl
 * speaks), over a client built from @grpc/reflection's own protos with
 * nothing of cfgd's. Reflection is open by design, like the health service:
 * it describes the API (what the protos in the repository already say) and
 * acts on nothing, so it answers without credentials with authentication on.
 */
import {
  credentials,
  loadPackageDefinition,
  Metadata,
  status as GrpcStatus,
  type Client,
  type ClientDuplexStream,
  type StatusObject,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/settings/settings.js';
import { TEST_ADMIN_TOKEN } from '../helpers/auth.js';
import { rejection } from '../helpers/client.js';
import { clientConstructor } from '../helpers/health.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** The deadline of a reflection stream: one that does not answer fails the test, it does not hang it. */
const STREAM_MS = 10_000;

const VERSIONS = ['v1', 'v1alpha'] as const;
type Version = (typeof VERSIONS)[number];

/** `ServerReflectionRequest`, as proto-loader with `keepCase` reads it: one of the requests. */
type ReflectionRequest = { list_services: string } | { file_containing_symbol: string } | { file_by_filename: string };

/** `ServerReflectionResponse` (the same in v1 and v1alpha), with `oneofs` naming the one set. */
interface ReflectionResponse {
  readonly message_response:
    'list_services_response' | 'file_descriptor_response' | 'error_response' | 'all_extension_numbers_response';
  readonly list_services_response?: { readonly service: readonly { readonly name: string }[] };
  readonly file_descriptor_response?: { readonly file_descriptor_proto: readonly Buffer[] };
  readonly error_response?: { readonly error_code: number; readonly error_message: string };
}

interface RawReflectionClient extends Client {
  ServerReflectionInfo(
    metadata: Metadata,
    options: { deadline: number },
  ): ClientDuplexStream<ReflectionRequest, ReflectionResponse>;
}

const protoRoot = join(
  dirname(createRequire(import.meta.url).resolve('@grpc/reflection/package.json')),
  'build',
  'proto',
);
const loaded = loadPackageDefinition(
  loadSync(['grpc/reflection/v1/reflection.proto', 'grpc/reflection/v1alpha/reflection.proto'], {
    includeDirs: [protoRoot],
    keepCase: true,
    oneofs: true,
    longs: String,
    enums: String,
  }),
);

/**
 * One `ServerReflectionInfo` stream, as a tool holds it: requests go out one
 * at a time, each answered by the next response.
 */
class ReflectionStream {
  private readonly client: RawReflectionClient;
  private readonly stream: ClientDuplexStream<ReflectionRequest, ReflectionResponse>;
  private readonly waiting: { resolve: (r: ReflectionResponse) => void; reject: (e: unknown) => void }[] = [];
  private readonly ended: Promise<StatusObject>;

  constructor(port: number, version: Version) {
    const Constructor = clientConstructor(loaded, `grpc.reflection.${version}.ServerReflection`);
    this.client = new Constructor(`127.0.0.1:${port}`, credentials.createInsecure()) as unknown as RawReflectionClient;
    // No credentials: reflection is open.
    this.stream = this.client.ServerReflectionInfo(new Metadata(), { deadline: Date.now() + STREAM_MS });
    this.stream.on('data', (response: ReflectionResponse) => this.waiting.shift()?.resolve(response));
    this.stream.on('error', (error: unknown) => {
      for (const { reject } of this.waiting.splice(0)) reject(error);
    });
    this.ended = new Promise((resolve) => this.stream.once('status', resolve));
  }

  ask(request: ReflectionRequest): Promise<ReflectionResponse> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.stream.write(request);
    });
  }

  /** The decoded files of a `file_containing_symbol` (or `file_by_filename`) answer; fails on any other answer. */
  async files(request: ReflectionRequest): Promise<FileDescriptorProto[]> {
    const response = await this.ask(request);
    expect(response.message_response, JSON.stringify(response.error_response)).toBe('file_descriptor_response');
    return response.file_descriptor_response!.file_descriptor_proto.map((bytes) =>
      fromBinary(FileDescriptorProtoSchema, bytes),
    );
  }

  /** Half-closes the stream and resolves with the status the server ends it with. */
  async finish(): Promise<StatusObject> {
    this.stream.end();
    const status = await this.ended;
    this.client.close();
    return status;
  }

  cancel(): void {
    this.stream.cancel();
    this.client.close();
  }
}

/** buf (a devDependency), whose `buf curl` is a reflection client written in Go, as grpcurl is. */
const BUF = fileURLToPath(new URL('../../node_modules/.bin/buf', import.meta.url));

/** `buf curl <option>` with reflection `version` against the server on `port`: its output lines. */
async function bufCurl(
  port: number,
  version: Version,
  option: '--list-services' | '--list-methods',
): Promise<string[]> {
  const { stdout } = await promisify(execFile)(
    BUF,
    [
      'curl',
      '--protocol',
      'grpc',
      '--http2-prior-knowledge',
      '--reflect-protocol',
      `grpc-${version}`,
      option,
      `http://127.0.0.1:${port}`,
    ],
    { timeout: 20_000 },
  );
  return stdout.split('\n').filter((line) => line !== '');
}

/** The services a server serves, with their methods, from `rpcs` (`package.Service/Method`). */
function servedServices(rpcs: readonly string[]): Map<string, string[]> {
  const services = new Map<string, string[]>();
  for (const rpc of rpcs) {
    const [service, method] = rpc.split('/') as [string, string];
    services.set(service, [...(services.get(service) ?? []), method]);
  }
  return services;
}

/** Every fully-qualified message and enum name the files declare (with the leading dot descriptors use). */
function declaredTypes(files: readonly FileDescriptorProto[]): Set<string> {
  const names = new Set<string>();
  const visit = (
    scope: string,
    messages: FileDescriptorProto['messageType'],
    enums: FileDescriptorProto['enumType'],
  ) => {
    for (const e of enums) names.add(`${scope}.${e.name}`);
    for (const message of messages) {
      const name = `${scope}.${message.name}`;
      names.add(name);
      visit(name, message.nestedType, message.enumType);
    }
  };
  for (const file of files) visit(file.package === '' ? '' : `.${file.package}`, file.messageType, file.enumType);
  return names;
}

let server: TestServer;
let services: Map<string, string[]>;
const streams: ReflectionStream[] = [];

function open(version: Version): ReflectionStream {
  const stream = new ReflectionStream(server.cfgd.grpcPort, version);
  streams.push(stream);
  return stream;
}

beforeAll(async () => {
  server = await startTestServer({ auth: { ...DEFAULTS.auth, mode: 'on', adminToken: TEST_ADMIN_TOKEN } });
  services = servedServices(server.cfgd.rpcs);
});

afterAll(async () => {
  for (const stream of streams) stream.cancel();
  await server?.stop();
});

it('the server under test has authentication on: a cfgd call without credentials is refused', async () => {
  const error = await rejection(server.client().get({ userId: 'alice', configName: 'app' }));
  expect(error.code).toBe(GrpcStatus.UNAUTHENTICATED);
});

describe.each(VERSIONS)('reflection %s, without credentials (reflection is open by design)', (version) => {
  it('list_services names exactly the services the server serves', async () => {
    const stream = open(version);
    const response = await stream.ask({ list_services: '*' });
    expect(response.message_response).toBe('list_services_response');
    const listed = response.list_services_response!.service.map((service) => service.name);
    expect(listed.sort()).toEqual([...services.keys()].sort());
    // Spelled out once, so that a service dropped from `rpcs` and from reflection alike is noticed.
    expect(listed.sort()).toEqual([
      'cfgd.v1.AuthService',
      'cfgd.v1.ConfigService',
      'cfgd.v1.FleetService',
      'cfgd.v1.StatusService',
      'grpc.health.v1.Health',
      'grpc.reflection.v1.ServerReflection',
      'grpc.reflection.v1alpha.ServerReflection',
    ]);
    expect((await stream.finish()).code).toBe(GrpcStatus.OK);
  });

  it('file_containing_symbol describes each service with exactly its methods, and every type they use', async () => {
    const stream = open(version);
    for (const [service, methods] of services) {
      const files = await stream.files({ file_containing_symbol: service });
      expect(files.length, service).toBeGreaterThan(0);
      const declarations = files.flatMap((file) =>
        file.service.filter((s) => `${file.package}.${s.name}` === service).map((s) => ({ file, s })),
      );
      expect(declarations, service).toHaveLength(1);
      const [{ s: declared }] = declarations as [(typeof declarations)[number]];
      expect(declared.method.map((m) => m.name).sort(), service).toEqual([...methods].sort());
      // Every request and response type is declared among the files returned.
      const types = declaredTypes(files);
      for (const method of declared.method) {
        expect(types, `${service}/${method.name} input`).toContain(method.inputType);
        expect(types, `${service}/${method.name} output`).toContain(method.outputType);
      }
    }
    expect((await stream.finish()).code).toBe(GrpcStatus.OK);
  });

  it('file_containing_symbol finds a message type: cfgd.v1.PutRequest', async () => {
    const stream = open(version);
    const files = await stream.files({ file_containing_symbol: 'cfgd.v1.PutRequest' });
    expect(declaredTypes(files)).toContain('.cfgd.v1.PutRequest');
    const [first] = files as [FileDescriptorProto];
    expect(first.package).toBe('cfgd.v1');
    expect(first.messageType.map((m) => m.name)).toContain('PutRequest');
    expect((await stream.finish()).code).toBe(GrpcStatus.OK);
  });

  it('an unknown symbol gets an error response, NOT_FOUND, and the stream goes on', async () => {
    const stream = open(version);
    for (const symbol of ['cfgd.v1.NoSuchMessage', 'cfgd.v1.NoSuchService', 'no.such.package.Thing']) {
      const response = await stream.ask({ file_containing_symbol: symbol });
      expect(response.message_response, symbol).toBe('error_response');
      expect(response.error_response!.error_code, symbol).toBe(GrpcStatus.NOT_FOUND);
    }
    // The same stream still answers.
    expect((await stream.ask({ list_services: '*' })).message_response).toBe('list_services_response');
    expect((await stream.finish()).code).toBe(GrpcStatus.OK);
  });

  describe('as a Go reflection client (buf curl, as grpcurl) sees it', () => {
    it('lists the services', async () => {
      const listed = await bufCurl(server.cfgd.grpcPort, version, '--list-services');
      expect(listed.sort()).toEqual([...services.keys()].sort());
    });

    // A Go client links the files it is served by their names and imports: this fails if reflection
    // serves descriptors that lost either (proto-loader's re-encoding merges each package into one
    // file and drops the imports, grpc/grpc-node#2595), as grpcurl `describe` would.
    it('describes every service: lists each method of each', async () => {
      const methods = await bufCurl(server.cfgd.grpcPort, version, '--list-methods');
      expect(methods.sort()).toEqual([...server.cfgd.rpcs].sort());
    });
  });
});
