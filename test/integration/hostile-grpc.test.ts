import { status as GrpcStatus } from '@grpc/grpc-js';
import type { ClientHttp2Session } from 'node:http2';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetRequest, GetResponse, PutRequest } from '../../generated/cfgd/v1/config_service.js';
import { rejection } from '../helpers/client.js';
import { FRAME, grpcFrame, H2_ERROR, H2FrameProxy, h2Call, h2Session } from '../helpers/h2-grpc.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * gRPC under hostile input (issue 10, points 5 and 6), driven by a bare
 * node:http2 client so that each test controls every byte and sees exactly
 * what the server sent.
 */

let server: TestServer;
let proxy: H2FrameProxy;

beforeAll(async () => {
  server = await startTestServer();
  proxy = await H2FrameProxy.start(server.cfgd.grpcPort);
});
afterAll(async () => {
  await proxy.stop();
  await server.stop();
});

const PUT = '/cfgd.v1.ConfigService/Put';
const GET = '/cfgd.v1.ConfigService/Get';
const MIB = 1024 * 1024;

function putMessage(userId: string, configName: string, values: Record<string, unknown>): Buffer {
  return grpcFrame(
    PutRequest.encode({ userId, configName, values, expectedVersion: undefined, validateOnly: false }).finish(),
  );
}

function getMessage(userId: string, configName: string): Buffer {
  return grpcFrame(GetRequest.encode({ userId, configName, version: 0 }).finish());
}

/** A Get on `session` that must succeed: the session is still usable. */
async function expectUsable(session: ClientHttp2Session, userId: string, configName: string): Promise<GetResponse> {
  const answer = await h2Call(session, GET, getMessage(userId, configName));
  expect(answer.grpcStatus, answer.grpcMessage).toBe(GrpcStatus.OK);
  return GetResponse.decode(answer.data.subarray(5));
}

describe('an oversized message (issue 10, point 5)', () => {
  it('gets RESOURCE_EXHAUSTED each time, and the connection stays usable: the server resets nothing', async () => {
    const sent = proxy.fromServer.length;
    // A client whose own HTTP/2 session memory limit is above its largest message (see README).
    const session = await h2Session(proxy.port, 256);
    try {
      await h2Call(session, PUT, putMessage('big', 'app', { a: 1 }));
      for (const mib of [10, 30, 10]) {
        const answer = await h2Call(session, PUT, putMessage('big', 'app', { big: 'x'.repeat(mib * MIB) }), {}, 30_000);
        expect(answer.httpStatus, `${mib} MiB`).toBe(200);
        expect(answer.grpcStatus, `${mib} MiB: ${answer.grpcMessage}`).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
        expect(answer.grpcMessage).toMatch(/^Received message larger than max \(\d+ vs 4194304\)$/);
        expect(answer.rstCode).toBe(H2_ERROR.NO_ERROR);
      }
      const got = await expectUsable(session, 'big', 'app');
      expect(got.config?.values).toEqual({ a: 1 });
    } finally {
      session.close();
    }
    const frames = proxy.fromServer.slice(sent);
    expect(frames.filter((f) => f.type === FRAME.GOAWAY)).toEqual([]);
    expect(frames.filter((f) => f.type === FRAME.RST_STREAM && f.errorCode === H2_ERROR.ENHANCE_YOUR_CALM)).toEqual([]);
  });

  it('over the generated grpc-js client: RESOURCE_EXHAUSTED, and the same client goes on', async () => {
    const client = server.client();
    await client.put({ userId: 'big', configName: 'grpc-js', values: { a: 1 } });
    for (const mib of [10, 30]) {
      const error = await rejection(
        client.put({ userId: 'big', configName: 'grpc-js', values: { big: 'x'.repeat(mib * MIB) } }),
      );
      expect(error.code, error.details).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    }
    expect((await client.get({ userId: 'big', configName: 'grpc-js' })).config?.values).toEqual({ a: 1 });
  });

  it('a node:http2 client with the default session memory limit fails on its own side; the server sent no reset', async () => {
    // Why the README tells node:http2 clients to raise maxSessionMemory: with Node's default
    // (10 MB) the client's own session refuses the 30 MiB it buffers, and resets the stream
    // with ENHANCE_YOUR_CALM itself. The server sent neither RST_STREAM nor GOAWAY.
    const sent = proxy.fromServer.length;
    const session = await h2Session(proxy.port);
    try {
      const answer = await h2Call(
        session,
        PUT,
        putMessage('big', 'default', { big: 'x'.repeat(30 * MIB) }),
        {},
        30_000,
      );
      expect(answer.grpcStatus).toBeUndefined();
      expect(answer.rstCode).toBe(H2_ERROR.ENHANCE_YOUR_CALM);
    } finally {
      session.destroy();
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    const frames = proxy.fromServer.slice(sent);
    expect(frames.filter((f) => f.type === FRAME.RST_STREAM || f.type === FRAME.GOAWAY)).toEqual([]);
  });
});

/**
 * Statuses that grpc-js itself sends before any cfgd code runs, and that a
 * server cannot change through grpc-js's public API: `handleTimeoutHeader`
 * and `decompressAndMaybePush` in grpc-js's server-interceptors.js call the
 * base call's own `sendStatus`, beneath every server interceptor. They are
 * documented in the README (Errors); these tests pin them, so an upgrade of
 * grpc-js that changes them is noticed.
 */
describe('client mistakes grpc-js answers with INTERNAL (issue 10, point 6)', () => {
  it('a corrupt gzip message: INTERNAL "Failed to decompress message"; the session and the server go on', async () => {
    const session = await h2Session(proxy.port);
    try {
      await h2Call(session, PUT, putMessage('gz', 'app', { a: 1 }));
      const garbage = grpcFrame(Buffer.from('this is not gzip at all'), { compressed: true });
      for (const encoding of ['gzip', 'deflate']) {
        const answer = await h2Call(session, GET, garbage, { 'grpc-encoding': encoding });
        expect(answer.grpcStatus, encoding).toBe(GrpcStatus.INTERNAL);
        expect(answer.grpcMessage).toBe('Failed to decompress message');
      }
      // The same Put, properly compressed, is accepted: the failure is the bytes, not gzip.
      const good = PutRequest.encode({
        userId: 'gz',
        configName: 'app',
        values: { a: 2 },
        expectedVersion: undefined,
        validateOnly: false,
      }).finish();
      const compressed = await h2Call(session, PUT, grpcFrame(gzipSync(good), { compressed: true }), {
        'grpc-encoding': 'gzip',
      });
      expect(compressed.grpcStatus, compressed.grpcMessage).toBe(GrpcStatus.OK);
      // A corrupt Put writes nothing.
      const corruptPut = grpcFrame(gzipSync(good).subarray(0, 12), { compressed: true });
      expect((await h2Call(session, PUT, corruptPut, { 'grpc-encoding': 'gzip' })).grpcStatus).toBe(
        GrpcStatus.INTERNAL,
      );
      expect((await expectUsable(session, 'gz', 'app')).config?.version).toBe(2);
    } finally {
      session.close();
    }
  });

  it('a malformed grpc-timeout: INTERNAL "Invalid grpc-timeout value"; nothing is written and the session goes on', async () => {
    const session = await h2Session(proxy.port);
    try {
      await h2Call(session, PUT, putMessage('timeout', 'app', { a: 1 }));
      for (const timeout of ['abc', '1x', '']) {
        const answer = await h2Call(session, PUT, putMessage('timeout', 'app', { a: timeout }), {
          'grpc-timeout': timeout,
        });
        expect(answer.grpcStatus, JSON.stringify(timeout)).toBe(GrpcStatus.INTERNAL);
        expect(answer.grpcMessage).toBe(`Invalid grpc-timeout value "${timeout}"`);
      }
      const got = await expectUsable(session, 'timeout', 'app');
      expect(got.config?.version).toBe(1);
      expect(got.config?.values).toEqual({ a: 1 });
    } finally {
      session.close();
    }
    expect((await server.client().status()).watchStreams).toBe(0);
  });

  it('undecodable protobuf stays INVALID_ARGUMENT (cfgd decodes it, not grpc-js)', async () => {
    const session = await h2Session(proxy.port);
    try {
      const answer = await h2Call(session, PUT, grpcFrame(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff])));
      expect(answer.grpcStatus, answer.grpcMessage).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect(answer.grpcMessage).toMatch(/^the request could not be decoded: /);
    } finally {
      session.close();
    }
  });
});
