/** The workloads, the same for every target; each returns named figures. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Adapter } from './adapters.js';
import { cpuSeconds, rssBytes } from './procs.js';

export type Figures = Record<string, number>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** One client, one call at a time: ops/s, p50 and p99 latency (ms), server CPU µs per op. */
export async function sequential(pid: number, n: number, op: (i: number) => Promise<void>): Promise<Figures> {
  for (let i = 0; i < Math.min(50, n); i++) await op(-1 - i); // warm-up
  const latencies: number[] = [];
  const cpu0 = cpuSeconds(pid);
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await op(i);
    latencies.push(performance.now() - t);
  }
  const seconds = (performance.now() - start) / 1000;
  return {
    ops_per_s: n / seconds,
    p50_ms: percentile(latencies, 50),
    p99_ms: percentile(latencies, 99),
    cpu_us_per_op: ((cpuSeconds(pid) - cpu0) / n) * 1e6,
    rss_mib: rssBytes(pid) / 2 ** 20,
  };
}

export interface H2Options {
  readonly port: number;
  readonly requests: number;
  readonly clients: number;
  readonly streams: number;
  /** Either one gRPC path and body, or HTTP/1.1 URIs (one request each) with a JSON body. */
  readonly grpc?: { path: string; body: Buffer };
  readonly http1?: { uris: string[]; body: string };
  /** Extra request headers, `name: value` (e.g. `authorization: Bearer …` for cfgd with auth on). */
  readonly headers?: readonly string[];
}

/** Server capacity with h2load (C), `clients × streams` requests in flight. */
export function h2load(pid: number, options: H2Options): Figures {
  const dir = mkdtempSync(join(tmpdir(), 'h2load-'));
  try {
    const bodyFile = join(dir, 'body');
    const logFile = join(dir, 'log');
    const headers = (options.headers ?? []).flatMap((header) => ['-H', header]);
    const args = [
      '-n',
      String(options.requests),
      '-c',
      String(options.clients),
      '-m',
      String(options.streams),
      '--log-file',
      logFile,
      ...headers,
    ];
    if (options.grpc !== undefined) {
      writeFileSync(bodyFile, options.grpc.body);
      const grpcHeaders = ['-H', 'content-type: application/grpc', '-H', 'te: trailers'];
      const url = `http://127.0.0.1:${options.port}${options.grpc.path}`;
      checkGrpcOk(url, bodyFile, [...grpcHeaders, ...headers]);
      args.push('-d', bodyFile, ...grpcHeaders, url);
    } else if (options.http1 !== undefined) {
      writeFileSync(bodyFile, options.http1.body);
      const uriFile = join(dir, 'uris');
      writeFileSync(uriFile, options.http1.uris.map((u) => `http://127.0.0.1:${options.port}${u}`).join('\n'));
      args.push('--h1', '-d', bodyFile, '-H', 'content-type: application/json', '-i', uriFile);
    }
    const cpu0 = cpuSeconds(pid);
    const result = spawnSync('h2load', args, { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
    const cpu = cpuSeconds(pid) - cpu0;
    const out = result.stdout;
    const rate = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
    const done = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(out);
    if (rate === null || done === null) throw new Error(`h2load failed: ${out}\n${result.stderr}`);
    const latencies = readFileSync(logFile, 'utf8')
      .trim()
      .split('\n')
      .map((line) => Number(line.split('\t')[2]) / 1000);
    const succeeded = Number(done[1]);
    return {
      ops_per_s: Number(rate[1]),
      p50_ms: percentile(latencies, 50),
      p99_ms: percentile(latencies, 99),
      failed: Number(done[2]),
      cpu_us_per_op: (cpu / Math.max(1, succeeded)) * 1e6,
      rss_mib: rssBytes(pid) / 2 ** 20,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Sends the request h2load is about to replay once, with nghttp (from the same Debian package), and
 * throws unless it ends with grpc-status 0: a gRPC error (UNAUTHENTICATED, say) is an HTTP 200 that
 * h2load would count as a success.
 */
function checkGrpcOk(url: string, bodyFile: string, headers: string[]): void {
  const result = spawnSync('nghttp', ['-v', '-d', bodyFile, ...headers, url], { encoding: 'utf8' });
  const trailers = result.stdout.split('\n').filter((line) => / grpc-(status|message): /.test(line));
  if (!trailers.some((line) => line.endsWith(' grpc-status: 0')))
    throw new Error(`the request h2load would replay fails: ${trailers.join(' ') || result.stderr || 'no answer'}`);
}

/**
 * `watchers` watchers of one config over `channels` connections; `writes` writes at
 * `rate` per second. Per write: time from the writer's acknowledgement to the first
 * and to the last watcher's delivery; server memory per watcher.
 */
export async function fanout(
  adapter: Adapter,
  pid: number,
  options: { watchers: number; channels: number; writes: number; rate: number },
): Promise<Figures> {
  const key = `fanout-${options.watchers}-${Date.now()}`;
  await adapter.put(key, { tag: 0 });
  const records = new Map<number, { sent?: number; ack?: number; first: number; last?: number; n: number }>();
  const rss0 = rssBytes(pid);
  const close = await adapter.watch(key, options.watchers, options.channels, (tag) => {
    if (tag <= 0) return;
    const now = performance.now();
    let record = records.get(tag);
    if (record === undefined) records.set(tag, (record = { first: now, n: 0 }));
    if (++record.n === options.watchers) record.last = now;
  });
  await sleep(1000);
  const perWatcher = (rssBytes(pid) - rss0) / options.watchers;
  const interval = 1000 / options.rate;
  const start = performance.now();
  for (let tag = 1; tag <= options.writes; tag++) {
    const sent = performance.now();
    await adapter.put(key, { tag });
    const ack = performance.now();
    let record = records.get(tag);
    if (record === undefined) records.set(tag, (record = { first: Number.NaN, n: 0 }));
    record.sent = sent;
    record.ack = ack;
    const next = start + tag * interval;
    if (next > performance.now()) await sleep(next - performance.now());
  }
  const deadline = performance.now() + 20_000;
  while ([...records.values()].some((r) => r.last === undefined) && performance.now() < deadline) await sleep(50);
  close();
  const complete = [...records.values()].filter((r) => r.ack !== undefined && r.last !== undefined);
  // Deliveries often reach this (single-threaded) client before the writer's acknowledgement is
  // processed, so times from the acknowledgement are clamped at 0; times from sending the write
  // are reported beside them.
  const first = complete.map((r) => Math.max(0, r.first - r.ack!));
  const last = complete.map((r) => Math.max(0, r.last! - r.ack!));
  const lastFromSend = complete.map((r) => r.last! - r.sent!);
  return {
    first_p50_ms: percentile(first, 50),
    first_p99_ms: percentile(first, 99),
    last_p50_ms: percentile(last, 50),
    last_p99_ms: percentile(last, 99),
    last_from_send_p50_ms: percentile(lastFromSend, 50),
    last_from_send_p99_ms: percentile(lastFromSend, 99),
    complete_writes: complete.length,
    kib_per_watcher: perWatcher / 1024,
  };
}

/**
 * The cost of a schema on Put: one client, sequential Puts of the same shapes of values (`values(i)`,
 * a new value each call) to a config with `schema`, set through the API first, and to one without.
 * The two alternate in blocks of `block` Puts, ABBA (with, without, without, with, …), so that drift
 * of a shared host weighs on both sides alike; each side gets `n` Puts after `warmup` unmeasured
 * ones (a fresh cfgd takes hundreds of Puts to settle, and the side measured first would pay for it).
 * Figures of each side (`schema_…`, `plain_…`: ops/s, p50, p99, server CPU µs per Put) and their
 * ratios with ÷ without (`ratio_…`). Before timing, a Put that breaks the schema must be refused,
 * so the figures cannot come from a config the schema does not guard.
 */
export async function schemaPut(
  adapter: Adapter,
  pid: number,
  options: {
    n: number;
    warmup: number;
    block: number;
    schema: Record<string, unknown>;
    values: (i: number) => Record<string, unknown>;
    /** Values of the same shape that the schema refuses. */
    invalid: Record<string, unknown>;
  },
): Promise<Figures> {
  if (adapter.setSchema === undefined) throw new Error(`${adapter.name} has no schemas`);
  const stamp = Date.now();
  const sides = ['schema', 'plain'].map((name) => ({
    name,
    key: `put-${name}-${stamp}`,
    latencies: [] as number[],
    seconds: 0,
    cpu: 0,
  }));
  const [withSchema, without] = sides as [(typeof sides)[0], (typeof sides)[0]];
  await adapter.setSchema(withSchema.key, options.schema);
  const refused = await adapter.put(withSchema.key, options.invalid).then(
    () => false,
    (error: { code?: number }) => error.code === 3, // INVALID_ARGUMENT (SCHEMA_VIOLATION)
  );
  if (!refused) throw new Error(`${adapter.name} stored values its schema forbids: the schema is not checked`);
  let next = 0; // every Put a new value, on both sides, so every Put creates a version
  for (let i = 0; i < options.warmup; i++)
    for (const side of sides) await adapter.put(side.key, options.values(next++));
  for (let done = 0, b = 0; done < options.n; done += options.block, b++) {
    const count = Math.min(options.block, options.n - done);
    for (const side of b % 2 === 0 ? [withSchema, without] : [without, withSchema]) {
      const cpu0 = cpuSeconds(pid);
      const start = performance.now();
      for (let i = 0; i < count; i++) {
        const values = options.values(next++);
        const t = performance.now();
        await adapter.put(side.key, values);
        side.latencies.push(performance.now() - t);
      }
      side.seconds += (performance.now() - start) / 1000;
      side.cpu += cpuSeconds(pid) - cpu0;
    }
  }
  const figures = (side: (typeof sides)[0]) => ({
    ops_per_s: side.latencies.length / side.seconds,
    p50_ms: percentile(side.latencies, 50),
    p99_ms: percentile(side.latencies, 99),
    cpu_us_per_op: (side.cpu / side.latencies.length) * 1e6,
  });
  const [on, off] = [figures(withSchema), figures(without)];
  const out: Figures = {};
  for (const metric of Object.keys(on) as (keyof typeof on)[]) {
    out[`schema_${metric}`] = on[metric];
    out[`plain_${metric}`] = off[metric];
    out[`ratio_${metric}`] = on[metric] / off[metric];
  }
  return out;
}

/** Put latency with a short history and after `deep` versions of the same key. */
export async function historyGrowth(adapter: Adapter, pid: number, deep: number, samples: number): Promise<Figures> {
  const key = `growth-${Date.now()}`;
  for (let i = 0; i < 10; i++) await adapter.put(key, { i });
  const shallow = await sequential(pid, samples, (i) => adapter.put(key, { s: i }));
  for (let i = 10 + samples + 50; i < deep; i++) await adapter.put(key, { i });
  const deepRun = await sequential(pid, samples, (i) => adapter.put(key, { d: i }));
  return { p50_ms_v10: shallow.p50_ms!, p50_ms_deep: deepRun.p50_ms!, ratio: deepRun.p50_ms! / shallow.p50_ms! };
}

/**
 * Legacy `POST /values` the way curl sends it: a new connection per request; with a token (cfgd
 * with auth on), as `curl -u :TOKEN` sends it, `Basic` with the token as the password.
 */
export async function legacyCurl(pid: number, port: number, n: number, token?: string): Promise<Figures> {
  const authorization =
    token === undefined ? {} : { authorization: `Basic ${Buffer.from(`:${token}`).toString('base64')}` };
  const config = `curl-${Date.now()}`;
  return sequential(
    pid,
    n,
    (i) =>
      new Promise<void>((resolve, reject) => {
        const body = JSON.stringify({ n: i });
        const req = request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: `/values/bench/${config}`,
            agent: false,
            headers: {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
              'user-agent': 'curl/7.88.1',
              accept: '*/*',
              ...authorization,
            },
          },
          (res) => {
            res.resume();
            res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
          },
        );
        req.on('error', reject);
        req.end(body);
      }),
  );
}
