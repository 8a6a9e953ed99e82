/**
 * The access log over real sockets, cfgd running in this process with a pino
 * logger that writes into memory: one line per gRPC call and per REST request,
 * with the route template (never a path's names), the status, the duration,
 * the principal and the request id (the client's `x-request-id` when it is
 * acceptable, echoed back; a generated one otherwise); never a value or a
 * secret; successful calls sampled, failed ones always logged; nothing at all
 * when the access log's level is below the logger's.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import {
  Metadata,
  status as GrpcStatus,
  type CallOptions,
  type ClientReadableStream,
  type ClientUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { validate as isUuid } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  GetRequest,
  GetResponse,
  PutRequest,
  PutResponse,
  WatchResponse,
} from '../../generated/cfgd/v1/config_service.js';
import type { JsonObject } from '../../src/domain/index.js';
import { DEFAULTS, type AccessLogSettings, type CfgdSettings } from '../../src/settings/settings.js';
import { bearer, grantsOn, TEST_ADMIN_TOKEN } from '../helpers/auth.js';
import { opened, rejection, type TestClient } from '../helpers/client.js';
import { http, sendJson, type HttpResponse } from '../helpers/http.js';
import { Metrics } from '../helpers/metrics.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { eventually } from '../helpers/wait.js';

/** Every gRPC call here has a deadline, so that a server that never answers fails the test instead of hanging it. */
const CALL_MS = 10_000;
const WATCH_MS = 30_000;

const CONFIG_ROUTE = '/v1/users/{user_id}/configs/{config_name}';
const GET_RPC = 'cfgd.v1.ConfigService/Get';
const PUT_RPC = 'cfgd.v1.ConfigService/Put';
const WATCH_RPC = 'cfgd.v1.ConfigService/Watch';
const AUTH_ON = { ...DEFAULTS.auth, mode: 'on', adminToken: TEST_ADMIN_TOKEN } as const;
const ADMIN = bearer(TEST_ADMIN_TOKEN);

interface Key {
  readonly userId: string;
  readonly configName: string;
}

/** A name, value or request id no other call uses. */
function unique(prefix: string): string {
  return `${prefix}-${randomBytes(8).toString('hex')}`;
}

function uniqueKey(): Key {
  return { userId: unique('user'), configName: unique('config') };
}

function configPath({ userId, configName }: Key): string {
  return `/v1/users/${userId}/configs/${configName}`;
}

/** An access line as parsed JSON. */
type Line = Record<string, unknown>;

/** A pino logger writing into memory, one JSON line per entry. */
class MemoryLog {
  readonly lines: string[] = [];
  readonly logger: Logger;

  constructor(level: string) {
    const sink = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        this.lines.push(
          ...chunk
            .toString('utf8')
            .split('\n')
            .filter((line) => line !== ''),
        );
        done();
      },
    });
    this.logger = pino({ level }, sink);
  }

  /** Everything logged so far, as text. */
  get text(): string {
    return this.lines.join('\n');
  }

  /** The access lines so far. */
  access(): Line[] {
    return this.lines.map((line) => JSON.parse(line) as Line).filter((line) => line.component === 'access');
  }

  /** The one access line of the call whose request id is `requestId`, once it is written. */
  async lineOf(requestId: string): Promise<Line> {
    let found: Line[] = [];
    await eventually(() => {
      found = this.access().filter((line) => line.requestId === requestId);
      expect(found).toHaveLength(1);
    });
    return found[0]!;
  }

  /** The one access line written after the first `mark` ones, once it is written. */
  async lineAfter(mark: number): Promise<Line> {
    let found: Line[] = [];
    await eventually(() => {
      found = this.access().slice(mark);
      expect(found).toHaveLength(1);
    });
    return found[0]!;
  }
}

/** Starts cfgd logging into a fresh `MemoryLog` at the logger level `loggerLevel`. */
async function startLogged(
  accessLog: AccessLogSettings,
  overrides: Partial<CfgdSettings> = {},
  loggerLevel = 'info',
): Promise<{ server: TestServer; log: MemoryLog }> {
  const log = new MemoryLog(loggerLevel);
  const server = await startTestServer({ accessLog, ...overrides }, 'normal', log.logger);
  return { server, log };
}

function metadataWith(entries: Record<string, string>): Metadata {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(entries)) metadata.set(key, value);
  return metadata;
}

/** A unary call with a deadline: its response, and the response headers it got, if any. */
function grpcUnary<Req, Res>(
  method: (
    request: Req,
    metadata: Metadata,
    options: Partial<CallOptions>,
    callback: (error: ServiceError | null, response: Res) => void,
  ) => ClientUnaryCall,
  request: Req,
  metadata: Record<string, string> = {},
): { response: Promise<Res>; headers: Promise<Metadata | undefined> } {
  let call: ClientUnaryCall | undefined;
  const response = new Promise<Res>((resolve, reject) => {
    call = method(request, metadataWith(metadata), { deadline: Date.now() + CALL_MS }, (error, value) =>
      error ? reject(error) : resolve(value),
    );
  });
  const headers = new Promise<Metadata | undefined>((resolve) => {
    call!.on('metadata', resolve);
    // 'status' comes after any headers: without them, the call ended with none.
    call!.on('status', () => resolve(undefined));
  });
  return { response, headers };
}

function grpcGet(client: TestClient, key: Key, metadata: Record<string, string> = {}) {
  return grpcUnary<GetRequest, GetResponse>(client.raw.get.bind(client.raw), { ...key, version: 0 }, metadata);
}

function grpcPut(client: TestClient, key: Key, values: JsonObject, metadata: Record<string, string> = {}) {
  return grpcUnary<PutRequest, PutResponse>(
    client.raw.put.bind(client.raw),
    { ...key, values, validateOnly: false },
    metadata,
  );
}

function grpcWatch(
  client: TestClient,
  key: Key,
  metadata: Record<string, string>,
): ClientReadableStream<WatchResponse> {
  const stream = client.raw.watch({ ...key, knownVersions: {} }, metadataWith(metadata), {
    deadline: Date.now() + WATCH_MS,
  });
  stream.on('data', () => {});
  stream.on('error', () => {});
  return stream;
}

/** The request ids of the echo headers, `[]` without any. */
function echoed(headers: Metadata | undefined): unknown[] {
  return headers?.get('x-request-id') ?? [];
}

function expectDuration(line: Line): void {
  expect(typeof line.durationMs).toBe('number');
  expect(line.durationMs).toBeGreaterThanOrEqual(0);
}

/** `server`'s metrics, read in the process: GET /metrics would itself be a request to log. */
async function metricsNow(server: TestServer): Promise<Metrics> {
  return new Metrics((await server.cfgd.metrics!.scrape()).text);
}

/**
 * Waits until `server`'s metrics count `count` more REST requests than `before`: the metrics and
 * the access log observe a request at the same moment, so by then the access log has written
 * whatever it writes of them.
 */
async function restCounted(server: TestServer, before: Metrics, count: number): Promise<void> {
  const requests = (metrics: Metrics): number => metrics.value('http_requests_total');
  await eventually(async () => {
    expect(requests(await metricsNow(server)) - requests(before)).toBe(count);
  });
}

describe('with authentication off, every call logged', () => {
  let server: TestServer;
  let log: MemoryLog;
  let client: TestClient;
  let port: number;
  /** Every config value written here: none may reach the log. */
  const values: string[] = [];

  beforeAll(async () => {
    ({ server, log } = await startLogged({ level: 'info', sample: 1 }));
    client = server.client();
    port = server.cfgd.httpPort;
  });
  afterAll(async () => server.stop());

  it('writes one line per gRPC call: RPC, code, duration, principal and the request id it echoes', async () => {
    const key = uniqueKey();
    const value = unique('value');
    values.push(value);
    const ids = { put: unique('put'), get: unique('get'), missing: unique('missing') };

    const put = grpcPut(client, key, { secret: value }, { 'x-request-id': ids.put });
    expect((await put.response).config?.version).toBe(1);
    const get = grpcGet(client, key, { 'x-request-id': ids.get });
    expect((await get.response).config?.values).toEqual({ secret: value });
    const missing = grpcGet(client, uniqueKey(), { 'x-request-id': ids.missing });
    expect((await rejection(missing.response)).code).toBe(GrpcStatus.NOT_FOUND);

    const base = { level: 30, msg: 'request', component: 'access', transport: 'grpc', principal: 'anonymous' };
    const putLine = await log.lineOf(ids.put);
    expect(putLine).toMatchObject({ ...base, method: PUT_RPC, route: PUT_RPC, code: 'OK', requestId: ids.put });
    const getLine = await log.lineOf(ids.get);
    expect(getLine).toMatchObject({ ...base, method: GET_RPC, route: GET_RPC, code: 'OK', requestId: ids.get });
    const missingLine = await log.lineOf(ids.missing);
    expect(missingLine).toMatchObject({ ...base, method: GET_RPC, code: 'NOT_FOUND', requestId: ids.missing });
    for (const line of [putLine, getLine, missingLine]) {
      expectDuration(line);
      expect(line).not.toHaveProperty('status');
      expect(JSON.stringify(line)).not.toContain(key.userId);
      expect(JSON.stringify(line)).not.toContain(key.configName);
    }

    expect(echoed(await put.headers)).toEqual([ids.put]);
    expect(echoed(await get.headers)).toEqual([ids.get]);
    expect(echoed(await missing.headers)).toEqual([ids.missing]);
  });

  it('writes one line per REST request: route template, status, duration, principal and the request id it echoes', async () => {
    const key = uniqueKey();
    const value = unique('value');
    values.push(value);
    const ids = { put: unique('put'), get: unique('get'), missing: unique('missing') };

    const put = await sendJson(port, 'PUT', configPath(key), { secret: value }, { 'x-request-id': ids.put });
    expect(put.status).toBe(200);
    const get = await http(port, 'GET', configPath(key), { headers: { 'x-request-id': ids.get } });
    expect(get.status).toBe(200);
    expect(get.text).toContain(value);
    const missing = await http(port, 'GET', configPath(uniqueKey()), { headers: { 'x-request-id': ids.missing } });
    expect(missing.status).toBe(404);

    const base = { level: 30, msg: 'request', component: 'access', transport: 'rest', route: CONFIG_ROUTE };
    const putLine = await log.lineOf(ids.put);
    expect(putLine).toMatchObject({
      ...base,
      method: 'PUT',
      operation: PUT_RPC,
      status: 200,
      principal: 'anonymous',
      requestId: ids.put,
    });
    const getLine = await log.lineOf(ids.get);
    expect(getLine).toMatchObject({ ...base, method: 'GET', status: 200, principal: 'anonymous', requestId: ids.get });
    const missingLine = await log.lineOf(ids.missing);
    expect(missingLine).toMatchObject({ ...base, method: 'GET', status: 404, requestId: ids.missing });
    for (const line of [putLine, getLine, missingLine]) {
      expectDuration(line);
      expect(line).not.toHaveProperty('code');
      expect(JSON.stringify(line)).not.toContain(key.userId);
      expect(JSON.stringify(line)).not.toContain(key.configName);
    }

    expect(put.headers['x-request-id']).toBe(ids.put);
    expect(get.headers['x-request-id']).toBe(ids.get);
    expect(missing.headers['x-request-id']).toBe(ids.missing);
  });

  it("writes a watch stream's line once the stream ends, and echoes its request id when it opens", async () => {
    const id = unique('watch');
    const stream = grpcWatch(client, uniqueKey(), { 'x-request-id': id });
    const headers = await opened(stream);
    expect(echoed(headers)).toEqual([id]);
    expect(log.access().filter((line) => line.requestId === id)).toEqual([]);
    stream.cancel();
    const line = await log.lineOf(id);
    expect(line).toMatchObject({ transport: 'grpc', method: WATCH_RPC, code: 'CANCELLED', principal: 'anonymous' });
    expectDuration(line);
  });

  // A unary call echoes x-request-id whatever its outcome; so does a stream refused before it opened.
  it('echoes the request id of a watch stream that fails to open', async () => {
    const id = unique('watch');
    const stream = client.raw.watch(
      { userId: 'not a user id', configName: 'c', knownVersions: {} },
      metadataWith({ 'x-request-id': id }),
      {
        deadline: Date.now() + CALL_MS,
      },
    );
    stream.on('error', () => {});
    const headers = await new Promise<Metadata | undefined>((resolve) => {
      stream.on('metadata', resolve);
      stream.on('status', () => resolve(undefined));
    });
    expect(await log.lineOf(id)).toMatchObject({ method: WATCH_RPC, code: 'INVALID_ARGUMENT' });
    expect(echoed(headers)).toEqual([id]);
  });

  it('logs a request no route takes under route unmatched, with its status', async () => {
    const key = uniqueKey();
    const mark = log.access().length;
    const response = await http(port, 'GET', `/v1/nowhere/${key.userId}/${key.configName}`);
    expect(response.status).toBe(404);
    const line = await log.lineAfter(mark);
    expect(line).toMatchObject({ msg: 'request', transport: 'rest', route: 'unmatched', status: 404 });
    expectDuration(line);
    expect(JSON.stringify(line)).not.toContain(key.userId);
  });

  it('gives the line of a request no route takes the request id it echoes', async () => {
    const id = unique('unmatched');
    const mark = log.access().length;
    const response = await http(port, 'GET', '/v1/nowhere', { headers: { 'x-request-id': id } });
    expect(response.headers['x-request-id']).toBe(id);
    expect(await log.lineAfter(mark)).toMatchObject({ route: 'unmatched', status: 404, requestId: id });
  });

  it('uses a request id of up to 128 visible ASCII characters as it is', async () => {
    const longest = `${unique('id')}-`.padEnd(128, 'x');
    const get = grpcGet(client, uniqueKey(), { 'x-request-id': longest });
    await rejection(get.response);
    expect((await log.lineOf(longest)).transport).toBe('grpc');
    expect(echoed(await get.headers)).toEqual([longest]);

    const rest = await http(port, 'GET', configPath(uniqueKey()), { headers: { 'x-request-id': longest } });
    expect(rest.headers['x-request-id']).toBe(longest);
    // Two lines now carry it: the gRPC call's and this request's.
    await eventually(() => {
      expect(log.access().filter((line) => line.requestId === longest && line.transport === 'rest')).toHaveLength(1);
    });
  });

  describe('refuses a request id that is too long or not visible ASCII: a generated one is logged, none echoed', () => {
    const refused: Record<string, string> = {
      'longer than 128 characters': 'x'.repeat(129),
      'with a space': 'two words',
    };

    for (const [what, id] of Object.entries(refused)) {
      it(`on gRPC, ${what}`, async () => {
        const mark = log.access().length;
        const get = grpcGet(client, uniqueKey(), { 'x-request-id': id });
        expect((await rejection(get.response)).code).toBe(GrpcStatus.NOT_FOUND);
        const line = await log.lineAfter(mark);
        expect(line).toMatchObject({ transport: 'grpc', method: GET_RPC });
        expect(isUuid(line.requestId)).toBe(true);
        expect(echoed(await get.headers)).toEqual([]);
      });
    }

    // HTTP carries a tab in a header value; gRPC metadata cannot carry a control character at all.
    for (const [what, id] of Object.entries({ ...refused, 'with a control character (tab)': 'tab\there' })) {
      it(`on REST, ${what}`, async () => {
        const mark = log.access().length;
        const response = await http(port, 'GET', configPath(uniqueKey()), { headers: { 'x-request-id': id } });
        expect(response.status).toBe(404);
        const line = await log.lineAfter(mark);
        expect(line).toMatchObject({ transport: 'rest', route: CONFIG_ROUTE });
        expect(isUuid(line.requestId)).toBe(true);
        expect(response.headers).not.toHaveProperty('x-request-id');
      });
    }
  });

  it('writes no config value anywhere in the log', () => {
    expect(values.length).toBeGreaterThan(0);
    for (const value of values) expect(log.text).not.toContain(value);
  });
});

describe('with authentication on, every call logged', () => {
  let server: TestServer;
  let log: MemoryLog;
  let client: TestClient;
  let port: number;
  const key = uniqueKey();
  const tokenName = unique('reader');
  let secret: string;

  beforeAll(async () => {
    ({ server, log } = await startLogged({ level: 'info', sample: 1 }, { auth: AUTH_ON }));
    client = server.client();
    port = server.cfgd.httpPort;
    const created = await sendJson(
      port,
      'POST',
      '/v1/tokens',
      { name: tokenName, grants: grantsOn(key.userId, 'read', 'write') },
      { authorization: ADMIN },
    );
    expect(created.status).toBe(200);
    secret = created.json.secret as string;
  });
  afterAll(async () => server.stop());

  it('names the principal of each call token:<name>, on both transports', async () => {
    const value = unique('value');
    const ids = { grpc: unique('grpc'), rest: unique('rest') };
    const put = grpcPut(client, key, { secret: value }, { authorization: bearer(secret), 'x-request-id': ids.grpc });
    await put.response;
    const get = await http(port, 'GET', configPath(key), {
      headers: { authorization: bearer(secret), 'x-request-id': ids.rest },
    });
    expect(get.status).toBe(200);

    expect(await log.lineOf(ids.grpc)).toMatchObject({ code: 'OK', principal: `token:${tokenName}` });
    expect(await log.lineOf(ids.rest)).toMatchObject({ status: 200, principal: `token:${tokenName}` });
    expect(log.text).not.toContain(value);
  });

  it('logs a refused call with its status and reason', async () => {
    const ids = { grpc: unique('grpc'), rest: unique('rest') };
    const get = grpcGet(client, key, { 'x-request-id': ids.grpc });
    expect((await rejection(get.response)).code).toBe(GrpcStatus.UNAUTHENTICATED);
    const rest = await http(port, 'GET', configPath(key), {
      headers: { authorization: bearer('cfgd_not-a-token'), 'x-request-id': ids.rest },
    });
    expect(rest.status).toBe(401);

    expect(await log.lineOf(ids.grpc)).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_MISSING' });
    expect(await log.lineOf(ids.rest)).toMatchObject({ status: 401, reason: 'TOKEN_INVALID' });
    expect(echoed(await get.headers)).toEqual([ids.grpc]);
    expect(rest.headers['x-request-id']).toBe(ids.rest);
  });

  it('writes neither the token secret nor the admin token anywhere in the log', () => {
    expect(log.access().length).toBeGreaterThan(0);
    expect(log.text).not.toContain(secret);
    expect(log.text).not.toContain(secret.slice('cfgd_'.length));
    expect(log.text).not.toContain(TEST_ADMIN_TOKEN);
  });
});

describe('with sample 0', () => {
  let server: TestServer;
  let log: MemoryLog;

  beforeAll(async () => {
    ({ server, log } = await startLogged({ level: 'info', sample: 0 }, { auth: AUTH_ON }));
  });
  afterAll(async () => server.stop());

  it('logs no successful call, and every failed one (NOT_FOUND, 404, 401)', async () => {
    const client = server.client();
    const port = server.cfgd.httpPort;
    const key = uniqueKey();
    const ok = { grpcPut: unique('ok'), grpcGet: unique('ok'), restGet: unique('ok') };
    const failed = { grpc: unique('failed'), rest: unique('failed'), unauthenticated: unique('failed') };
    const before = await metricsNow(server);

    const admin = { authorization: ADMIN };
    await grpcPut(client, key, { n: 1 }, { ...admin, 'x-request-id': ok.grpcPut }).response;
    await grpcGet(client, key, { ...admin, 'x-request-id': ok.grpcGet }).response;
    const rest: HttpResponse[] = [
      await http(port, 'GET', configPath(key), { headers: { ...admin, 'x-request-id': ok.restGet } }),
      await http(port, 'GET', configPath(uniqueKey()), { headers: { ...admin, 'x-request-id': failed.rest } }),
      await http(port, 'GET', configPath(key), { headers: { 'x-request-id': failed.unauthenticated } }),
    ];
    expect(rest.map((response) => response.status)).toEqual([200, 404, 401]);
    await rejection(grpcGet(client, uniqueKey(), { ...admin, 'x-request-id': failed.grpc }).response);

    expect(await log.lineOf(failed.grpc)).toMatchObject({ code: 'NOT_FOUND' });
    expect(await log.lineOf(failed.rest)).toMatchObject({ status: 404 });
    expect(await log.lineOf(failed.unauthenticated)).toMatchObject({ status: 401 });
    await restCounted(server, before, rest.length);
    const logged = log.access().map((line) => line.requestId);
    expect(logged).not.toContain(ok.grpcPut);
    expect(logged).not.toContain(ok.grpcGet);
    expect(logged).not.toContain(ok.restGet);
  });
});

describe('with the access log at debug under a logger at info', () => {
  let server: TestServer;
  let log: MemoryLog;

  beforeAll(async () => {
    ({ server, log } = await startLogged({ level: 'debug', sample: 1 }, { auth: AUTH_ON }, 'info'));
  });
  afterAll(async () => server.stop());

  it('writes no access line at all, not even for failed calls', async () => {
    const client = server.client();
    const port = server.cfgd.httpPort;
    const key = uniqueKey();
    const before = await metricsNow(server);
    const admin = { authorization: ADMIN };
    await grpcPut(client, key, { n: 1 }, admin).response;
    await rejection(grpcGet(client, uniqueKey(), admin).response);
    await rejection(grpcGet(client, key).response);
    const rest = [
      await http(port, 'GET', configPath(key), { headers: admin }),
      await http(port, 'GET', configPath(uniqueKey()), { headers: admin }),
      await http(port, 'GET', configPath(key)),
      await http(port, 'GET', '/v1/nowhere'),
    ];
    expect(rest.map((response) => response.status)).toEqual([200, 404, 401, 404]);

    await restCounted(server, before, rest.length);
    expect(log.access()).toEqual([]);
    // The logger itself works: the server's own info lines are there.
    expect(log.lines.some((line) => line.includes('cfgd listening'))).toBe(true);
  });
});
