/**
 * `--workers N` on the embedded store, with real processes and real sockets:
 * the primary (the store's one writer, group commit) and its worker
 * processes, which share the gRPC port. Every gRPC connection here is a
 * channel of its own (its own subchannel pool and a distinct option), so it
 * is one TCP connection, which node:cluster hands to one worker; which
 * worker is found out by opening a watch on the connection and seeing whose
 * `watch_streams` grew in GetStatus.
 */
import {
  Channel,
  credentials,
  status as GrpcStatus,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  AuthServiceClient,
  type CreateTokenRequest,
  type CreateTokenResponse,
} from '../../generated/cfgd/v1/auth_service.js';
import {
  ConfigServiceClient,
  WatchEventType,
  type GetResponse,
  type PutResponse,
  type VerifyHistoryResponse,
  type WatchRequest,
  type WatchResponse,
} from '../../generated/cfgd/v1/config_service.js';
import {
  StatusServiceClient,
  type GetStatusRequest,
  type GetStatusResponse,
} from '../../generated/cfgd/v1/status_service.js';
import type { JsonObject } from '../../src/domain/index.js';
import { authMetadata, bearer, grantsOn, grpcOutcome, TEST_ADMIN_TOKEN, unaryWithin } from '../helpers/auth.js';
import { checkChain } from '../helpers/chain.js';
import { TestClient } from '../helpers/client.js';
import { spawnCfgd, type CfgdProcess } from '../helpers/process.js';
import { eventually } from '../helpers/wait.js';

type Key = { readonly userId: string; readonly configName: string };

// ---------------------------------------------------------------------------------------------
// Processes, directories and connections, all cleaned up after each test whatever happened.

const dirs: string[] = [];
const processes: CfgdProcess[] = [];
/** Every worker pid a test saw, so that none outlives the test even if the primary fails to end it. */
const workerPids = new Set<number>();
const connections: Connection[] = [];
const testClients: TestClient[] = [];

afterEach(async () => {
  for (const connection of connections.splice(0)) connection.close();
  for (const client of testClients.splice(0)) client.close();
  for (const cfgd of processes.splice(0)) {
    if (cfgd.child.exitCode === null && cfgd.child.signalCode === null) {
      cfgd.child.kill('SIGKILL');
      await cfgd.exited;
    }
  }
  // A worker left behind, and only one of ours: its command line names one of our store directories.
  for (const pid of workerPids) {
    if (!isGone(pid) && ourStore(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
  }
  workerPids.clear();
});

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function newDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cfgd-workers-'));
  dirs.push(dir);
  return dir;
}

/** Starts `src/main.ts` on `dir` (a fresh directory unless given) and registers it for cleanup. */
async function startCfgd(
  args: string[],
  dir = newDir(),
): Promise<{ cfgd: CfgdProcess; dir: string; stderr: () => string }> {
  const cfgd = await spawnCfgd(['--store', dir, ...args]);
  processes.push(cfgd);
  let stderr = '';
  cfgd.child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return { cfgd, dir, stderr: () => stderr };
}

/**
 * True once `pid` has ended: no such process, or a zombie (ended, not reaped
 * yet: orphans of a killed primary are reaped by init, whenever it gets to it).
 */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error: unknown) {
    // ESRCH: no such process; EPERM: the pid is another user's now.
    if (['ESRCH', 'EPERM'].includes((error as NodeJS.ErrnoException).code ?? '')) return true;
    throw error;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** True when `pid` runs cfgd on one of this file's store directories (workers have the primary's arguments). */
function ourStore(pid: number): boolean {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return args.includes('src/main.ts') || args.some((arg) => arg.endsWith('/src/main.ts'))
      ? dirs.some((dir) => args.includes(dir))
      : false;
  } catch {
    return false;
  }
}

/** The parent pid of `pid`, from /proc (Linux). */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `promise`, or a failure naming `what` after `timeoutMs`. */
async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `ready` until it is true; fails with `what` after `timeoutMs`. */
async function waitFor(what: string, ready: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * Every call has a deadline: node:cluster hands a connection that arrives
 * just after a worker died (before the primary noticed) to that dead worker,
 * and it then hangs, neither served nor closed.
 */
const CALL_MS = 10_000;
/** How long a watch may take to open (its response headers). */
const OPEN_MS = 15_000;

/** A unary call as `authorization`, with a deadline (see `unaryWithin`). */
function unary<Req, Res>(
  method: Parameters<typeof unaryWithin<Req, Res>>[0],
  request: Req,
  authorization: string | undefined,
): Promise<Res> {
  return unaryWithin(method, request, authorization, CALL_MS);
}

/** A call failed the way a call to a worker that died fails: its outcome is unknown. */
function lostToADeadWorker(error: unknown): boolean {
  const code = (error as ServiceError).code;
  return code === GrpcStatus.UNAVAILABLE || code === GrpcStatus.DEADLINE_EXCEEDED;
}

let connectionCount = 0;

/**
 * One gRPC connection: a channel of its own, shared by the config, status and
 * auth clients, so all their calls go to the one worker that took it.
 */
class Connection {
  readonly channel: Channel;
  readonly config: ConfigServiceClient;
  readonly status: StatusServiceClient;
  readonly auth: AuthServiceClient;

  constructor(
    port: number,
    readonly authorization?: string,
  ) {
    const target = `127.0.0.1:${port}`;
    // A local subchannel pool and an option no other channel has: grpc-js shares no connection with another channel.
    this.channel = new Channel(target, credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'cfgd-test.connection': ++connectionCount,
    });
    const options = { channelOverride: this.channel };
    this.config = new ConfigServiceClient(target, credentials.createInsecure(), options);
    this.status = new StatusServiceClient(target, credentials.createInsecure(), options);
    this.auth = new AuthServiceClient(target, credentials.createInsecure(), options);
    connections.push(this);
  }

  put(key: Key, values: JsonObject, authorization = this.authorization): Promise<PutResponse> {
    return unary(this.config.put.bind(this.config), { ...key, values, validateOnly: false }, authorization);
  }

  get(key: Key, version = 0, authorization = this.authorization): Promise<GetResponse> {
    return unary(this.config.get.bind(this.config), { ...key, version }, authorization);
  }

  verify(key: Key): Promise<VerifyHistoryResponse> {
    return unary(this.config.verifyHistory.bind(this.config), { ...key }, this.authorization);
  }

  async getStatus(): Promise<GetStatusResponse> {
    const status = await unary<GetStatusRequest, GetStatusResponse>(
      this.status.getStatus.bind(this.status),
      {},
      this.authorization,
    );
    for (const worker of status.workers) workerPids.add(worker.pid);
    return status;
  }

  watch(request: Partial<WatchRequest> & { userId: string }, authorization = this.authorization): Watcher {
    return new Watcher(
      this.config.watch({ configName: '', knownVersions: {}, ...request }, authMetadata(authorization)),
    );
  }

  close(): void {
    this.config.close();
    this.status.close();
    this.auth.close();
    this.channel.close();
  }
}

/** A watch stream's messages (PROGRESS left out) and how it ended. */
class Watcher {
  readonly events: WatchResponse[] = [];
  readonly opened: Promise<void>;
  error: ServiceError | undefined;
  ended = false;

  constructor(readonly stream: ClientReadableStream<WatchResponse>) {
    this.opened = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`the watch did not open within ${OPEN_MS} ms`));
        stream.cancel();
      }, OPEN_MS);
      stream.once('metadata', () => {
        clearTimeout(timer);
        resolve();
      });
      stream.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    // Whoever waits on `opened` sees its failure; nobody else need.
    this.opened.catch(() => {});
    stream.on('data', (event: WatchResponse) => {
      if (event.type !== WatchEventType.WATCH_EVENT_TYPE_PROGRESS) this.events.push(event);
    });
    stream.on('error', (error: ServiceError) => {
      this.error = error;
      this.ended = true;
    });
    stream.on('end', () => {
      this.ended = true;
    });
  }

  /** Waits until `count` events arrived; fails if the stream ends first or after `timeoutMs`. */
  async until(count: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length < count) {
      if (this.ended) {
        throw new Error(`the watch ended after ${this.events.length} of ${count} events: ${this.error?.message}`);
      }
      if (Date.now() > deadline) throw new Error(`the watch received ${this.events.length} of ${count} events`);
      await sleep(20);
    }
  }

  cancel(): void {
    this.stream.cancel();
  }
}

/** GetStatus until it lists `workers` workers (one being restarted is missing for a while). */
async function statusWith(connection: Connection, workers: number): Promise<GetStatusResponse> {
  let status: GetStatusResponse | undefined;
  await eventually(async () => {
    status = await connection.getStatus();
    expect(status.workers.map((w) => w.worker)).toEqual(Array.from({ length: workers }, (_, i) => i + 1));
  }, 20_000);
  return status!;
}

function streamsOf(status: GetStatusResponse): Map<number, number> {
  return new Map(status.workers.map((w) => [w.worker, w.watchStreams]));
}

let probes = 0;

/**
 * Opens `request`'s watch on `connection` and answers which worker took it:
 * the one whose watch_streams grew by one (no other watch may open or close
 * meanwhile). `status` is the connection GetStatus goes through.
 */
async function watchOn(
  connection: Connection,
  status: Connection,
  request: Partial<WatchRequest> & { userId: string },
  workers = 2,
): Promise<{ watcher: Watcher; worker: number }> {
  const before = streamsOf(await statusWith(status, workers));
  const watcher = connection.watch(request);
  await watcher.opened;
  let worker = 0;
  await eventually(async () => {
    const after = streamsOf(await statusWith(status, workers));
    const grown = [...after].filter(([number, streams]) => streams === (before.get(number) ?? 0) + 1);
    const same = [...after].filter(([number, streams]) => streams === before.get(number));
    expect(grown).toHaveLength(1);
    expect(same).toHaveLength(workers - 1);
    worker = grown[0]![0];
  }, 10_000);
  return { watcher, worker };
}

/** Which worker serves `connection`: a probe watch opened on it, then closed again. */
async function workerOf(connection: Connection, workers = 2): Promise<number> {
  const { watcher, worker } = await watchOn(
    connection,
    connection,
    { userId: 'probe', configName: `probe-${++probes}` },
    workers,
  );
  const total = (await connection.getStatus()).watchStreams;
  watcher.cancel();
  await eventually(async () => expect((await connection.getStatus()).watchStreams).toBe(total - 1), 10_000);
  return worker;
}

/** Fresh connections until every worker serves `perWorker` of them (at most `attempts` connections). */
async function connectionsOnEachWorker(
  port: number,
  authorization?: string,
  perWorker = 1,
  workers = 2,
  attempts = 16,
): Promise<Map<number, Connection[]>> {
  const found = new Map<number, Connection[]>();
  const failures: string[] = [];
  for (let i = 0; i < attempts; i++) {
    const connection = new Connection(port, authorization);
    let worker: number;
    try {
      worker = await workerOf(connection, workers);
    } catch (error: unknown) {
      // A connection lost to a worker that had just died (see CALL_MS): try another.
      failures.push(error instanceof Error ? error.message : String(error));
      connection.close();
      continue;
    }
    found.set(worker, [...(found.get(worker) ?? []), connection]);
    if (found.size === workers && [...found.values()].every((list) => list.length >= perWorker)) return found;
  }
  throw new Error(
    `${attempts} connections did not reach every worker (${[...found.keys()].join(', ')}): ${failures.join('; ')}`,
  );
}

/** Every version of `key` (checked by `checkChain`: 1..latest, each audit entry turning its predecessor into it). */
async function storedVersions(port: number, key: Key): Promise<JsonObject[]> {
  const client = new TestClient(port);
  testClients.push(client);
  return checkChain(client, key);
}

/**
 * What a client saw of its writes: each acknowledged one at its version, and
 * each that failed (whose outcome is unknown).
 */
class WriteLog {
  readonly acked = new Map<string, Map<number, JsonObject>>();
  readonly failed: { configName: string; values: JsonObject }[] = [];
  total = 0;

  ack(key: Key, response: PutResponse, values: JsonObject): void {
    const versions = this.acked.get(key.configName) ?? new Map<number, JsonObject>();
    this.acked.set(key.configName, versions);
    const version = response.config!.version;
    // Two acknowledgements of one version would be a lost write.
    expect(versions.has(version), `version ${version} of ${key.configName} acknowledged twice`).toBe(false);
    expect(response.changed).toBe(true);
    versions.set(version, values);
    this.total++;
  }

  fail(key: Key, values: JsonObject): void {
    this.failed.push({ configName: key.configName, values });
  }

  /**
   * After the fact: every acknowledged write is stored at its version with its
   * values, each write (acknowledged or not) is stored at most once, and the
   * history is contiguous with an audit entry per version whose chain verifies.
   */
  async check(port: number, verifier: Connection, userId: string): Promise<Map<string, JsonObject[]>> {
    const stored = new Map<string, JsonObject[]>();
    for (const configName of new Set([...this.acked.keys(), ...this.failed.map((f) => f.configName)])) {
      const key = { userId, configName };
      const versions = await storedVersions(port, key);
      stored.set(configName, versions);
      for (const [version, values] of this.acked.get(configName) ?? []) {
        expect(versions.length, `${configName} lost version ${version}`).toBeGreaterThanOrEqual(version);
        expect(versions[version - 1], `${configName}@${version}`).toEqual(values);
      }
      // Every write carries values of its own: none may be stored twice, and every version stored is one of them
      // (a write whose call failed is there whole, or not at all).
      const copies = new Map<string, number>();
      for (const values of versions) copies.set(canonical(values), (copies.get(canonical(values)) ?? 0) + 1);
      const writes = [...(this.acked.get(configName)?.values() ?? [])].concat(
        this.failed.filter((f) => f.configName === configName).map((f) => f.values),
      );
      for (const values of writes) {
        expect(copies.get(canonical(values)) ?? 0, JSON.stringify(values)).toBeLessThanOrEqual(1);
      }
      const made = new Set(writes.map(canonical));
      expect(versions.filter((values) => !made.has(canonical(values)))).toEqual([]);
      const verified = await verifier.verify(key);
      expect(verified).toMatchObject({ intact: true, firstCheckedVersion: 1, latestVersion: versions.length });
    }
    return stored;
  }
}

/** Flat values as one string, whatever the order of their keys. */
function canonical(values: JsonObject): string {
  return JSON.stringify(Object.entries(values).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

const VERSION = WatchEventType.WATCH_EVENT_TYPE_VERSION;
const MARKER = WatchEventType.WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE;
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

// ---------------------------------------------------------------------------------------------

describe('--workers 2 on the embedded store', () => {
  it('watches get every version exactly once and in order on every worker, whichever worker took the write', async () => {
    const { cfgd } = await startCfgd(['--workers', '2']);
    const status = new Connection(cfgd.grpcPort);
    const key = { userId: 'fanout', configName: 'shared' };

    // Watchers on connections of their own until each worker holds at least two of them.
    const watchers: { watcher: Watcher; worker: number }[] = [];
    const onWorker = (n: number): number => watchers.filter((w) => w.worker === n).length;
    for (let i = 0; i < 16 && (onWorker(1) < 2 || onWorker(2) < 2); i++) {
      watchers.push(await watchOn(new Connection(cfgd.grpcPort), status, { ...key, startVersion: 0 }));
    }
    expect(onWorker(1)).toBeGreaterThanOrEqual(2);
    expect(onWorker(2)).toBeGreaterThanOrEqual(2);
    const streams = await status.getStatus();
    expect(streams.workers.map((w) => w.watchStreams)).toEqual([onWorker(1), onWorker(2)]);

    // Writers over connections of their own, on both workers.
    const writers = [...(await connectionsOnEachWorker(cfgd.grpcPort, undefined, 2)).values()].flat();
    expect(writers.length).toBeGreaterThanOrEqual(4);
    const log = new WriteLog();
    const total = 200;
    let next = 0;
    await Promise.all(
      writers.map(async (writer, w) => {
        while (next < total) {
          const j = next++;
          const values = { writer: w, j, [`w${w}`]: j };
          log.ack(key, await writer.put(key, values), values);
        }
      }),
    );
    const acked = log.acked.get(key.configName)!;
    expect([...acked.keys()].sort((a, b) => a - b)).toEqual(range(1, total));

    for (const { watcher, worker } of watchers) {
      await watcher.until(total, 30_000);
      expect(watcher.events.map((e) => e.type)).toEqual(Array<number>(total).fill(VERSION));
      expect(
        watcher.events.map((e) => e.config!.version),
        `a watcher on worker ${worker}`,
      ).toEqual(range(1, total));
      for (const event of watcher.events) {
        expect(event.config!.values).toEqual(acked.get(event.config!.version));
        expect(event.auditEntry!.version).toBe(event.config!.version);
      }
    }
    // Nothing more comes after the last version (no late duplicate): the next event is the next version.
    const last = { writer: -1, j: total };
    await writers[0]!.put(key, last);
    for (const { watcher } of watchers) {
      await watcher.until(total + 1, 30_000);
      expect(watcher.events).toHaveLength(total + 1);
      expect(watcher.events[total]!.config).toMatchObject({ version: total + 1, values: last });
    }
    for (const { watcher } of watchers) expect(watcher.ended).toBe(false);
  }, 120_000);

  it('a user watch on each worker gets both configs’ versions exactly once, each config in order', async () => {
    const { cfgd } = await startCfgd(['--workers', '2']);
    const status = new Connection(cfgd.grpcPort);
    const userId = 'fanout-user';
    const watchers: { watcher: Watcher; worker: number }[] = [];
    const onWorker = (n: number): number => watchers.filter((w) => w.worker === n).length;
    for (let i = 0; i < 16 && (onWorker(1) < 2 || onWorker(2) < 2); i++) {
      watchers.push(await watchOn(new Connection(cfgd.grpcPort), status, { userId }));
    }
    expect(Math.min(onWorker(1), onWorker(2))).toBeGreaterThanOrEqual(2);
    // The user has no config yet: the initial state is the marker alone.
    for (const { watcher } of watchers) await watcher.until(1, 10_000);
    for (const { watcher } of watchers) expect(watcher.events.map((e) => e.type)).toEqual([MARKER]);

    const writers = [...(await connectionsOnEachWorker(cfgd.grpcPort, undefined, 2)).values()].flat();
    const log = new WriteLog();
    const perConfig = 60;
    const names = ['a', 'b'];
    let next = 0;
    await Promise.all(
      writers.map(async (writer, w) => {
        while (next < 2 * perConfig) {
          // The writes alternate between both configs, and each writer takes the next one.
          const j = next++;
          const key = { userId, configName: names[j % 2]! };
          const values = { writer: w, j, config: key.configName };
          log.ack(key, await writer.put(key, values), values);
        }
      }),
    );
    for (const name of names) {
      expect([...log.acked.get(name)!.keys()].sort((a, b) => a - b)).toEqual(range(1, perConfig));
    }
    for (const { watcher, worker } of watchers) {
      await watcher.until(1 + 2 * perConfig, 30_000);
      await sleep(200);
      expect(watcher.events, `a user watcher on worker ${worker}`).toHaveLength(1 + 2 * perConfig);
      const changes = watcher.events.slice(1);
      expect(changes.every((e) => e.type === VERSION)).toBe(true);
      for (const name of names) {
        const mine = changes.filter((e) => e.config!.configName === name);
        expect(
          mine.map((e) => e.config!.version),
          `${name} on worker ${worker}`,
        ).toEqual(range(1, perConfig));
        for (const event of mine) {
          expect(event.config!.values).toEqual(log.acked.get(name)!.get(event.config!.version));
        }
      }
    }
  }, 120_000);

  it('GetStatus lists both workers, each with its own pid, and totals that are their sums', async () => {
    const { cfgd } = await startCfgd(['--workers', '2']);
    const status = new Connection(cfgd.grpcPort);
    // Three watches, spread over the workers, so that the totals are not zero nor one worker's alone.
    const opened: number[] = [];
    while (opened.length < 3 || new Set(opened).size < 2) {
      expect(opened.length).toBeLessThan(16);
      const { worker } = await watchOn(new Connection(cfgd.grpcPort), status, {
        userId: 'status',
        configName: `c${opened.length % 2}`,
      });
      opened.push(worker);
    }
    const response = await status.getStatus();
    expect(response.workers.map((w) => w.worker)).toEqual([1, 2]);
    const pids = response.workers.map((w) => w.pid);
    expect(new Set(pids).size).toBe(2);
    for (const pid of pids) {
      expect(pid).not.toBe(cfgd.child.pid);
      expect(isGone(pid)).toBe(false);
      // The worker processes are the primary's children, serving the same store.
      expect(parentOf(pid)).toBe(cfgd.child.pid);
      expect(ourStore(pid)).toBe(true);
    }
    expect(response.workers.map((w) => w.watchStreams)).toEqual(
      [1, 2].map((n) => opened.filter((o) => o === n).length),
    );
    const sum = (field: 'watchStreams' | 'watchChannels' | 'storeSubscriptions' | 'changefeeds'): number =>
      response.workers.reduce((total, w) => total + w[field], 0);
    expect(response.watchStreams).toBe(opened.length);
    expect(response.watchStreams).toBe(sum('watchStreams'));
    expect(response.watchChannels).toBe(sum('watchChannels'));
    expect(response.storeSubscriptions).toBe(sum('storeSubscriptions'));
    expect(response.changefeeds).toBe(sum('changefeeds'));
    expect(response.queuedEvents).toBe(response.workers.reduce((t, w) => t + w.queuedEvents, 0));
    expect(response.overflowedStreams).toBe(response.workers.reduce((t, w) => t + w.overflowedStreams, 0));
    expect(response.rssBytes).toBe(response.workers.reduce((t, w) => t + w.rssBytes, 0));
    expect(response.heapUsedBytes).toBe(response.workers.reduce((t, w) => t + w.heapUsedBytes, 0));
    for (const worker of response.workers) {
      expect(worker.rssBytes).toBeGreaterThan(0);
      expect(worker.heapUsedBytes).toBeGreaterThan(0);
      // Each worker watches configs of its own streams: at least one channel and subscription.
      expect(worker.watchChannels).toBeGreaterThanOrEqual(1);
      expect(worker.storeSubscriptions).toBeGreaterThanOrEqual(1);
    }

    // REST says the same (int64 as strings).
    const rest = (await (await fetch(`http://127.0.0.1:${cfgd.httpPort}/v1/status`)).json()) as {
      watch_streams: string;
      workers: { worker: number; pid: number; watch_streams: string }[];
    };
    expect(rest.watch_streams).toBe(String(opened.length));
    expect(rest.workers.map((w) => [w.worker, w.pid, Number(w.watch_streams)])).toEqual(
      response.workers.map((w) => [w.worker, w.pid, w.watchStreams]),
    );
  }, 120_000);

  it('a worker killed with SIGKILL is restarted, and the service and its data stay', async () => {
    const { cfgd } = await startCfgd(['--workers', '2']);
    const status = new Connection(cfgd.grpcPort);
    const key = { userId: 'restart', configName: 'app' };
    const written: JsonObject[] = [];
    for (let i = 0; i < 10; i++) {
      const values = { before: i };
      expect((await status.put(key, values)).config!.version).toBe(i + 1);
      written.push(values);
    }
    const before = await statusWith(status, 2);
    const victim = before.workers[0]!;
    const survivor = before.workers[1]!;
    process.kill(victim.pid, 'SIGKILL');
    await waitFor(`worker ${victim.pid} to die`, () => isGone(victim.pid), 10_000);

    // Calls keep succeeding: a call that fails (it went to the dead worker) is retried on a fresh connection.
    let failures = 0;
    for (let i = 0; i < 20; i++) {
      const values = { after: i };
      for (let attempt = 1; ; attempt++) {
        try {
          const response = await new Connection(cfgd.grpcPort).put(key, values);
          expect(response.config!.version).toBe(written.length + 1);
          written.push(values);
          break;
        } catch (error: unknown) {
          failures++;
          expect(lostToADeadWorker(error), (error as ServiceError).message).toBe(true);
          if (attempt === 4) throw error;
        }
      }
    }
    expect(failures).toBeLessThanOrEqual(10);

    // Both workers again, the dead one under a new pid; the other untouched.
    let after: GetStatusResponse | undefined;
    await eventually(async () => {
      after = await statusWith(status, 2);
      expect(after.workers[0]!.pid).not.toBe(victim.pid);
    }, 20_000);
    const restarted = after!.workers.find((w) => w.worker === victim.worker)!;
    expect(restarted.pid).not.toBe(victim.pid);
    expect(isGone(restarted.pid)).toBe(false);
    expect(after!.workers.find((w) => w.worker === survivor.worker)!.pid).toBe(survivor.pid);
    expect(cfgd.logs).toContainEqual(
      expect.objectContaining({ msg: 'worker died; restarting it', worker: victim.worker, pid: victim.pid }),
    );

    // The restarted worker serves: it writes through the primary, and its watches see writes made elsewhere.
    const byWorker = await connectionsOnEachWorker(cfgd.grpcPort);
    const onRestarted = byWorker.get(victim.worker)![0]!;
    const onSurvivor = byWorker.get(survivor.worker)![0]!;
    const watch = onRestarted.watch({ ...key, startVersion: written.length });
    await watch.opened;
    const fromRestarted = { through: 'restarted' };
    expect((await onRestarted.put(key, fromRestarted)).config!.version).toBe(written.length + 1);
    written.push(fromRestarted);
    const fromSurvivor = { through: 'survivor' };
    expect((await onSurvivor.put(key, fromSurvivor)).config!.version).toBe(written.length + 1);
    written.push(fromSurvivor);
    await watch.until(2, 10_000);
    expect(watch.events.map((e) => [e.config!.version, e.config!.values])).toEqual([
      [written.length - 1, fromRestarted],
      [written.length, fromSurvivor],
    ]);
    expect((await onRestarted.get(key)).config).toMatchObject({ version: written.length, values: fromSurvivor });

    // Nothing written before (or during) the restart was lost or changed.
    expect(await storedVersions(cfgd.grpcPort, key)).toEqual(written);
    expect(await onRestarted.verify(key)).toMatchObject({ intact: true, latestVersion: written.length });
  }, 120_000);

  it('workers killed in the middle of group commits leave every acknowledged write and a whole history', async () => {
    const { cfgd, stderr } = await startCfgd(['--workers', '2']);
    const status = new Connection(cfgd.grpcPort);
    await statusWith(status, 2);
    const userId = 'midflight';
    const shared = { userId, configName: 'shared' };
    const log = new WriteLog();
    const primaryAlive = (): boolean => cfgd.child.exitCode === null && cfgd.child.signalCode === null;
    let killed = false;
    let stop = false;
    let failuresAfterKill = 0;
    /** The worker to kill once `total` writes are acknowledged. */
    let killAt: { total: number; pid: number; done: () => void } | undefined;

    // 16 writers over connections of their own, each writing the shared config and its own, one Put after the other.
    // They start on worker 1 alone: the first kill (of worker 2, which serves none of them) then lands while the
    // primary is busy committing their writes and reporting each commit to both workers.
    const onWorker1: Connection[] = [];
    for (let attempt = 0; onWorker1.length < 16; attempt++) {
      expect(attempt, 'connections that reach worker 1').toBeLessThan(64);
      const connection = new Connection(cfgd.grpcPort);
      if ((await workerOf(connection)) === 1) onWorker1.push(connection);
      else connection.close();
    }
    const writers = onWorker1.map(async (first, c) => {
      const own = { userId, configName: `own-${c}` };
      let connection = first;
      let failuresInARow = 0;
      for (let j = 0; !stop; j++) {
        for (const [key, values] of [
          [shared, { [`c${c}`]: j, last: `${c}:${j}` }],
          [own, { seq: j, writer: c }],
        ] as const) {
          try {
            log.ack(key, await connection.put(key, values), values);
            failuresInARow = 0;
            if (killAt !== undefined && log.total >= killAt.total) {
              killed = true;
              process.kill(killAt.pid, 'SIGKILL');
              killAt.done();
              killAt = undefined;
            }
          } catch (error: unknown) {
            // The connection's worker died: the outcome is unknown; go on over a fresh connection.
            if (!killed || !lostToADeadWorker(error)) throw error;
            failuresAfterKill++;
            log.fail(key, values);
            if (!primaryAlive()) return; // Reported below.
            expect(++failuresInARow, `writer ${c}: ${(error as ServiceError).details}`).toBeLessThan(10);
            connection = new Connection(cfgd.grpcPort);
          }
        }
      }
    });
    const written = Promise.all(writers);
    written.catch(() => {}); // Awaited below; a failure before then must not go unhandled meanwhile.

    // Three kills, each fired as a write is acknowledged while others are in flight: worker 2 twice (no writer on
    // it), then worker 1 (every writer on it: their calls in flight fail, and they reconnect).
    const victims: number[] = [];
    for (const number of [2, 2, 1]) {
      const victim = (await statusWith(status, 2)).workers.find((w) => w.worker === number)!.pid;
      const total = log.total + 150;
      await within(
        Promise.race([
          new Promise<void>((resolve) => (killAt = { total, pid: victim, done: resolve })),
          written.then(() => Promise.reject(new Error('the writers stopped'))),
        ]),
        60_000,
        `${total} acknowledged writes`,
      );
      victims.push(victim);
      // Restarted under a new pid, while the primary lives on.
      const deadline = Date.now() + 30_000;
      for (;;) {
        await sleep(50);
        if (!primaryAlive()) {
          throw new Error(
            `the primary exited (${cfgd.child.exitCode ?? cfgd.child.signalCode}) after worker ${number} ` +
              `(pid ${victim}, kill ${victims.length}) was killed while clients wrote:\n${stderr()}`,
          );
        }
        const now = await status.getStatus().catch(() => undefined);
        const pid = now?.workers.find((w) => w.worker === number)?.pid;
        if (pid !== undefined && !victims.includes(pid)) break;
        if (Date.now() > deadline) throw new Error(`worker ${number} was not restarted after its pid ${victim} died`);
      }
    }
    const target = log.total + 150;
    await waitFor(`${target} acknowledged writes`, () => log.total >= target, 60_000);
    stop = true;
    await written;
    // The workers were killed with calls in flight on them (16 writers over both workers, always writing).
    expect(failuresAfterKill).toBeGreaterThanOrEqual(1);

    // After the restarts, through any worker.
    const byWorker = await connectionsOnEachWorker(cfgd.grpcPort);
    const stored = await log.check(cfgd.grpcPort, byWorker.get(1)![0]!, userId);
    expect(stored.size).toBe(17);
    // Each writer's own config holds its writes in the order it made them.
    for (let c = 0; c < 16; c++) {
      const seqs = stored.get(`own-${c}`)!.map((values) => values.seq as number);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(new Set(seqs).size).toBe(seqs.length);
    }
    // Both workers read the same heads, and the chain verifies through each.
    for (const [, [connection]] of byWorker) {
      for (const [configName, versions] of stored) {
        expect((await connection!.get({ userId, configName })).config!.version).toBe(versions.length);
      }
      expect(await connection!.verify(shared)).toMatchObject({ intact: true });
    }
  }, 240_000);

  it('the primary killed with SIGKILL mid-flight takes its workers with it and loses no acknowledged write', async () => {
    const { cfgd, dir } = await startCfgd(['--workers', '2', '--sync', 'full']);
    const status = new Connection(cfgd.grpcPort);
    const workers = (await statusWith(status, 2)).workers.map((w) => w.pid);
    const userId = 'kill-primary';
    const keys = Array.from({ length: 4 }, (_, i) => ({ userId, configName: `cfg-${i}` }));
    const log = new WriteLog();
    let stop = false;
    const writers = keys.flatMap((key) =>
      [0, 1, 2].map(async (w) => {
        const connection = new Connection(cfgd.grpcPort);
        for (let j = 0; !stop; j++) {
          const values = { writer: w, j, [`w${w}`]: j };
          try {
            log.ack(key, await connection.put(key, values), values);
          } catch {
            log.fail(key, values);
            return; // The server is gone.
          }
        }
      }),
    );
    const written = Promise.all(writers);
    written.catch(() => {}); // Awaited below.
    await waitFor('300 acknowledged writes', () => log.total >= 300, 60_000);
    cfgd.child.kill('SIGKILL');
    expect((await cfgd.exited).signal).toBe('SIGKILL');
    // The workers end by themselves: their writer is gone.
    await waitFor(`workers ${workers.join(', ')} to exit`, () => workers.every(isGone), 10_000);
    stop = true;
    await written;

    const { cfgd: second } = await startCfgd(['--workers', '2'], dir);
    const verifier = new Connection(second.grpcPort);
    const stored = await log.check(second.grpcPort, verifier, userId);
    for (const key of keys) {
      expect(log.acked.get(key.configName)!.size).toBeGreaterThan(0);
      expect(stored.get(key.configName)!.length).toBeGreaterThanOrEqual(log.acked.get(key.configName)!.size);
    }
    // And it writes on from there.
    const latest = stored.get('cfg-0')!.length;
    expect((await verifier.put(keys[0]!, { after: 'restart' })).config!.version).toBe(latest + 1);
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  }, 180_000);

  it('a token works at once on every worker, and once revoked every worker refuses it', async () => {
    const { cfgd } = await startCfgd(['--workers', '2', '--auth', 'on', '--admin-token', TEST_ADMIN_TOKEN]);
    const admin = bearer(TEST_ADMIN_TOKEN);
    const adminConnection = new Connection(cfgd.grpcPort, admin);
    // Without credentials, nothing.
    const anonymous = await new Connection(cfgd.grpcPort).get({ userId: 'alice', configName: 'app' }).catch((e) => e);
    expect(grpcOutcome(anonymous as ServiceError)).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_MISSING' });

    const created = await unary<CreateTokenRequest, CreateTokenResponse>(
      adminConnection.auth.createToken.bind(adminConnection.auth),
      { name: 'deploy', grants: grantsOn('alice', 'read', 'write'), expireTime: undefined, ttl: undefined },
      admin,
    );
    const token = bearer(created.secret);
    const key = { userId: 'alice', configName: 'app' };

    // Fresh connections, the token their first call, until both workers have taken one.
    const users = new Map<number, Connection>();
    let version = 0;
    for (let i = 0; i < 16 && users.size < 2; i++) {
      const connection = new Connection(cfgd.grpcPort, admin);
      const response = await connection.put(key, { n: i }, token);
      expect(response.config!.version).toBe(++version);
      expect(response.auditEntry!.author).toBe('token:deploy');
      const worker = await workerOf(connection);
      if (!users.has(worker)) users.set(worker, connection);
    }
    expect([...users.keys()].sort()).toEqual([1, 2]);
    // The token grants only alice's configs, on every worker.
    for (const connection of users.values()) {
      const denied = await connection.put({ userId: 'bob', configName: 'app' }, { x: 1 }, token).catch((e) => e);
      expect(grpcOutcome(denied as ServiceError).code).toBe('PERMISSION_DENIED');
    }

    await unary(adminConnection.auth.revokeToken.bind(adminConnection.auth), { id: created.token!.id }, admin);
    // Within a short bounded time every worker refuses it: on connections that used it before …
    await eventually(async () => {
      for (const [worker, connection] of users) {
        const error = await connection.get(key, 0, token).then(
          () => new Error(`worker ${worker} still accepts the revoked token`),
          (e: unknown) => e,
        );
        expect(grpcOutcome(error as ServiceError)).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_REVOKED' });
      }
    }, 5000);
    // … and on fresh ones, on both workers.
    const fresh = await connectionsOnEachWorker(cfgd.grpcPort, admin, 2);
    for (const [worker, list] of fresh) {
      for (const connection of list) {
        const error = await connection.put(key, { revoked: true }, token).then(
          () => new Error(`worker ${worker} accepted the revoked token`),
          (e: unknown) => e,
        );
        expect(grpcOutcome(error as ServiceError)).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_REVOKED' });
      }
      // The admin token still works there.
      expect((await list[0]!.get(key)).config!.version).toBe(version);
    }
  }, 120_000);

  it('SIGTERM stops the primary with exit code 0 after every worker has ended, and ends watches with UNAVAILABLE', async () => {
    const { cfgd } = await startCfgd(['--workers', '2']);
    const status = new Connection(cfgd.grpcPort);
    const workers = (await statusWith(status, 2)).workers.map((w) => w.pid);
    const key = { userId: 'stop', configName: 'app' };
    const watchers: Watcher[] = [];
    for (const [, [connection]] of await connectionsOnEachWorker(cfgd.grpcPort)) {
      const watcher = connection!.watch({ ...key, startVersion: 0 });
      await watcher.opened;
      watchers.push(watcher);
    }
    await status.put(key, { a: 1 });
    for (const watcher of watchers) await watcher.until(1, 10_000);

    cfgd.child.kill('SIGTERM');
    expect(await cfgd.exited).toEqual({ code: 0, signal: null });
    // The primary waited for its workers.
    for (const pid of workers) expect(isGone(pid), `worker ${pid}`).toBe(true);
    // Each worker drained (its log line may still be on its way through the pipe).
    await waitFor(
      'both workers to log their shutdown',
      () => {
        return cfgd.logs.filter((l) => l.msg === 'worker shutting down').length === 2;
      },
      5000,
    );
    for (const watcher of watchers) {
      await waitFor('the watch to end', () => watcher.ended, 10_000);
      expect(grpcOutcome(watcher.error!)).toMatchObject({ code: 'UNAVAILABLE', reason: 'SERVER_SHUTTING_DOWN' });
    }
  }, 120_000);

  it('--workers 1 serves from the one process', async () => {
    const { cfgd } = await startCfgd(['--workers', '1']);
    const connection = new Connection(cfgd.grpcPort);
    const key = { userId: 'single', configName: 'app' };
    const watcher = connection.watch({ ...key, startVersion: 0 });
    await watcher.opened;
    expect((await connection.put(key, { one: 1 })).config!.version).toBe(1);
    await watcher.until(1, 10_000);
    const response = await connection.getStatus();
    expect(response.workers).toHaveLength(1);
    expect(response.workers[0]).toMatchObject({ worker: 1, pid: cfgd.child.pid, watchStreams: 1 });
    expect(response.watchStreams).toBe(1);
    expect(cfgd.logs.some((l) => l.msg === 'worker listening')).toBe(false);
    cfgd.child.kill('SIGTERM');
    expect(await cfgd.exited).toEqual({ code: 0, signal: null });
  }, 60_000);
});
