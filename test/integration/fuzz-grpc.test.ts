import { status as GrpcStatus } from '@grpc/grpc-js';
import fc from 'fast-check';
import type { ClientHttp2Session } from 'node:http2';
import { deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BlameRequest,
  DeleteRequest,
  GetRequest,
  GetResponse,
  GetSchemaRequest,
  HistoryRequest,
  ListConfigsRequest,
  PatchRequest,
  PutRequest,
  RollbackRequest,
  SchemaHistoryRequest,
  SetRetentionRequest,
  SetSchemaRequest,
  VerifyHistoryRequest,
  UndeleteRequest,
  WatchRequest,
} from '../../generated/cfgd/v1/config_service.js';
import { hostileText, oddKey, validName } from '../helpers/fuzz-arbitraries.js';
import {
  fuzzSettings,
  Outcomes,
  type LoggedServer,
  startFuzzTarget,
  type FuzzTarget,
} from '../helpers/fuzz-support.js';
import { FRAME, grpcFrame, H2_ERROR, H2FrameProxy, h2Call, h2Session, type H2Answer } from '../helpers/h2-grpc.js';
import { eventually } from '../helpers/wait.js';

/**
 * Fuzzes the gRPC port with raw HTTP/2 requests over node:http2: garbage
 * and random protobuf, compressed flags with and without grpc-encoding,
 * corrupt and unknown compression, length prefixes shorter and longer than
 * the data, oversized messages, unknown methods, wrong content types, bad
 * grpc-timeout values. All calls share one session, which must stay usable;
 * a frame-parsing proxy shows what the server itself sent.
 * Replay a failure with the printed CFGD_FUZZ_SEED.
 */

const settings = fuzzSettings('fuzz-grpc', 1500);
const started = Date.now();
const outcomes = new Outcomes();

/**
 * The only INTERNAL answers allowed for client mistakes: grpc-js sends them
 * itself before cfgd's code runs, and its public API offers no way to change
 * them (see README, Errors, and hostile-grpc.test.ts). Anything else INTERNAL
 * is a defect.
 */
const GRPC_JS_INTERNAL: readonly { readonly cause: string; readonly message: RegExp }[] = [
  { cause: 'corrupt compressed message', message: /^Failed to decompress message$/ },
  { cause: 'malformed grpc-timeout', message: /^Invalid grpc-timeout value ".*"$/s },
];

let target: FuzzTarget;
let server: LoggedServer;
let proxy: H2FrameProxy;
let session: ClientHttp2Session;

beforeAll(async () => {
  target = await startFuzzTarget({ heartbeatMs: 0 });
  server = target.server;
  proxy = await H2FrameProxy.start(server.cfgd.grpcPort);
  // The client's own session memory is not under test: Node counts the unsent rest of every 5 MiB
  // message the server refused at its length prefix, and under load a 64 MB limit was seen to fill
  // (the client then resets its own streams with ENHANCE_YOUR_CALM; the server had sent no reset).
  session = await h2Session(proxy.port, 1024);
});
afterAll(async () => {
  session.close();
  await proxy.stop();
  await server.stop();
  console.log(`fuzz-grpc: ${((Date.now() - started) / 1000).toFixed(1)} s; answers: ${String(outcomes)}`);
});

const SERVICE = '/cfgd.v1.ConfigService';
const MIB = 1024 * 1024;

/** Names for requests that may be valid: never the seeded configs' user. */
const fuzzUser = fc.oneof(
  { weight: 2, arbitrary: fc.constant('fz-grpc') },
  { weight: 2, arbitrary: validName.map((name) => (name === 'seed-keeper' ? 'fz' : name)) },
  { weight: 1, arbitrary: hostileText.map((name) => (name === 'seed-keeper' ? 'fz' : name)) },
);

/** A request message of the method's own type, with random (often invalid) fields. */
function validMessage(method: string): fc.Arbitrary<Uint8Array> {
  switch (method) {
    case 'Put':
      return fc
        .tuple(
          fuzzUser,
          fc.oneof(validName, validName, hostileText),
          fc.dictionary(oddKey, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }),
          fc.option(fc.integer({ min: -2, max: 5 })),
          fc.boolean(),
        )
        .map(([userId, configName, values, expected, validateOnly]) =>
          PutRequest.encode({
            userId,
            configName,
            values,
            expectedVersion: expected ?? undefined,
            validateOnly,
          }).finish(),
        );
    case 'Get':
      return fc
        .tuple(
          fc.oneof(fc.constant('seed-keeper'), fuzzUser),
          fc.oneof(fc.constant('kept-0'), hostileText),
          fc.integer({ min: -5, max: 10 }),
        )
        .map(([userId, configName, version]) => GetRequest.encode({ userId, configName, version }).finish());
    case 'History':
      return fc
        .tuple(
          fc.oneof(fc.constant('seed-keeper'), fuzzUser),
          fc.oneof(fc.constant('kept-1'), hostileText),
          fc.integer({ min: -5, max: 10 }),
          fc.integer({ min: -5, max: 2000 }),
          hostileText,
        )
        .map(([userId, configName, startVersion, pageSize, pageToken]) =>
          HistoryRequest.encode({ userId, configName, startVersion, pageSize, pageToken }).finish(),
        );
    case 'Watch':
      return fc
        .tuple(
          fuzzUser,
          fc.oneof(fc.constant(''), validName, hostileText),
          fc.option(fc.integer({ min: -2, max: 5 })),
          fc.oneof(fc.constant({}), fc.dictionary(hostileText, fc.integer({ min: -2, max: 5 }), { maxKeys: 3 })),
        )
        .map(([userId, configName, startVersion, knownVersions]) =>
          WatchRequest.encode({ userId, configName, startVersion: startVersion ?? undefined, knownVersions }).finish(),
        );
    case 'SetSchema':
      return fc
        .tuple(
          fuzzUser,
          fc.oneof(validName, hostileText),
          fc.oneof(
            fc.dictionary(
              fc.constantFrom('type', 'properties', 'required', 'pattern', '$ref', 'maximum'),
              fc.jsonValue({ maxDepth: 3 }),
              {
                maxKeys: 4,
              },
            ),
            fc.constantFrom<Record<string, unknown>>(
              { type: 'object' },
              { $ref: 'https://example.com/s.json' },
              { properties: { s: { type: 'string', pattern: '^(a+)+$' } } },
              { properties: { s: { pattern: '(a)\\1' } } },
            ),
          ),
          fc.option(fc.dictionary(oddKey, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 })),
          fc.option(fc.integer({ min: -2, max: 5 })),
          fc.boolean(),
        )
        .map(([userId, configName, schema, migrationValues, expected, validateOnly]) =>
          SetSchemaRequest.encode({
            userId,
            configName,
            schema,
            migrationValues: migrationValues ?? undefined,
            expectedSchemaVersion: expected ?? undefined,
            validateOnly,
          }).finish(),
        );
    case 'GetSchema':
      return fc
        .tuple(fuzzUser, fc.oneof(validName, hostileText), fc.integer({ min: -5, max: 10 }))
        .map(([userId, configName, schemaVersion]) =>
          GetSchemaRequest.encode({ userId, configName, schemaVersion }).finish(),
        );
    case 'SchemaHistory':
      return fc
        .tuple(
          fuzzUser,
          fc.oneof(validName, hostileText),
          fc.integer({ min: -5, max: 10 }),
          fc.integer({ min: -5, max: 2000 }),
          hostileText,
        )
        .map(([userId, configName, startSchemaVersion, pageSize, pageToken]) =>
          SchemaHistoryRequest.encode({ userId, configName, startSchemaVersion, pageSize, pageToken }).finish(),
        );
    case 'SetRetention':
      return fc
        .tuple(fuzzUser, fc.oneof(validName, hostileText), fc.option(fc.integer({ min: -3, max: 5 })))
        .map(([userId, configName, maxVersions]) =>
          SetRetentionRequest.encode({ userId, configName, maxVersions: maxVersions ?? undefined }).finish(),
        );
    case 'VerifyHistory':
    case 'Blame':
      return fc
        .tuple(fc.oneof(fc.constant('seed-keeper'), fuzzUser), fc.oneof(fc.constant('kept-0'), validName, hostileText))
        .map(([userId, configName]) =>
          (method === 'Blame' ? BlameRequest : VerifyHistoryRequest).encode({ userId, configName }).finish(),
        );
    case 'ListConfigs':
      return fc
        .tuple(
          fc.oneof(fc.constant('seed-keeper'), fuzzUser),
          fc.integer({ min: -5, max: 2000 }),
          fc.oneof(fc.constant(''), hostileText),
          fc.oneof(fc.constant(''), fc.constant('kept'), validName, hostileText),
          fc.boolean(),
          // An unknown enum value among them.
          fc.integer({ min: -1, max: 3 }),
        )
        .map(([userId, pageSize, pageToken, namePrefix, showDeleted, view]) =>
          ListConfigsRequest.encode({ userId, pageSize, pageToken, namePrefix, showDeleted, view }).finish(),
        );
    case 'Patch':
      return fc
        .tuple(
          fuzzUser,
          fc.oneof(validName, validName, hostileText),
          fc.option(fc.dictionary(oddKey, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 })),
          fc.option(fc.integer({ min: -2, max: 5 })),
          fc.boolean(),
        )
        .map(([userId, configName, patch, expected, validateOnly]) =>
          PatchRequest.encode({
            userId,
            configName,
            patch: patch ?? undefined,
            expectedVersion: expected ?? undefined,
            validateOnly,
          }).finish(),
        );
    case 'Rollback':
      return fc
        .tuple(
          fuzzUser,
          fc.oneof(validName, validName, hostileText),
          fc.integer({ min: -2, max: 6 }),
          fc.option(fc.integer({ min: -2, max: 5 })),
          fc.boolean(),
        )
        .map(([userId, configName, toVersion, expected, validateOnly]) =>
          RollbackRequest.encode({
            userId,
            configName,
            toVersion,
            expectedVersion: expected ?? undefined,
            validateOnly,
          }).finish(),
        );
    case 'Delete':
    case 'Undelete':
      return fc
        .tuple(
          fuzzUser,
          fc.oneof(validName, validName, hostileText),
          fc.option(fc.integer({ min: -2, max: 5 })),
          fc.boolean(),
        )
        .map(([userId, configName, expected, validateOnly]) => {
          const request = { userId, configName, expectedVersion: expected ?? undefined, validateOnly };
          return (method === 'Delete' ? DeleteRequest : UndeleteRequest).encode(request).finish();
        });
    default:
      return fc.constant(new Uint8Array());
  }
}

type Compression =
  | 'none'
  | 'flag-without-encoding'
  | 'gzip'
  | 'deflate'
  | 'gzip-corrupt'
  | 'deflate-corrupt'
  | 'unknown-encoding'
  | 'encoding-without-flag';
type Framing = 'exact' | 'shorter' | 'longer' | 'huge-prefix' | 'two-messages' | 'no-prefix' | 'empty';

interface GrpcCase {
  readonly path: string;
  readonly method: string;
  readonly message: Uint8Array;
  readonly compression: Compression;
  readonly framing: Framing;
  readonly contentType: string;
  readonly timeout: string | undefined;
  readonly extra: Record<string, string>;
}

/** The ConfigService methods fuzzed with messages of their own type. */
const METHODS = [
  'Put',
  'Get',
  'History',
  'Watch',
  'SetSchema',
  'GetSchema',
  'SchemaHistory',
  'ListConfigs',
  'Patch',
  'Rollback',
  'Delete',
  'Undelete',
  'VerifyHistory',
  'Blame',
  'SetRetention',
];
const methodName = fc.constantFrom(...METHODS);

const grpcCase: fc.Arbitrary<GrpcCase> = fc
  .record({
    target: fc.oneof(
      { weight: 8, arbitrary: methodName.map((m) => ({ path: `${SERVICE}/${m}`, method: m })) },
      {
        weight: 1,
        arbitrary: fc
          .constantFrom(
            '/cfgd.v1.ConfigService/Nope',
            '/cfgd.v1.ConfigService/put',
            '/nope',
            '/',
            '//',
            '/cfgd.v1.StatusService/GetStatus',
            '/grpc.health.v1.Health/Check',
            `/${'x'.repeat(5000)}`,
          )
          .map((path) => ({ path, method: 'other' })),
      },
    ),
    kind: fc.constantFrom('valid', 'valid', 'valid', 'valid', 'garbage', 'empty'),
    garbage: fc.uint8Array({ maxLength: 300 }),
    compression: fc.oneof(
      { weight: 12, arbitrary: fc.constant<Compression>('none') },
      {
        weight: 1,
        arbitrary: fc.constantFrom<Compression>(
          'flag-without-encoding',
          'gzip',
          'deflate',
          'gzip-corrupt',
          'deflate-corrupt',
          'unknown-encoding',
          'encoding-without-flag',
        ),
      },
    ),
    framing: fc.oneof(
      { weight: 12, arbitrary: fc.constant<Framing>('exact') },
      {
        weight: 1,
        arbitrary: fc.constantFrom<Framing>('shorter', 'longer', 'huge-prefix', 'two-messages', 'no-prefix', 'empty'),
      },
    ),
    contentType: fc.oneof(
      { weight: 12, arbitrary: fc.constantFrom('application/grpc', 'application/grpc+proto') },
      {
        weight: 1,
        arbitrary: fc.constantFrom('application/grpc+json', 'application/grpcx', 'application/json', 'text/plain', ''),
      },
    ),
    timeout: fc.oneof(
      { weight: 4, arbitrary: fc.constant(undefined) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          '1S',
          '100m',
          '5000u',
          '99999999H',
          '0n',
          'abc',
          '1x',
          '',
          '-1S',
          '1.5S',
          '999999999S',
          'S',
          '1 S',
        ),
      },
    ),
    extra: fc.dictionary(
      fc.constantFrom(
        'x-junk',
        'x-junk-bin',
        'grpc-accept-encoding',
        'grpc-status-details-bin',
        'authorization',
        'user-agent',
        'grpc-message-type',
      ),
      fc.stringMatching(/^[ -~]{0,40}$/).map((value) => value.trim()),
      { maxKeys: 3 },
    ),
  })
  .chain((raw) =>
    (raw.kind === 'valid'
      ? validMessage(raw.target.method)
      : fc.constant(raw.kind === 'garbage' ? raw.garbage : new Uint8Array())
    ).map((message): GrpcCase => ({
      path: raw.target.path,
      method: raw.target.method,
      message,
      compression: raw.compression,
      framing: raw.framing,
      contentType: raw.contentType,
      timeout: raw.timeout,
      extra: raw.extra,
    })),
  )
  .map((c) =>
    Object.defineProperty(c, fc.toStringMethod, {
      value: () =>
        `${c.path.slice(0, 60)} ${c.message.length} bytes ${Buffer.from(c.message.subarray(0, 40)).toString('hex')} ${c.compression} ${c.framing} content-type ${JSON.stringify(c.contentType)} timeout ${JSON.stringify(c.timeout)} ${JSON.stringify(c.extra)}`,
    }),
  );

/** The request's bytes and headers for a case. */
function encode(c: GrpcCase): { body: Buffer; headers: Record<string, string> } {
  const headers: Record<string, string> = { ...c.extra, 'content-type': c.contentType };
  if (c.timeout !== undefined) headers['grpc-timeout'] = c.timeout;
  let payload = Buffer.from(c.message);
  let flagged = false;
  switch (c.compression) {
    case 'gzip':
    case 'deflate':
      payload = c.compression === 'gzip' ? gzipSync(payload) : deflateSync(payload);
      headers['grpc-encoding'] = c.compression;
      flagged = true;
      break;
    case 'gzip-corrupt':
    case 'deflate-corrupt':
      payload = Buffer.concat([Buffer.from('corrupt!'), payload]);
      headers['grpc-encoding'] = c.compression.split('-')[0]!;
      flagged = true;
      break;
    case 'unknown-encoding':
      headers['grpc-encoding'] = 'snappy';
      flagged = true;
      break;
    case 'encoding-without-flag':
      headers['grpc-encoding'] = 'gzip';
      break;
    case 'flag-without-encoding':
      flagged = true;
      break;
    case 'none':
      break;
  }
  let body: Buffer;
  switch (c.framing) {
    case 'exact':
      body = grpcFrame(payload, { compressed: flagged });
      break;
    case 'shorter':
      body = grpcFrame(payload, { compressed: flagged, length: Math.max(0, payload.length - 3) });
      break;
    case 'longer':
      body = grpcFrame(payload, { compressed: flagged, length: payload.length + 7 });
      break;
    case 'huge-prefix':
      body = grpcFrame(payload, { compressed: flagged, length: 0xffffffff });
      break;
    case 'two-messages':
      body = Buffer.concat([grpcFrame(payload, { compressed: flagged }), grpcFrame(payload, { compressed: flagged })]);
      break;
    case 'no-prefix':
      body = payload;
      break;
    case 'empty':
      body = Buffer.alloc(0);
      break;
  }
  return { body, headers };
}

/** Whether an INTERNAL answer is one of grpc-js's own, documented ones, and fits what the case sent. */
function documentedInternal(c: GrpcCase, answer: H2Answer): boolean {
  const known = GRPC_JS_INTERNAL.find((entry) => entry.message.test(answer.grpcMessage));
  if (known === undefined) return false;
  if (known.cause === 'malformed grpc-timeout') return c.timeout !== undefined;
  return (
    c.compression === 'gzip-corrupt' ||
    c.compression === 'deflate-corrupt' ||
    (c.compression === 'gzip' && c.framing !== 'exact') ||
    (c.compression === 'deflate' && c.framing !== 'exact')
  );
}

async function expectSessionUsable(what: string): Promise<void> {
  const answer = await h2Call(
    session,
    `${SERVICE}/Get`,
    grpcFrame(GetRequest.encode({ userId: 'seed-keeper', configName: 'kept-0', version: 0 }).finish()),
  );
  expect(
    answer.grpcStatus,
    `${what}: the session is no longer usable (${answer.grpcMessage}, rst ${answer.rstCode})`,
  ).toBe(GrpcStatus.OK);
  expect(GetResponse.decode(answer.data.subarray(5)).config?.version, what).toBe(3);
}

describe('gRPC fuzz', () => {
  it(
    "hostile calls on one session: no INTERNAL but grpc-js's documented ones, no reset of the connection, the session usable after each",
    async () => {
      const property = fc.asyncProperty(grpcCase, fc.nat(40), async (c, oversize) => {
        const what = String((c as unknown as Record<symbol, () => string>)[fc.toStringMethod]?.());
        let { body, headers } = encode(c);
        // Now and then the message is over the server's limit (4 MiB).
        if (oversize === 0 && c.framing === 'exact' && c.compression === 'none')
          body = grpcFrame(Buffer.alloc(5 * MIB, 0x41));
        // A valid Watch stays open: it is cancelled after a moment, as a client would.
        const answer = await h2Call(session, c.path, body, headers, 10_000, c.method === 'Watch' ? 100 : undefined);
        outcomes.add(
          answer.grpcStatus === undefined
            ? `HTTP ${answer.httpStatus}${answer.rstCode === 0 ? '' : ` rst ${answer.rstCode}`}`
            : (GrpcStatus[answer.grpcStatus] ?? `status ${answer.grpcStatus}`),
        );
        if (!c.contentType.startsWith('application/grpc')) {
          expect(answer.httpStatus, what).toBe(415);
        } else {
          expect(answer.httpStatus, what).toBe(200);
          if (answer.grpcStatus === undefined) {
            // Only a Watch we cancelled ourselves ends without a status.
            expect(c.method, `${what}: no grpc-status (rst ${answer.rstCode})`).toBe('Watch');
            expect(answer.rstCode, what).toBe(H2_ERROR.CANCEL);
          } else {
            expect([GrpcStatus.UNKNOWN, GrpcStatus.DATA_LOSS], `${what}: ${answer.grpcMessage}`).not.toContain(
              answer.grpcStatus,
            );
            if (answer.grpcStatus === (GrpcStatus.INTERNAL as number)) {
              expect(documentedInternal(c, answer), `${what}: INTERNAL "${answer.grpcMessage}"`).toBe(true);
            }
          }
        }
        expect(answer.grpcMessage, what).not.toMatch(/\bat [^\n]*:\d+:\d+/);
        expect(session.closed || session.destroyed, what).toBe(false);
        await expectSessionUsable(what);
      });
      await fc.assert(property, { seed: settings.seed, numRuns: settings.runs });
      const frames = proxy.fromServer;
      expect(frames.filter((f) => f.type === FRAME.GOAWAY)).toEqual([]);
      expect(
        frames.filter(
          (f) => f.type === FRAME.RST_STREAM && f.errorCode !== H2_ERROR.NO_ERROR && f.errorCode !== H2_ERROR.CANCEL,
        ),
      ).toEqual([]);
    },
    settings.timeoutMs,
  );

  it('afterwards: the server answers, logged no error, holds no stream, and the seeded configs are byte-for-byte unchanged', async () => {
    await expectSessionUsable('after the fuzzing');
    // The node's own count over gRPC, then the checks every fuzz suite ends with.
    await eventually(async () => expect((await server.client().status()).watchStreams).toBe(0));
    await target.expectUntouched();
  });
});
