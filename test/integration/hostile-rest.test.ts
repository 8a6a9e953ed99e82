import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigServiceService } from '../../generated/cfgd/v1/config_service.js';
import { fromBinary } from '@bufbuild/protobuf';
import { CfgdError } from '../../src/domain/index.js';
import type { AnyMethod } from '../../src/transport/methods.js';
import { gatewayRoutes, loadRegistry } from '../../src/transport/rest/gateway.js';
import { startRestServer } from '../../src/transport/rest/server.js';
import { RequestPipeline } from '../../src/transport/pipeline.js';
import { RawHttpConnection } from '../helpers/fuzz-http.js';
import {
  errorLogs,
  expectErrorBody,
  fillTemplate,
  LEVEL,
  servedRoutes,
  startLoggedServer,
  type LoggedServer,
} from '../helpers/fuzz-support.js';
import { http, sendJson } from '../helpers/http.js';
import { SseClient } from '../helpers/sse.js';
import { eventually } from '../helpers/wait.js';

/**
 * Regression tests for the REST defects of issue 10 found by hostile input:
 * a query string that reached an unexpected exception (point 2), HEAD on a
 * watch that never answered (point 3), client hang-ups logged as server
 * errors and parser errors answered without the JSON body (point 7).
 */

let server: LoggedServer;
let port: number;

beforeAll(async () => {
  server = await startLoggedServer({ maxBodyBytes: 64 * 1024 });
  port = server.cfgd.httpPort;
});
afterAll(async () => server.stop());

function expectError(res: { status: number; text: string; json: any }, status: number, reason: string): void {
  expect(res.status, res.text).toBe(status);
  expectErrorBody(status, res.text, `${status} ${reason}`);
  expect(res.json.error.details[0].reason).toBe(reason);
}

async function openConnection(): Promise<RawHttpConnection> {
  return RawHttpConnection.open(port);
}

describe('query strings (issue 10, point 2)', () => {
  it('a plain parameter naming a map field is INVALID_ARGUMENT in either order, never a 500', async () => {
    for (const query of [
      'known_versions=1&known_versions[app]=2',
      'known_versions[app]=2&known_versions=1',
      'known_versions=1',
    ]) {
      const res = await http(port, 'GET', `/v1/users/u1/configs:watch?${query}`);
      expectError(res, 400, 'QUERY_PARAMETER_INVALID');
      expect(res.json.error.message).toContain('known_versions is a map; use known_versions[key]=value');
    }
    expect(errorLogs(server.logs)).toEqual([]);
  });

  it('odd, repeated and misplaced parameters are 400 with the JSON error body on every route', async () => {
    const cases: [query: string, reason: string][] = [
      ['a[b][c]=1', 'QUERY_PARAMETER_UNKNOWN'],
      ['[x]=1', 'QUERY_PARAMETER_UNKNOWN'],
      ['=1', 'QUERY_PARAMETER_UNKNOWN'],
      ['%00=1', 'QUERY_PARAMETER_UNKNOWN'],
      [`${'p'.repeat(6000)}=1`, 'QUERY_PARAMETER_UNKNOWN'],
      ['known_versions[]=1', 'QUERY_PARAMETER_UNKNOWN'],
      ['known_versions.x=1', 'QUERY_PARAMETER_UNKNOWN'],
      ['user_id=u2', 'QUERY_PARAMETER_UNKNOWN'],
      ['start_version[a]=1', 'QUERY_PARAMETER_INVALID'],
      ['start_version=1&start_version=2', 'QUERY_PARAMETER_INVALID'],
      ['start_version=abc', 'REQUEST_INVALID'],
    ];
    const userCases: [query: string, reason: string][] = [
      ['known_versions[a]=1&known_versions[a]=2', 'QUERY_PARAMETER_INVALID'],
      ['known_versions[a]=abc', 'REQUEST_INVALID'],
      ['known_versions[a]=-1', 'VERSION_INVALID'],
      ['known_versions[bad%20name]=1', 'NAME_INVALID'],
      ['known_versions[%00]=1', 'NAME_INVALID'],
    ];
    const routes: [path: string, queries: [string, string][]][] = [
      ['/v1/users/u1/configs/app:watch', cases],
      ['/v1/users/u1/configs:watch', [...cases.filter(([q]) => !q.startsWith('start_version')), ...userCases]],
      ['/v1/users/u1/configs/app', cases.filter(([q]) => !q.startsWith('start_version'))],
      ['/v1/users/u1/configs/app/history', cases],
    ];
    for (const [path, queries] of routes) {
      for (const [query, reason] of queries) {
        const res = await http(port, 'GET', `${path}?${query}`);
        expect(res.status, `${path}?${query.slice(0, 80)}: ${res.text}`).toBe(400);
        expectError(res, 400, reason);
      }
    }
    // A Put whose query is wrong writes nothing, whatever its body.
    const put = await sendJson(port, 'PUT', '/v1/users/u1/configs/app?expected_version=1&expected_version=2', { a: 1 });
    expectError(put, 400, 'QUERY_PARAMETER_INVALID');
    expectError(await http(port, 'GET', '/v1/users/u1/configs/app'), 404, 'CONFIG_NOT_FOUND');
    expect(errorLogs(server.logs)).toEqual([]);
  });

  it('map keys such as __proto__ and constructor reach the method as own entries of the map', async () => {
    // The gateway alone, with a Watch that records its request: what the query became, before
    // any generated decoder (which is not the gateway's to fix) sees it.
    const registry = loadRegistry();
    const watchRequest = registry.getMessage('cfgd.v1.WatchRequest')!;
    let seen: { knownVersions: Record<string, bigint> } | undefined;
    const refuse = async (): Promise<never> => {
      throw new CfgdError('not-found', 'ROUTE_NOT_FOUND', 'not called');
    };
    const methods: Record<string, AnyMethod> = {
      Put: { kind: 'unary', call: refuse },
      Get: { kind: 'unary', call: refuse },
      RenderConfig: { kind: 'unary', call: refuse },
      History: { kind: 'unary', call: refuse },
      SetSchema: { kind: 'unary', call: refuse },
      GetSchema: { kind: 'unary', call: refuse },
      SchemaHistory: { kind: 'unary', call: refuse },
      ListConfigs: { kind: 'unary', call: refuse },
      Patch: { kind: 'unary', call: refuse },
      Rollback: { kind: 'unary', call: refuse },
      Delete: { kind: 'unary', call: refuse },
      Undelete: { kind: 'unary', call: refuse },
      VerifyHistory: { kind: 'unary', call: refuse },
      Blame: { kind: 'unary', call: refuse },
      SetRetention: { kind: 'unary', call: refuse },
      Watch: {
        kind: 'server-stream',
        async open(request) {
          seen = request as typeof seen;
          // A sentinel answer: the test reads the request it recorded, not the answer.
          throw new CfgdError('not-found', 'CONFIG_NOT_FOUND', 'request recorded');
        },
      },
    };
    const codecs = {
      ...ConfigServiceService,
      // protobuf-es keeps every map key as an own property.
      watch: { ...ConfigServiceService.watch, requestDeserialize: (bytes: Buffer) => fromBinary(watchRequest, bytes) },
    };
    const shutdown = new AbortController();
    const rest = await startRestServer({
      address: '127.0.0.1:0',
      routes: gatewayRoutes({ registry, service: 'cfgd.v1.ConfigService', methods, codecs }),
      pipeline: new RequestPipeline([], pino({ level: 'silent' })),
      maxBodyBytes: 1024,
      log: pino({ level: 'silent' }),
      shutdown: shutdown.signal,
    });
    try {
      const query =
        'known_versions[__proto__]=3&known_versions[constructor]=4&known_versions[toString]=5&known_versions[app]=6';
      const res = await http(rest.port, 'GET', `/v1/users/u1/configs:watch?${query}`);
      expect(res.json.error.message).toBe('request recorded');
      const known = seen!.knownVersions;
      expect(Object.getOwnPropertyNames(known).sort()).toEqual(['__proto__', 'app', 'constructor', 'toString']);
      expect(Object.getOwnPropertyDescriptor(known, '__proto__')?.value).toBe(3n);
      expect(known.constructor).toBe(4n);
      expect(known.toString).toBe(5n);
    } finally {
      shutdown.abort();
      await rest.shutdown(0);
    }
  });

  it('a config named constructor is watched from its known version over SSE', async () => {
    for (const n of [1, 2]) await sendJson(port, 'PUT', '/v1/users/qs/configs/constructor', { n });
    const { client } = await SseClient.open(port, '/v1/users/qs/configs:watch?known_versions[constructor]=1');
    await client.until((c) => c.messages().some((m) => m.type === 'WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE'));
    client.close();
    const versions = client.messages().filter((m) => m.type === 'WATCH_EVENT_TYPE_VERSION');
    expect(versions.map((m) => [m.config.config_name, m.config.version])).toEqual([['constructor', '2']]);
  });

  it('a request target that is not a URL is 400, not 500', async () => {
    const connection = await openConnection();
    const res = await connection.exchange('GET http://[x/v1/status HTTP/1.1\r\nhost: x\r\n\r\n');
    expect(res?.status).toBe(400);
    expectErrorBody(400, res!.body, 'bad target');
    expect(JSON.parse(res!.body).error.details[0].reason).toBe('REQUEST_TARGET_INVALID');
    connection.close();
  });
});

describe('HEAD and the other methods on every route (issue 10, point 3)', () => {
  it('HEAD on a watch answers at once with the SSE headers and no body, and holds no stream', async () => {
    await sendJson(port, 'PUT', '/v1/users/head/configs/app', { a: 1 });
    const connection = await openConnection();
    for (const path of [
      '/v1/users/head/configs/app:watch',
      '/v1/users/head/configs/app:watch?start_version=0',
      '/v1/users/head/configs:watch',
    ]) {
      const res = await connection.exchange(`HEAD ${path} HTTP/1.1\r\nhost: x\r\n\r\n`, {
        head: true,
        timeoutMs: 3000,
      });
      expect(res?.status, path).toBe(200);
      expect(res?.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      expect(res?.body).toBe('');
    }
    // The same connection goes on, and nothing is left open on the server.
    const status = await connection.exchange('GET /v1/status HTTP/1.1\r\nhost: x\r\n\r\n');
    expect(status?.status).toBe(200);
    expect(JSON.parse(status!.body).watch_streams).toBe('0');
    connection.close();
    expect(server.cfgd.app.stats()).toMatchObject({ watches: 0, channels: 0, store: { subscriptions: 0 } });
  });

  it('HEAD validates a watch as GET does', async () => {
    for (const [path, status] of [
      ['/v1/users/head/configs/app:watch?start_version=-1', 400],
      ['/v1/users/head/configs:watch?known_versions=1', 400],
      ['/v1/users/bad%20name/configs/app:watch', 400],
      ['/v1/users/head/configs/app:watch?colour=blue', 400],
    ] as const) {
      const res = await http(port, 'HEAD', path);
      expect(res.status, path).toBe(status);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.text).toBe('');
    }
    expect(server.cfgd.app.stats().watches).toBe(0);
  });

  it('HEAD on every GET route answers what GET answers, without the body', async () => {
    await sendJson(port, 'PUT', '/v1/users/head/configs/app', { a: 2 });
    await sendJson(port, 'PUT', '/v1/users/head/configs/app/schema', { schema: {} });
    const gets = servedRoutes(server.cfgd).filter((r) => r.method === 'GET');
    expect(gets.length).toBeGreaterThanOrEqual(6);
    const connection = await openConnection();
    for (const route of gets) {
      const path = fillTemplate(route.template, { user_id: 'head', config_name: 'app', file: 'app.js' });
      const head = await connection.exchange(`HEAD ${path} HTTP/1.1\r\nhost: x\r\n\r\n`, {
        head: true,
        timeoutMs: 3000,
      });
      // Every GET route answers 200, but /ui, which sends the browser on to /ui/.
      expect(head?.status, path).toBe(path === '/ui' ? 308 : 200);
      expect(head?.body).toBe('');
      if (route.streaming) continue; // GET streams for ever; the HEAD test above covers these.
      const get = await http(port, 'GET', path);
      expect(get.status, path).toBe(head?.status);
      expect(head?.headers['content-type'], path).toBe(get.headers['content-type']);
      expect(head?.headers.etag, path).toBe(get.headers.etag);
    }
    connection.close();
    await eventually(() => expect(server.cfgd.app.stats().watches).toBe(0));
  });

  it('OPTIONS and TRACE get 405 with Allow and the JSON error body on every route', async () => {
    const routes = servedRoutes(server.cfgd);
    const templates = [...new Set(routes.map((r) => r.template))];
    for (const template of templates) {
      const path = fillTemplate(template, { user_id: 'head', config_name: 'app' });
      const methods = routes.filter((r) => r.template === template).map((r) => r.method);
      const allow = [...methods, ...(methods.includes('GET') ? ['HEAD'] : [])];
      for (const method of ['OPTIONS', 'TRACE', 'PATCH', 'DELETE'].filter((m) => !methods.includes(m))) {
        const res = await http(port, method, path);
        expectError(res, 405, 'METHOD_NOT_ALLOWED');
        expect(res.headers.allow?.toString().split(', ').sort(), `${method} ${path}`).toEqual(allow.sort());
      }
    }
  });

  it('CONNECT and an unsupported Expect get the JSON error body, not a silent close', async () => {
    const connect = await openConnection();
    const res = await connect.exchange('CONNECT /v1/status HTTP/1.1\r\nhost: x\r\n\r\n');
    expect(res?.status).toBe(405);
    expectErrorBody(405, res!.body, 'CONNECT');
    connect.close();
    const expectation = await http(port, 'GET', '/v1/status', { headers: { expect: 'the-moon' } });
    expectError(expectation, 417, 'EXPECTATION_UNSUPPORTED');
  });
});

describe('client events and malformed HTTP (issue 10, point 7)', () => {
  const since = (): (() => typeof server.logs) => {
    const from = server.logs.length;
    return () => server.logs.slice(from);
  };

  it('a body cut short is a debug line without a stack, not an unexpected error', async () => {
    const logs = since();
    const connection = await openConnection();
    connection.write(
      'PUT /v1/users/cut/configs/app HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"a": 1',
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    connection.close();
    await eventually(() => expect(logs().some((l) => l.msg === 'request ended by the client')).toBe(true));
    const line = logs().find((l) => l.msg === 'request ended by the client')!;
    expect(line).toMatchObject({ level: LEVEL.debug, reason: 'REQUEST_BODY_INCOMPLETE', method: 'PUT' });
    expect(errorLogs(logs())).toEqual([]);
    expect(JSON.stringify(logs())).not.toContain('"stack"');
    expectError(await http(port, 'GET', '/v1/users/cut/configs/app'), 404, 'CONFIG_NOT_FOUND');
  });

  it('malformed chunked encoding: 400 with the JSON error body, and only debug lines', async () => {
    const logs = since();
    const connection = await openConnection();
    const res = await connection.exchange(
      'PUT /v1/users/chunk/configs/app HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{"a":1}\r\n0\r\n\r\n',
    );
    expect(res?.status).toBe(400);
    expectErrorBody(400, res!.body, 'bad chunk');
    expect(JSON.parse(res!.body).error.details[0].reason).toBe('MALFORMED_HTTP_REQUEST');
    expect(res?.headers.connection).toBe('close');
    connection.close();
    await eventually(() => expect(logs().some((l) => l.msg === 'malformed HTTP request')).toBe(true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(errorLogs(logs())).toEqual([]);
    expect(logs().every((l) => l.level <= LEVEL.debug)).toBe(true);
    expectError(await http(port, 'GET', '/v1/users/chunk/configs/app'), 404, 'CONFIG_NOT_FOUND');
  });

  it('oversized headers: 431 with the JSON error body', async () => {
    const connection = await openConnection();
    const res = await connection.exchange(`GET /v1/status HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(res?.status).toBe(431);
    expectErrorBody(431, res!.body, 'big headers');
    expect(JSON.parse(res!.body).error).toMatchObject({
      status: 'RESOURCE_EXHAUSTED',
      details: [{ reason: 'HEADERS_TOO_LARGE' }],
    });
    connection.close();
  });

  it('a malformed request line: 400 with the JSON error body, and the request bytes are not logged', async () => {
    const logs = since();
    const connection = await openConnection();
    const res = await connection.exchange('GET /v1/status HTTP/9\r\nauthorization: Bearer do-not-log\r\n\r\n');
    expect(res?.status).toBe(400);
    expectErrorBody(400, res!.body, 'bad request line');
    connection.close();
    await eventually(() => expect(logs().some((l) => l.msg === 'malformed HTTP request')).toBe(true));
    expect(logs().some((l) => 'rawPacket' in l || JSON.stringify(l).includes('rawPacket'))).toBe(false);
  });

  it('an oversized chunked body: 413 with the JSON error body, not a connection left hanging', async () => {
    const connection = await openConnection();
    const head =
      'PUT /v1/users/chunked/configs/big HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n';
    const chunk = `{"a":"${'x'.repeat(70 * 1024)}"}`;
    const res = await connection.exchange(`${head}${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`, {
      timeoutMs: 3000,
    });
    expect(res?.status).toBe(413);
    expectErrorBody(413, res!.body, 'chunked body over the limit');
    connection.close();
    expectError(await http(port, 'GET', '/v1/users/chunked/configs/big'), 404, 'CONFIG_NOT_FOUND');
  });

  it('an HTTP/1.1 request without Host: 400 with the JSON error body', async () => {
    const connection = await openConnection();
    const res = await connection.exchange('GET /v1/status HTTP/1.1\r\n\r\n');
    expect(res?.status).toBe(400);
    expectErrorBody(400, res!.body, 'no Host');
    expect(JSON.parse(res!.body).error.details[0].reason).toBe('HOST_REQUIRED');
    connection.close();
  });

  it('a lone surrogate escape (\\ud800) is 400 on /v1 and legacy alike and stores nothing', async () => {
    // JSON can spell it, UTF-8 cannot hold it: stored as U+FFFD on one path and kept on another
    // would make the same config read differently; it is refused everywhere instead.
    for (const [method, path] of [
      ['PUT', '/v1/users/utf/configs/lone'],
      ['POST', '/values/utf/lone'],
    ] as const) {
      for (const body of ['{"a": "x\\ud800"}', '{"\\udc00": 1}', '{"a": [{"b": "\\ud83d"}]}']) {
        const res = await http(port, method, path, { body, headers: { 'content-type': 'application/json' } });
        expect(res.status, `${method} ${path} ${body}`).toBe(400);
        expect(res.json.error.details[0].reason).toBe('VALUES_NOT_UNICODE');
      }
    }
    expect((await http(port, 'GET', '/v1/users/utf/configs/lone')).status).toBe(404);
    expect((await http(port, 'GET', '/values/utf/lone')).status).toBe(404);
    // A pair written as escapes is one character, and is stored as such.
    const pair = await http(port, 'PUT', '/v1/users/utf/configs/pair', {
      body: '{"a": "\\ud83d\\ude00"}',
      headers: { 'content-type': 'application/json' },
    });
    expect(pair.status).toBe(200);
    expect((await http(port, 'GET', '/values/utf/pair')).json.values).toEqual({ a: '😀' });
  });

  it('a body that is not UTF-8 is 400 and stores nothing', async () => {
    const connection = await openConnection();
    const body = Buffer.from([...Buffer.from('{"a": "'), 0xff, 0xfe, ...Buffer.from('"}')]);
    const head = `PUT /v1/users/utf/configs/app HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
    const res = await connection.exchange(Buffer.concat([Buffer.from(head), body]));
    expect(res?.status).toBe(400);
    expect(JSON.parse(res!.body).error.details[0].reason).toBe('MALFORMED_JSON');
    // The connection stays usable after an error in a complete request.
    const next = await connection.exchange('GET /v1/users/utf/configs/app HTTP/1.1\r\nhost: x\r\n\r\n');
    expect(next?.status).toBe(404);
    connection.close();
  });
});
