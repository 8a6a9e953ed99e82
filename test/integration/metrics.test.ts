/**
 * `GET /metrics` over real sockets: the scrape is the Prometheus text format
 * (parsed with a parser of that format, not by hand), its counters move by
 * exactly the calls made on both transports, its gauges follow open watch
 * streams, no series is labelled with a user, a config name or a value, who
 * may scrape follows `settings.metrics`, and with `--workers 2` one scrape sums
 * every worker's calls and the primary's commits.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, status as GrpcStatus, type ClientReadableStream } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  GetRequest,
  GetResponse,
  PutRequest,
  PutResponse,
  WatchResponse,
} from '../../generated/cfgd/v1/config_service.js';
import type { JsonObject } from '../../src/domain/index.js';
import { DEFAULTS, type CfgdSettings } from '../../src/settings/settings.js';
import { bearer, TEST_ADMIN_TOKEN, unaryWithin } from '../helpers/auth.js';
import { opened, rejection, type TestClient } from '../helpers/client.js';
import { http, sendJson } from '../helpers/http.js';
import { Metrics, metricsOf, scrape } from '../helpers/metrics.js';
import { spawnCfgd, type CfgdProcess } from '../helpers/process.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { eventually } from '../helpers/wait.js';

/** Every gRPC call here has a deadline, so that a server that never answers fails the test instead of hanging it. */
const CALL_MS = 10_000;
/** A watch stream lives at most this long (the tests close theirs long before). */
const WATCH_MS = 30_000;

const CONFIG_ROUTE = '/v1/users/{user_id}/configs/{config_name}';
const GET_RPC = { grpc_service: 'cfgd.v1.ConfigService', grpc_method: 'Get', grpc_type: 'unary' };
const PUT_RPC = { grpc_service: 'cfgd.v1.ConfigService', grpc_method: 'Put', grpc_type: 'unary' };
const WATCH_RPC = { grpc_service: 'cfgd.v1.ConfigService', grpc_method: 'Watch', grpc_type: 'server_stream' };
/**
 * `grpc_code` values, as src/metrics/call-metrics.ts spells them: grpc-go's `codes.Code.String()`
 * (`NotFound`), as go-grpc-prometheus exports them.
 */
const CODE = { OK: 'OK', NOT_FOUND: 'NotFound', CANCELLED: 'Canceled' } as const;

interface Key {
  readonly userId: string;
  readonly configName: string;
}

/** A user id or config name (or value) no other call uses, so that a label holding it cannot pass unseen. */
function unique(prefix: string): string {
  return `${prefix}-${randomBytes(8).toString('hex')}`;
}

function uniqueKey(): Key {
  return { userId: unique('user'), configName: unique('config') };
}

function configPath({ userId, configName }: Key): string {
  return `/v1/users/${userId}/configs/${configName}`;
}

/** A unary call without credentials, with a deadline (see `unaryWithin`). */
function unary<Req, Res>(method: Parameters<typeof unaryWithin<Req, Res>>[0], request: Req): Promise<Res> {
  return unaryWithin(method, request, undefined, CALL_MS);
}

function grpcGet(client: TestClient, key: Key): Promise<GetResponse> {
  return unary<GetRequest, GetResponse>(client.raw.get.bind(client.raw), { ...key, version: 0 });
}

function grpcPut(client: TestClient, key: Key, values: JsonObject): Promise<PutResponse> {
  return unary<PutRequest, PutResponse>(client.raw.put.bind(client.raw), { ...key, values, validateOnly: false });
}

/** A watch stream of `key` whose end (the client cancelling it) is expected. */
function grpcWatch(client: TestClient, key: Key): ClientReadableStream<WatchResponse> {
  const stream = client.raw.watch({ ...key, knownVersions: {} }, new Metadata(), {
    deadline: Date.now() + WATCH_MS,
  });
  stream.on('data', () => {});
  stream.on('error', () => {});
  return stream;
}

/** How much `read` grew from `before` to `after`. */
function growth(before: Metrics, after: Metrics, read: (metrics: Metrics) => number): number {
  return read(after) - read(before);
}

/** The REST requests answered, those of `GET /metrics` (the scrapes themselves) left out. */
function restRequestsBesideScrapes(metrics: Metrics): number {
  return metrics.value('http_requests_total') - metrics.value('http_requests_total', { route: '/metrics' });
}

describe('one process', () => {
  let server: TestServer;
  let client: TestClient;
  let port: number;

  beforeAll(async () => {
    server = await startTestServer();
    client = server.client();
    port = server.cfgd.httpPort;
  });
  afterAll(async () => server.stop());

  it('serves every metric as Prometheus text format 0.0.4', async () => {
    const response = await scrape(port);
    expect(response.status).toBe(200);
    expect(response.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    const metrics = new Metrics(response.text);
    const types: Record<string, string> = Object.fromEntries(metrics.families.map(({ name, type }) => [name, type]));
    expect(types).toMatchObject({
      grpc_server_started_total: 'COUNTER',
      grpc_server_handled_total: 'COUNTER',
      grpc_server_handling_seconds: 'HISTOGRAM',
      http_requests_total: 'COUNTER',
      http_request_duration_seconds: 'HISTOGRAM',
      cfgd_auth_failures_total: 'COUNTER',
      cfgd_store_operation_seconds: 'HISTOGRAM',
      cfgd_store_operation_failures_total: 'COUNTER',
      cfgd_store_commits_total: 'COUNTER',
      cfgd_store_commit_writes: 'HISTOGRAM',
      cfgd_store_commit_seconds: 'HISTOGRAM',
      cfgd_store_connected: 'GAUGE',
      cfgd_store_changefeed_restarts_total: 'COUNTER',
      cfgd_watch_streams: 'GAUGE',
      cfgd_watch_channels: 'GAUGE',
      cfgd_watch_queued_events: 'GAUGE',
      cfgd_watch_overflows_total: 'COUNTER',
      cfgd_store_subscriptions: 'GAUGE',
      cfgd_store_changefeeds: 'GAUGE',
      cfgd_serving: 'GAUGE',
      // prom-client's default metrics of the process.
      process_cpu_user_seconds_total: 'COUNTER',
      nodejs_heap_size_used_bytes: 'GAUGE',
    });
    // Every sample is a number (NaN included: prom-client's event loop figures before their first reading).
    const numbers = metrics.series.filter(({ value }) => value.toLowerCase() !== 'nan');
    expect(numbers.filter(({ value }) => Number.isNaN(Number(value)))).toEqual([]);
    expect(numbers.length).toBeGreaterThan(100);
    expect(metrics.value('cfgd_serving')).toBe(1);
    expect(metrics.value('nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  });

  it('counts each call once: by RPC and code on gRPC, by route template and status on REST', async () => {
    const key = uniqueKey();
    const missing = uniqueKey();
    await grpcPut(client, key, { n: 0 });
    const [N, M, K] = [5, 3, 4];
    const before = await metricsOf(port);

    for (let i = 0; i < N; i++) expect((await grpcGet(client, key)).config?.version).toBe(1);
    for (let i = 0; i < M; i++) expect((await rejection(grpcGet(client, missing))).code).toBe(GrpcStatus.NOT_FOUND);
    for (let i = 0; i < K; i++) expect((await http(port, 'GET', configPath(key))).status).toBe(200);
    expect((await http(port, 'GET', configPath(missing))).status).toBe(404);
    expect((await grpcPut(client, key, { n: 1 })).config?.version).toBe(2);
    expect((await http(port, 'GET', `/no/such/route/${key.userId}`)).status).toBe(404);

    // A REST request is counted once its response is over, which may be just after the client read it.
    await eventually(async () => {
      const after = await metricsOf(port);
      const grew = (read: (metrics: Metrics) => number): number => growth(before, after, read);
      expect(grew((m) => m.value('grpc_server_started_total', GET_RPC))).toBe(N + M);
      expect(grew((m) => m.value('grpc_server_handled_total', { ...GET_RPC, grpc_code: CODE.OK }))).toBe(N);
      expect(grew((m) => m.value('grpc_server_handled_total', { ...GET_RPC, grpc_code: CODE.NOT_FOUND }))).toBe(M);
      expect(grew((m) => m.count('grpc_server_handling_seconds', GET_RPC))).toBe(N + M);
      expect(grew((m) => m.value('grpc_server_started_total', PUT_RPC))).toBe(1);
      expect(grew((m) => m.value('grpc_server_handled_total', { ...PUT_RPC, grpc_code: CODE.OK }))).toBe(1);
      expect(grew((m) => m.count('grpc_server_handling_seconds', PUT_RPC))).toBe(1);

      const restGet = { method: 'GET', route: CONFIG_ROUTE };
      expect(grew((m) => m.value('http_requests_total', { ...restGet, code: '200' }))).toBe(K);
      expect(grew((m) => m.value('http_requests_total', { ...restGet, code: '404' }))).toBe(1);
      expect(grew((m) => m.count('http_request_duration_seconds', restGet))).toBe(K + 1);
      expect(grew((m) => m.value('http_requests_total', { route: 'unmatched', code: '404' }))).toBe(1);
      expect(grew((m) => m.count('http_request_duration_seconds', { route: 'unmatched' }))).toBe(1);
      expect(grew(restRequestsBesideScrapes)).toBe(K + 2);

      // One Put: one commit of one write; the reads wrote nothing.
      expect(grew((m) => m.value('cfgd_store_commits_total'))).toBe(1);
      expect(grew((m) => m.count('cfgd_store_commit_writes'))).toBe(1);
      expect(grew((m) => m.sum('cfgd_store_commit_writes'))).toBe(1);
      expect(grew((m) => m.count('cfgd_store_commit_seconds'))).toBe(1);
      expect(grew((m) => m.count('cfgd_store_operation_seconds', { operation: 'write' }))).toBe(1);
      expect(grew((m) => m.value('cfgd_store_operation_failures_total', { operation: 'write' }))).toBe(0);
    });
  });

  it('follows open watch streams in cfgd_watch_streams, and counts each stream once it ends', async () => {
    const before = await metricsOf(port);
    const streams = [uniqueKey(), uniqueKey(), uniqueKey()].map((key) => grpcWatch(client, key));
    try {
      await Promise.all(streams.map((stream) => opened(stream)));
      await eventually(async () => {
        const open = await metricsOf(port);
        expect(open.value('cfgd_watch_streams')).toBe(before.value('cfgd_watch_streams') + 3);
        expect(growth(before, open, (m) => m.value('grpc_server_started_total', WATCH_RPC))).toBe(3);
      });
    } finally {
      for (const stream of streams) stream.cancel();
    }
    await eventually(async () => {
      const after = await metricsOf(port);
      expect(after.value('cfgd_watch_streams')).toBe(before.value('cfgd_watch_streams'));
      // A stream is handled when it ends, with the code it ended with: the client cancelled these.
      expect(
        growth(before, after, (m) => m.value('grpc_server_handled_total', { ...WATCH_RPC, grpc_code: CODE.CANCELLED })),
      ).toBe(3);
      expect(growth(before, after, (m) => m.count('grpc_server_handling_seconds', WATCH_RPC))).toBe(3);
    });
  });

  it('labels no series with a user id, a config name or a value, whatever the calls', async () => {
    const key = uniqueKey();
    const missing = uniqueKey();
    const value = unique('value');
    const restValue = unique('value');
    const before = await metricsOf(port);

    await grpcPut(client, key, { secret: value });
    await grpcGet(client, key);
    await rejection(grpcGet(client, missing));
    const stream = grpcWatch(client, key);
    await opened(stream);
    stream.cancel();
    const rest: [number, number][] = [
      [(await sendJson(port, 'PUT', configPath(key), { secret: restValue })).status, 200],
      [(await http(port, 'GET', configPath(key))).status, 200],
      [(await http(port, 'GET', `${configPath(key)}/history`)).status, 200],
      [(await http(port, 'GET', configPath(missing))).status, 404],
      [(await http(port, 'DELETE', `/v1/users/${missing.userId}`)).status, 404],
      [(await http(port, 'GET', `/v1/users/${key.userId}/elsewhere/${key.configName}`)).status, 404],
    ];
    expect(rest.map(([status]) => status)).toEqual(rest.map(([, expected]) => expected));

    let metrics = before;
    await eventually(async () => {
      metrics = await metricsOf(port);
      // Every request above is counted: a series made for one of them would be in this scrape.
      expect(growth(before, metrics, restRequestsBesideScrapes)).toBe(rest.length);
      expect(growth(before, metrics, (m) => m.value('grpc_server_handled_total', WATCH_RPC))).toBe(1);
    });
    const secrets = [key.userId, key.configName, missing.userId, missing.configName, value, restValue];
    const labelled = metrics.labelValues().filter((label) => secrets.some((secret) => label.includes(secret)));
    expect(labelled).toEqual([]);
    for (const secret of secrets) expect(metrics.text).not.toContain(secret);
  });
});

describe('who may scrape, with authentication on', () => {
  const servers: TestServer[] = [];
  const start = async (metrics: CfgdSettings['metrics']): Promise<TestServer> => {
    const server = await startTestServer({
      auth: { ...DEFAULTS.auth, mode: 'on', adminToken: TEST_ADMIN_TOKEN },
      metrics,
    });
    servers.push(server);
    return server;
  };
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
  });

  describe("metrics: 'authenticated' (the default)", () => {
    let port: number;
    /** A token made through the API with no grant at all: what a Prometheus server is given. */
    let prometheus: string;

    beforeAll(async () => {
      expect(DEFAULTS.metrics).toBe('authenticated');
      port = (await start(DEFAULTS.metrics)).cfgd.httpPort;
      const created = await sendJson(
        port,
        'POST',
        '/v1/tokens',
        { name: 'prometheus' },
        {
          authorization: bearer(TEST_ADMIN_TOKEN),
        },
      );
      expect(created.status).toBe(200);
      expect(created.json.token.grants ?? []).toEqual([]);
      prometheus = bearer(created.json.secret as string);
    });

    it('serves a token without grants, which can read no config', async () => {
      const response = await scrape(port, prometheus);
      expect(response.status).toBe(200);
      expect(new Metrics(response.text).value('cfgd_serving')).toBe(1);
      const read = await http(port, 'GET', configPath(uniqueKey()), { headers: { authorization: prometheus } });
      expect(read.status).toBe(403);
    });

    it('refuses a scrape without a credential with 401 TOKEN_MISSING, and counts the refusal', async () => {
      const before = await metricsOf(port, prometheus);
      const refused = await scrape(port);
      expect(refused.status).toBe(401);
      expect(refused.contentType).toBe('application/json; charset=utf-8');
      expect(refused.json.error).toMatchObject({ code: 401, status: 'UNAUTHENTICATED' });
      expect(refused.json.error.details[0].reason).toBe('TOKEN_MISSING');
      expect(refused.text).not.toContain('cfgd_');
      await eventually(async () => {
        const after = await metricsOf(port, prometheus);
        expect(growth(before, after, (m) => m.value('cfgd_auth_failures_total', { reason: 'TOKEN_MISSING' }))).toBe(1);
        expect(growth(before, after, (m) => m.value('http_requests_total', { route: '/metrics', code: '401' }))).toBe(
          1,
        );
      });
    });

    it('refuses a scrape with an unknown token with 401 TOKEN_INVALID, and counts the refusal', async () => {
      const before = await metricsOf(port, prometheus);
      const refused = await scrape(port, bearer(`cfgd_${randomBytes(32).toString('base64url')}`));
      expect(refused.status).toBe(401);
      expect(refused.json.error.details[0].reason).toBe('TOKEN_INVALID');
      await eventually(async () => {
        const after = await metricsOf(port, prometheus);
        expect(growth(before, after, (m) => m.value('cfgd_auth_failures_total', { reason: 'TOKEN_INVALID' }))).toBe(1);
        expect(growth(before, after, (m) => m.value('cfgd_auth_failures_total', { reason: 'TOKEN_MISSING' }))).toBe(0);
      });
    });
  });

  it("metrics: 'open' serves a scrape without a credential, while the API still asks for one", async () => {
    const port = (await start('open')).cfgd.httpPort;
    const response = await scrape(port);
    expect(response.status).toBe(200);
    expect(new Metrics(response.text).value('cfgd_serving')).toBe(1);
    expect((await http(port, 'GET', configPath(uniqueKey()))).status).toBe(401);
  });

  it("metrics: 'off' serves no /metrics and records nothing", async () => {
    const server = await start('off');
    expect(server.cfgd.metrics).toBeUndefined();
    const response = await scrape(server.cfgd.httpPort, bearer(TEST_ADMIN_TOKEN));
    expect(response.status).toBe(404);
    expect(response.json.error.details[0].reason).toBe('ROUTE_NOT_FOUND');
  });
});

describe('with --workers 2', () => {
  let dir: string;
  let cfgd: CfgdProcess | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cfgd-metrics-'));
    // Access lines say which worker served each request.
    cfgd = await spawnCfgd(['--store', dir, '--workers', '2', '--auth', 'off', '--access-log-level', 'info']);
  });
  afterAll(async () => {
    if (cfgd !== undefined && cfgd.child.exitCode === null && cfgd.child.signalCode === null) {
      // The primary stops its workers before it exits.
      cfgd.child.kill('SIGTERM');
      await cfgd.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  /** The workers whose access lines show `method` on the config route. */
  function workersServing(node: CfgdProcess, method: string): Set<unknown> {
    const lines = node.logs.filter(
      (line) => line.component === 'access' && line.route === CONFIG_ROUTE && line.method === method,
    );
    return new Set(lines.map((line) => line.worker));
  }

  it("one scrape sums every worker's requests and the primary's commits", async () => {
    const node = cfgd!;
    const port = node.httpPort;
    const key = uniqueKey();
    const [P, R] = [6, 10];
    const before = await metricsOf(port);
    // `connection: close`: each request on a connection of its own, which node:cluster hands to
    // the next worker in turn.
    const close = { connection: 'close' };
    for (let i = 0; i < P; i++) expect((await sendJson(port, 'PUT', configPath(key), { i }, close)).status).toBe(200);
    for (let i = 0; i < R; i++) expect((await http(port, 'GET', configPath(key), { headers: close })).status).toBe(200);

    await eventually(() => {
      expect(workersServing(node, 'PUT')).toEqual(new Set([1, 2]));
      expect(workersServing(node, 'GET')).toEqual(new Set([1, 2]));
    });
    await eventually(async () => {
      const after = await metricsOf(port);
      const grew = (read: (metrics: Metrics) => number): number => growth(before, after, read);
      expect(grew((m) => m.value('http_requests_total', { method: 'GET', route: CONFIG_ROUTE, code: '200' }))).toBe(R);
      expect(grew((m) => m.value('http_requests_total', { method: 'PUT', route: CONFIG_ROUTE, code: '200' }))).toBe(P);
      expect(grew((m) => m.count('http_request_duration_seconds', { route: CONFIG_ROUTE }))).toBe(P + R);
      // Each worker times its writes; the primary, the store's one writer, commits them, one by one.
      expect(grew((m) => m.count('cfgd_store_operation_seconds', { operation: 'write' }))).toBe(P);
      expect(grew((m) => m.value('cfgd_store_commits_total'))).toBe(P);
      expect(grew((m) => m.count('cfgd_store_commit_writes'))).toBe(P);
      expect(grew((m) => m.sum('cfgd_store_commit_writes'))).toBe(P);
      expect(after.value('cfgd_serving')).toBe(1);
    }, 10_000);
  });
});
