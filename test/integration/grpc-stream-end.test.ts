/**
 * The generic gRPC server-stream adapter, with a stream that finishes: the
 * client must see every message, then the end of the call with status OK.
 * (Watch never finishes, so only a method of its own can show this.)
 */
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigServiceClient,
  ConfigServiceService,
  WatchEventType,
  type WatchRequest,
  type WatchResponse,
} from '../../generated/cfgd/v1/config_service.js';
import { grpcHandlers } from '../../src/transport/grpc/handlers.js';
import { startGrpcServer, type RunningGrpcServer } from '../../src/transport/grpc/server.js';
import { RequestPipeline } from '../../src/transport/pipeline.js';
import type { MessageStream, ServerStreamMethod } from '../../src/transport/methods.js';

const PROGRESS: WatchResponse = {
  type: WatchEventType.WATCH_EVENT_TYPE_PROGRESS,
  config: undefined,
  auditEntry: undefined,
};

/** A server stream of `count` messages that then finishes. */
function finite(count: number, closed: { count: number }): ServerStreamMethod<WatchRequest, WatchResponse> {
  return {
    kind: 'server-stream',
    async open(): Promise<MessageStream<WatchResponse>> {
      return {
        async *[Symbol.asyncIterator]() {
          for (let i = 0; i < count; i++) yield PROGRESS;
        },
        ended: new AbortController().signal,
        close: () => void closed.count++,
      };
    },
  };
}

let server: RunningGrpcServer;
let client: ConfigServiceClient;
const closed = { count: 0 };
const shutdown = new AbortController();

beforeAll(async () => {
  server = await startGrpcServer({
    address: '127.0.0.1:0',
    services: [
      {
        definition: ConfigServiceService,
        handlers: grpcHandlers({
          service: 'cfgd.v1.ConfigService',
          methods: { Watch: finite(3, closed) },
          pipeline: new RequestPipeline([], pino({ level: 'silent' })),
          shutdown: shutdown.signal,
        }),
      },
    ],
    maxReceiveMessageBytes: 4 * 1024 * 1024,
    keepaliveMs: 30_000,
    keepaliveTimeoutMs: 10_000,
  });
  client = new ConfigServiceClient(`127.0.0.1:${server.port}`, credentials.createInsecure());
});
afterAll(async () => {
  client.close();
  shutdown.abort();
  await server.shutdown(1000);
});

describe('a finite gRPC server stream', () => {
  it('delivers every message, then ends the call with OK and releases the stream', async () => {
    const call = client.watch({ userId: 'u', configName: 'c', startVersion: undefined, knownVersions: {} });
    const received: WatchResponse[] = [];
    call.on('data', (message: WatchResponse) => received.push(message));
    const ending = await new Promise<{ end: boolean; code: status }>((resolve) => {
      let ended = false;
      call.on('end', () => (ended = true));
      call.on('status', (s: { code: status }) => resolve({ end: ended, code: s.code }));
      call.on('error', (error: ServiceError) => resolve({ end: false, code: error.code }));
      // Without an end, the call would hang: fail in a bounded time instead.
      setTimeout(() => resolve({ end: false, code: status.DEADLINE_EXCEEDED }), 3000);
    });
    expect(received).toHaveLength(3);
    expect(ending.code).toBe(status.OK);
    expect(closed.count).toBe(1);
  });
});
