/**
 * Helpers of the client library's integration tests (`CfgdClient` against real
 * cfgd processes over real sockets): processes that can be killed and started
 * again on the same port and store, a consumer that records what a watch
 * iterator yields, a writer that keeps writing through outages, and a proxy
 * that lets requests through but holds back the server's answers.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import {
  CfgdClient,
  WatchEventType,
  type CfgdClientError,
  type CfgdClientOptions,
  type ConfigKey,
  type WatchOptions,
  type WatchResponse,
  type WatchTarget,
} from '../../src/client/index.js';
import { spawnCfgd, type CfgdProcess } from './process.js';
export { writeVersions } from './writes.js';

export const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `promise`, or a failure naming `what` after `timeoutMs`: no test waits forever on something that hangs. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
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

/** Polls `ready` until it is true; fails naming `what` after `timeoutMs`. */
export async function waitFor(what: string, ready: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------------------------
// Processes.

/**
 * True once `pid` has ended: no such process, or a zombie (ended, not reaped
 * yet: the orphaned workers of a killed primary are reaped by init, whenever).
 */
export function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** The processes whose parent is `pid` (Linux: read from /proc): a cfgd primary's workers. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
    } catch {
      // Ended meanwhile.
    }
  }
  return children;
}

/** True when `pid` runs cfgd's `src/main.ts` (so that cleanup never signals a process that took over a pid). */
function runsCfgd(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .some((arg) => arg.endsWith('src/main.ts'));
  } catch {
    return false;
  }
}

/** A cfgd process (a primary and its workers) started by `Nodes`. */
export interface Node {
  readonly cfgd: CfgdProcess;
  /** `127.0.0.1:port` of its gRPC listener. */
  readonly address: string;
  readonly args: readonly string[];
}

/**
 * The cfgd processes of a test file: started through `spawnCfgd`, stopped
 * with a signal and waited for (workers included), and all killed by
 * `cleanup`, whatever a test left running.
 */
export class Nodes {
  private readonly running = new Set<Node>();
  /** Every worker pid seen, so that none outlives the file if its primary failed to take it along. */
  private readonly workers = new Set<number>();

  /** Starts cfgd with `args` (e.g. `--store DIR --grpc-addr 127.0.0.1:PORT`) and `env`. */
  async start(args: readonly string[], env: Record<string, string> = {}): Promise<Node> {
    const cfgd = await spawnCfgd([...args], env);
    const node: Node = { cfgd, address: `127.0.0.1:${cfgd.grpcPort}`, args };
    this.running.add(node);
    return node;
  }

  /**
   * Sends `signal` to the primary, waits for it to exit and for its workers
   * to end too (they end by themselves once their primary is gone), so that
   * the port and the store are free for the next process.
   */
  async stop(node: Node, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const pid = node.cfgd.child.pid!;
    const workers = childrenOf(pid);
    for (const worker of workers) this.workers.add(worker);
    node.cfgd.child.kill(signal);
    const exit = await within(node.cfgd.exited, 30_000, `cfgd ${pid} to exit after ${signal}`);
    await waitFor(`the workers ${workers.join(', ')} of cfgd ${pid} to end`, () => workers.every(isGone), 15_000);
    this.running.delete(node);
    return exit;
  }

  /** Kills every process still running (SIGKILL), workers included. */
  async cleanup(): Promise<void> {
    for (const node of this.running) {
      const pid = node.cfgd.child.pid;
      if (pid !== undefined) for (const worker of childrenOf(pid)) this.workers.add(worker);
      if (node.cfgd.child.exitCode === null && node.cfgd.child.signalCode === null) node.cfgd.child.kill('SIGKILL');
      await within(node.cfgd.exited, 10_000, 'a cfgd process to exit').catch(() => {});
    }
    this.running.clear();
    for (const pid of this.workers) {
      if (isGone(pid) || !runsCfgd(pid)) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
    this.workers.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// Clients.

/** Backoff short enough for tests: reconnections follow a restart within a second or so. */
export const FAST_BACKOFF = { initialMs: 50, maxMs: 500 } as const;

/** The clients of a test file, closed by `closeAll`. */
export class Clients {
  private readonly open: CfgdClient[] = [];

  create(options: CfgdClientOptions): CfgdClient {
    const client = new CfgdClient({ backoff: FAST_BACKOFF, ...options });
    this.open.push(client);
    return client;
  }

  closeAll(): void {
    for (const client of this.open.splice(0)) client.close();
  }
}

/** The latest version of a config, as its history says (0 when it does not exist). */
export async function latestVersion(client: CfgdClient, key: ConfigKey): Promise<number> {
  let latest = 0;
  for await (const entry of client.history(key)) latest = Math.max(latest, entry.version);
  return latest;
}

/** Every version number in a config's history, in the order the history lists them. */
export async function historyVersions(client: CfgdClient, key: ConfigKey): Promise<number[]> {
  const versions: number[] = [];
  for await (const entry of client.history(key)) versions.push(entry.version);
  return versions;
}

// ---------------------------------------------------------------------------------------------
// Watches.

/**
 * A watch consumed by a `for await` loop, as an application would: every
 * event it yielded, every `onReconnect` it reported, and how it ended.
 * `pause()` makes the loop stop pulling from the iterator after the event it
 * holds, until `resume()`.
 */
export class WatchLog {
  readonly events: WatchResponse[] = [];
  readonly reconnects: CfgdClientError[] = [];
  /** What the iterator threw, if it did. */
  error: unknown;
  ended = false;
  readonly done: Promise<void>;
  private readonly controller = new AbortController();
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;

  constructor(
    client: CfgdClient,
    target: WatchTarget,
    options: Omit<WatchOptions, 'signal' | 'onReconnect'> = {},
    /** Called with each event; returning true breaks out of the loop. */
    stopAt: (event: WatchResponse, log: WatchLog) => boolean = () => false,
  ) {
    const watch = client.watch(target, {
      ...options,
      signal: this.controller.signal,
      onReconnect: (error) => this.reconnects.push(error),
    });
    this.done = (async () => {
      try {
        for await (const event of watch) {
          this.events.push(event);
          if (stopAt(event, this)) break;
          if (this.gate !== undefined) await this.gate;
        }
      } catch (error: unknown) {
        this.error = error;
      } finally {
        this.ended = true;
      }
    })();
  }

  /** The versions of VERSION events (of `configName`, for a user watch), in the order they were yielded. */
  versions(configName?: string): number[] {
    return this.events
      .filter((e) => e.type === WatchEventType.WATCH_EVENT_TYPE_VERSION)
      .filter((e) => configName === undefined || e.config?.configName === configName)
      .map((e) => e.config!.version);
  }

  count(type: WatchEventType): number {
    return this.events.filter((e) => e.type === type).length;
  }

  /** Waits until `ready`; fails if the watch ended first or after `timeoutMs`. */
  async until(what: string, ready: (log: WatchLog) => boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ready(this)) {
      if (this.ended) throw new Error(`the watch ended before ${what}: ${String(this.error)}`);
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${this.events.length} events so far)`);
      }
      await sleep(20);
    }
  }

  /** From the next event on, the loop holds each event and pulls no further until `resume`. */
  pause(): void {
    this.gate ??= new Promise((resolve) => (this.openGate = resolve));
  }

  resume(): void {
    this.openGate?.();
    this.gate = undefined;
    this.openGate = undefined;
  }

  /** Aborts the watch's signal and waits for the loop to end. */
  async stop(): Promise<void> {
    this.resume();
    this.controller.abort();
    await within(this.done, 10_000, 'the watch to end after its signal aborted');
  }
}

// ---------------------------------------------------------------------------------------------
// Writes.

/**
 * Writes to `keys` in turn until stopped, through outages: a write that fails
 * is tried again (after a short pause) with the same request id, so that it
 * is applied at most once even when the failed attempt was applied. Each
 * write has a `seq` of its own in its values.
 */
export class Writer {
  /** The versions acknowledged, by config name. */
  readonly acked = new Map<string, number[]>();
  failures = 0;
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(
    client: CfgdClient,
    keys: readonly ConfigKey[],
    /** Padding added to every write's values. */
    pad = '',
  ) {
    for (const key of keys) this.acked.set(key.configName, []);
    this.loop = (async () => {
      for (let seq = 1; !this.stopped; seq++) {
        const key = keys[seq % keys.length]!;
        const requestId = randomUUID();
        while (!this.stopped) {
          try {
            const response = await client.put({ ...key, values: { seq, pad }, requestId });
            this.acked.get(key.configName)!.push(response.config!.version);
            break;
          } catch {
            this.failures++;
            await sleep(50);
          }
        }
      }
    })();
  }

  get total(): number {
    return [...this.acked.values()].reduce((sum, versions) => sum + versions.length, 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await within(this.loop, 30_000, 'the writer to stop');
  }
}

// ---------------------------------------------------------------------------------------------
// Network.

/**
 * A TCP proxy on loopback whose answers can be lost: after `dropAnswers()`,
 * what the client sends still reaches the server, but nothing the server
 * sends back reaches the client (it is dropped, and so is the server closing
 * the connection), on the connections open then: to the client the server
 * has gone silent, as behind a network partition. `cut()` closes every
 * connection; the next ones forward both ways.
 */
export class AnswerDroppingProxy {
  private readonly pairs = new Set<{ client: Socket; upstream: Socket; dropping: boolean }>();
  private server: Server | undefined;
  private listeningPort = 0;

  private constructor(private readonly targetPort: number) {}

  get address(): string {
    return `127.0.0.1:${this.listeningPort}`;
  }

  static async start(targetPort: number): Promise<AnswerDroppingProxy> {
    const proxy = new AnswerDroppingProxy(targetPort);
    const server = createServer((client) => proxy.forward(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    proxy.server = server;
    proxy.listeningPort = typeof address === 'object' && address !== null ? address.port : 0;
    return proxy;
  }

  /** From now on the server's answers on every open connection are lost; requests still go through. */
  dropAnswers(): void {
    for (const pair of this.pairs) pair.dropping = true;
  }

  /** Closes every connection through the proxy (the client sees its connection drop). */
  cut(): void {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
  }

  async stop(): Promise<void> {
    this.cut();
    const server = this.server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private forward(client: Socket): void {
    const upstream = connect(this.targetPort, '127.0.0.1');
    const pair = { client, upstream, dropping: false };
    this.pairs.add(pair);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('error', close);
    client.on('close', close);
    // While answers are dropped, the server closing its side does not reach the client either.
    const upstreamClosed = (): void => {
      if (!pair.dropping) close();
    };
    upstream.on('error', upstreamClosed);
    upstream.on('close', upstreamClosed);
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.dropping) client.write(chunk);
    });
  }
}
