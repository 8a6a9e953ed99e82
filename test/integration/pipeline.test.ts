/**
 * One interceptor, given to startCfgd, sees every call of both transports:
 * gRPC unary and streaming calls, the /v1 routes derived from the protos
 * (JSON and SSE) and the legacy /values routes, with what each transport
 * extracted (request id, credentials, peer) and how each call ended.
 */
import { Metadata } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CfgdError } from '../../src/domain/index.js';
import type { CallInfo, Interceptor } from '../../src/transport/pipeline.js';
import { opened, rejection } from '../helpers/client.js';
import { http, sendJson } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { SseClient } from '../helpers/sse.js';
import { eventually } from '../helpers/wait.js';

interface Seen {
  readonly info: Omit<CallInfo, 'deadline' | 'principal'>;
  outcome?: string;
}

const seen: Seen[] = [];
const record: Interceptor = async (call, next) => {
  // What the call carries is read while it runs, as an access log would.
  const { method, transport, streaming, requestId, peer, authorization, clientCertificate } = call.info;
  const entry: Seen = { info: { method, transport, streaming, requestId, peer, authorization, clientCertificate } };
  seen.push(entry);
  try {
    const result = await next();
    entry.outcome = 'ok';
    return result;
  } catch (error: unknown) {
    entry.outcome = error instanceof CfgdError ? error.reason : 'not a CfgdError';
    throw error;
  }
};

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ heartbeatMs: 0 }, 'normal', pino({ level: 'silent' }), { interceptors: [record] });
});
afterAll(async () => server.stop());

const last = (method: string): Seen | undefined => seen.filter((s) => s.info.method === method).at(-1);

describe('the request pipeline of both transports', () => {
  it('sees every gRPC call, unary and streaming, with its metadata and outcome', async () => {
    const client = server.client();
    const key = { userId: 'pipe', configName: 'grpc' };
    await client.put({ ...key, values: { a: 1 } });
    const metadata = new Metadata();
    metadata.set('x-request-id', 'req-42');
    metadata.set('authorization', 'Bearer abc');
    await new Promise<void>((resolve, reject) =>
      client.raw.get({ ...key, version: 0 }, metadata, (error) => (error ? reject(error) : resolve())),
    );
    await rejection(client.get({ userId: 'pipe', configName: 'missing' }));
    await client.history(key);
    await client.status();
    const stream = client.watch({ ...key, startVersion: 0 });
    stream.on('error', () => {});
    await opened(stream);
    stream.cancel();

    expect(last('cfgd.v1.ConfigService/Put')).toMatchObject({
      info: { transport: 'grpc', streaming: false },
      outcome: 'ok',
    });
    const get = seen.find((s) => s.info.requestId === 'req-42');
    expect(get).toMatchObject({
      info: { method: 'cfgd.v1.ConfigService/Get', authorization: 'Bearer abc' },
      outcome: 'ok',
    });
    expect(get?.info.peer).toMatch(/^(ipv4:)?127\.0\.0\.1:\d+$/);
    expect(last('cfgd.v1.ConfigService/Get')).toMatchObject({ outcome: 'CONFIG_NOT_FOUND' });
    expect(last('cfgd.v1.ConfigService/History')).toMatchObject({ outcome: 'ok' });
    expect(last('cfgd.v1.StatusService/GetStatus')).toMatchObject({ info: { transport: 'grpc' }, outcome: 'ok' });
    // A stream's call is over when the stream is: the client's cancel is how it ended.
    await eventually(() =>
      expect(last('cfgd.v1.ConfigService/Watch')).toMatchObject({
        info: { transport: 'grpc', streaming: true },
        outcome: 'CANCELLED',
      }),
    );
  });

  it('sees every REST call: routes from the protos, SSE streams and the legacy routes', async () => {
    const port = server.cfgd.httpPort;
    const path = '/v1/users/pipe/configs/rest';
    await sendJson(port, 'PUT', path, { a: 1 }, { 'x-request-id': 'rest-1', authorization: 'Bearer xyz' });
    await http(port, 'GET', path);
    await http(port, 'GET', `${path}/history`);
    await http(port, 'GET', '/v1/status');
    await sendJson(port, 'POST', '/values/pipe/legacy', { b: 2 });
    await http(port, 'GET', '/values/pipe/legacy');
    await http(port, 'GET', '/values/pipe/nothing');
    const { client: sse } = await SseClient.open(port, `${path}:watch?start_version=0`);
    await sse.until((c) => c.messages().length === 1);
    sse.close();

    expect(seen.find((s) => s.info.requestId === 'rest-1')).toMatchObject({
      info: { method: 'cfgd.v1.ConfigService/Put', transport: 'rest', streaming: false, authorization: 'Bearer xyz' },
      outcome: 'ok',
    });
    const rest = seen.filter((s) => s.info.transport === 'rest');
    expect(rest.map((s) => s.info.method)).toEqual(
      expect.arrayContaining([
        'cfgd.v1.ConfigService/Get',
        'cfgd.v1.ConfigService/History',
        'cfgd.v1.StatusService/GetStatus',
        'legacy POST /values/{user_id}/{config_name}',
        'legacy GET /values/{user_id}/{config_name}',
      ]),
    );
    expect(last('legacy GET /values/{user_id}/{config_name}')).toMatchObject({ outcome: 'CONFIG_NOT_FOUND' });
    await eventually(() =>
      expect(last('cfgd.v1.ConfigService/Watch')).toMatchObject({
        info: { transport: 'rest', streaming: true },
        outcome: 'CANCELLED',
      }),
    );
    // Every call was seen once, and every one of them has ended.
    expect(seen.every((s) => s.outcome !== undefined)).toBe(true);
    expect(new Set(seen.map((s) => s.info.requestId)).size).toBe(seen.length);
  });
});
