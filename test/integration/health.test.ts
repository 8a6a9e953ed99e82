/**
 * The gRPC health service (`grpc.health.v1.Health`) and the HTTP probes
 * (`/healthz`, `/readyz`), over real sockets, called as a load balancer or
 * Kubernetes would: with the standard health proto, no cfgd code, and no
 * credentials even with authentication on. What follows the store (a
 * database outage) is in rethinkdb-health.test.ts.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/settings/settings.js';
import { bearer, TEST_ADMIN_TOKEN } from '../helpers/auth.js';
import { rejection } from '../helpers/client.js';
import { changes, HealthClient, type WatchEnd } from '../helpers/health.js';
import { http } from '../helpers/http.js';
import { spawnCfgd, type CfgdProcess } from '../helpers/process.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { eventually } from '../helpers/wait.js';

/** cfgd's own services: each has a health status of its own besides the server's (""). */
const CFGD_SERVICES = ['cfgd.v1.ConfigService', 'cfgd.v1.AuthService', 'cfgd.v1.StatusService', 'cfgd.v1.FleetService'];

/** What a caller may send: nothing, or an `authorization` header that authenticates nobody. */
const CALLERS: [string, string | undefined][] = [
  ['without credentials', undefined],
  ['with a garbage bearer token', bearer('not-a-token')],
  ['with a garbage authorization header', 'garbage'],
];

const AUTH_ON = { auth: { ...DEFAULTS.auth, mode: 'on' as const, adminToken: TEST_ADMIN_TOKEN } };

/** GET `path` on the REST port with `authorization` if given. */
function probe(port: number, path: string, authorization?: string) {
  return http(port, 'GET', path, { headers: authorization === undefined ? {} : { authorization } });
}

describe('health service and probes of a serving node (authentication on)', () => {
  let server: TestServer;
  let health: HealthClient;

  beforeAll(async () => {
    server = await startTestServer(AUTH_ON);
    health = new HealthClient(server.cfgd.grpcPort);
  });

  afterAll(async () => {
    health?.close();
    await server?.stop();
  });

  it('gives a health status to every cfgd service the server serves, and to no other', () => {
    const served = new Set(server.cfgd.rpcs.map((rpc) => rpc.slice(0, rpc.indexOf('/'))));
    expect([...served].filter((name) => name.startsWith('cfgd.')).sort()).toEqual([...CFGD_SERVICES].sort());
  });

  describe.each(CALLERS)('called %s', (_, authorization) => {
    it.each(['', ...CFGD_SERVICES])('Check(%j) answers SERVING', async (service) => {
      expect(await health.check(service, authorization)).toBe('SERVING');
    });

    it('Check answers NOT_FOUND for a service the server does not serve', async () => {
      for (const service of ['cfgd.v1.NoSuchService', 'cfgd.v1.configservice']) {
        const error = await rejection(health.check(service, authorization));
        expect(error.code, service).toBe(GrpcStatus.NOT_FOUND);
      }
    });

    it('Watch sends the current status at once and keeps the stream open', async () => {
      const watch = health.watch('', authorization);
      try {
        await eventually(() => expect(watch.statuses).toEqual(['SERVING']));
        // Still open: a fresh Check on the same connection is answered and the stream has not ended.
        expect(await health.check('', authorization)).toBe('SERVING');
        expect(await Promise.race([watch.ended, Promise.resolve('open')])).toBe('open');
      } finally {
        watch.cancel();
      }
    });

    it('GET /healthz answers 200 with exactly {"status":"SERVING"}, not to be cached', async () => {
      const response = await probe(server.cfgd.httpPort, '/healthz', authorization);
      expect(response.status).toBe(200);
      expect(response.json).toStrictEqual({ status: 'SERVING' });
      expect(Object.keys(response.json as object)).toEqual(['status']);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(response.headers['cache-control']).toBe('no-store');
    });

    it('GET /readyz answers 200 with exactly {"status":"SERVING"}, not to be cached', async () => {
      const response = await probe(server.cfgd.httpPort, '/readyz', authorization);
      expect(response.status).toBe(200);
      expect(response.json).toStrictEqual({ status: 'SERVING' });
      expect(Object.keys(response.json as object)).toEqual(['status']);
      expect(response.headers['cache-control']).toBe('no-store');
    });
  });

  it('the probes are open, not the server: the same callers are refused by ConfigService', async () => {
    const client = server.client();
    const error = await rejection(client.get({ userId: 'alice', configName: 'app' }));
    expect(error.code).toBe(GrpcStatus.UNAUTHENTICATED);
    for (const [, authorization] of CALLERS) {
      const response = await probe(server.cfgd.httpPort, '/v1/users/alice/configs/app', authorization);
      expect(response.status, String(authorization)).toBe(401);
    }
  });
});

describe('health at shutdown', () => {
  const GRACE_MS = 20_000;
  const servers: TestServer[] = [];
  const clients: HealthClient[] = [];

  afterAll(async () => {
    for (const client of clients) client.close();
    for (const server of servers) await server.stop();
  });

  /**
   * Starts a node with a long shutdown grace, opens Watch streams on it (on
   * the server, on a cfgd service, on a name it does not know), stops it, and
   * returns how each stream ended and how long stop() took.
   */
  async function watchThroughShutdown(): Promise<{ ends: Record<string, WatchEnd>; took: number; server: TestServer }> {
    const server = await startTestServer({ shutdownGraceMs: GRACE_MS });
    servers.push(server);
    const health = new HealthClient(server.cfgd.grpcPort);
    clients.push(health);
    const watches = {
      server: health.watch(''),
      config: health.watch('cfgd.v1.ConfigService'),
      // A name the server does not know: its watcher must not hold the shutdown either.
      unknown: health.watch('cfgd.v1.NoSuchService'),
    };
    await eventually(() => {
      expect(watches.server.statuses).toEqual(['SERVING']);
      expect(watches.config.statuses).toEqual(['SERVING']);
      expect(watches.unknown.statuses).toEqual(['SERVICE_UNKNOWN']);
    });
    expect((await probe(server.cfgd.httpPort, '/readyz')).status).toBe(200);

    const started = performance.now();
    await server.cfgd.stop();
    const took = performance.now() - started;
    const [serverEnd, configEnd, unknownEnd] = await Promise.all([
      watches.server.ended,
      watches.config.ended,
      watches.unknown.ended,
    ]);
    return { ends: { server: serverEnd, config: configEnd, unknown: unknownEnd }, took, server };
  }

  it('every Watch hears NOT_SERVING and then ends with OK, and stop() does not wait out the grace for them', async () => {
    const { ends, took, server } = await watchThroughShutdown();
    // The server ended the streams (OK), not the end of the grace (CANCELLED), and NOT_SERVING came first.
    for (const name of ['server', 'config']) {
      expect(ends[name]!.code, name).toBe(GrpcStatus.OK);
      expect(changes(ends[name]!.statuses), name).toEqual(['SERVING', 'NOT_SERVING']);
    }
    expect(ends.unknown).toMatchObject({ code: GrpcStatus.OK, statuses: ['SERVICE_UNKNOWN'] });
    // The only timing bound here, and a generous one: a fraction of the grace.
    expect(took).toBeLessThan(GRACE_MS / 4);
    expect(server.cfgd.health.status).toBe('NOT_SERVING');
  });

  // At shutdown both the monitor and the gRPC adapter say NOT_SERVING, and grpc-health-check writes
  // every setStatus to every watcher: the adapter passes on changes only.
  it('a Watch hears NOT_SERVING only once at shutdown: it sends changes, not repeats', async () => {
    const { ends } = await watchThroughShutdown();
    expect(ends.server!.statuses).toEqual(['SERVING', 'NOT_SERVING']);
    expect(ends.config!.statuses).toEqual(['SERVING', 'NOT_SERVING']);
  });
});

describe('health with --workers 2 (separate processes sharing the ports)', () => {
  let dir: string | undefined;
  let cfgd: CfgdProcess | undefined;
  const clients: HealthClient[] = [];

  afterAll(async () => {
    for (const client of clients) client.close();
    if (cfgd !== undefined && cfgd.child.exitCode === null && cfgd.child.signalCode === null) {
      // SIGTERM, so that the primary ends its workers too; SIGKILL if it does not end in time.
      cfgd.child.kill('SIGTERM');
      const timer = setTimeout(() => cfgd?.child.kill('SIGKILL'), 10_000);
      await cfgd.exited;
      clearTimeout(timer);
    }
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('Check answers SERVING on every connection to the shared gRPC port, and /readyz 200', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cfgd-health-'));
    cfgd = await spawnCfgd(['--store', dir, '--workers', '2']);
    // Each client is a connection of its own; node:cluster hands connections to the workers in turn.
    for (let i = 0; i < 4; i++) clients.push(new HealthClient(cfgd.grpcPort));
    for (const client of clients) {
      expect(await client.check('')).toBe('SERVING');
      expect(await client.check('cfgd.v1.ConfigService')).toBe('SERVING');
    }
    for (let i = 0; i < 4; i++) {
      const response = await http(cfgd.httpPort, 'GET', '/readyz', { headers: { connection: 'close' } });
      expect(response.status).toBe(200);
      expect(response.json).toStrictEqual({ status: 'SERVING' });
    }
    cfgd.child.kill('SIGTERM');
    expect(await cfgd.exited).toEqual({ code: 0, signal: null });
  }, 90_000);
});
