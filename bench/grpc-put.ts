/**
 * Server capacity for Put with a different body per request: bench/grpc-put-load.c, a gRPC load
 * generator on libnghttp2 as cheap per request as h2load. h2load replays one body, and a Put that
 * repeats the same values creates no new version in cfgd; this one rewrites placeholders in a body
 * template per request (see the C file's header), so every Put writes.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuSeconds, ROOT, rssBytes } from './procs.js';
import type { Figures } from './workloads.js';

const SOURCE = join(ROOT, 'bench', 'grpc-put-load.c');
const BUILD_DIR = join(ROOT, 'bench', '.build');
const BINARY = join(BUILD_DIR, 'grpc-put-load');
const HEADER = '/usr/include/nghttp2/nghttp2.h';

/** In a body template: the request's sequence number (12 digits) and the key number (4 digits). */
export const SEQ_PLACEHOLDER = '@@@@@@@@@@@@';
export const KEY_PLACEHOLDER = '%%%%';

/** libnghttp2's headers, installed with apt-get (as root) when missing; throws when they cannot be. */
function ensureNghttp2Headers(): void {
  if (existsSync(HEADER)) return;
  if (process.getuid?.() === 0) {
    console.error('bench: installing libnghttp2-dev with apt-get');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () => spawnSync('apt-get', ['install', '-y', '-qq', 'libnghttp2-dev'], { stdio: 'ignore', env });
    if (install().status !== 0) {
      spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
      install();
    }
  }
  if (!existsSync(HEADER))
    throw new Error(
      `grpc-put-load needs libnghttp2's headers (${HEADER}): install the Debian package libnghttp2-dev ` +
        '(apt-get install libnghttp2-dev, as root)',
    );
}

/** The path of the grpc-put-load binary, built under bench/.build/ when missing or older than its source. */
export function ensureGrpcPutLoad(): string {
  if (existsSync(BINARY) && statSync(BINARY).mtimeMs >= statSync(SOURCE).mtimeMs) return BINARY;
  ensureNghttp2Headers();
  mkdirSync(BUILD_DIR, { recursive: true });
  const ignore = join(BUILD_DIR, '.gitignore');
  if (!existsSync(ignore)) writeFileSync(ignore, '*\n');
  // Built beside the binary and renamed over it, so that a failed build leaves no half-written binary.
  const building = `${BINARY}.${process.pid}`;
  const result = spawnSync('cc', ['-O2', '-Wall', '-Wextra', '-o', building, SOURCE, '-lnghttp2'], {
    encoding: 'utf8',
  });
  if (result.error !== undefined || result.status !== 0) {
    rmSync(building, { force: true });
    throw new Error(`building grpc-put-load failed: ${result.error?.message ?? result.stderr}`);
  }
  renameSync(building, BINARY);
  return BINARY;
}

export interface GrpcPutOptions {
  readonly port: number;
  /** The gRPC method's path, e.g. `/cfgd.v1.ConfigService/Put`. */
  readonly path: string;
  /** One gRPC-framed message with `SEQ_PLACEHOLDER` and/or `KEY_PLACEHOLDER` in it. */
  readonly body: Buffer;
  readonly requests: number;
  readonly clients: number;
  readonly streams: number;
  /** The number of distinct keys (`KEY_PLACEHOLDER` becomes the sequence number mod `keys`). */
  readonly keys: number;
  /** Extra request headers, `name: value` (e.g. `authorization: Bearer …` for cfgd with auth on). */
  readonly headers?: readonly string[];
}

const sum = (pids: readonly number[], of: (pid: number) => number): number =>
  pids.reduce((total, pid) => total + of(pid), 0);

/**
 * Server capacity with grpc-put-load, `clients × streams` requests in flight, a new body per
 * request: the figures h2load() returns (ops/s, p50 and p99 latency in ms, failed requests, server
 * CPU µs per successful request, server memory), with the CPU and memory of all `pid`s summed.
 */
export function grpcPutLoad(pid: number | number[], options: GrpcPutOptions): Figures {
  const pids = Array.isArray(pid) ? pid : [pid];
  const binary = ensureGrpcPutLoad();
  const dir = mkdtempSync(join(tmpdir(), 'grpc-put-load-'));
  try {
    const bodyFile = join(dir, 'body');
    writeFileSync(bodyFile, options.body);
    const args = [
      '-p',
      String(options.port),
      '-P',
      options.path,
      '-b',
      bodyFile,
      '-n',
      String(options.requests),
      '-c',
      String(options.clients),
      '-m',
      String(options.streams),
      '-k',
      String(options.keys),
      ...(options.headers ?? []).flatMap((header) => ['-H', header]),
    ];
    const cpu0 = sum(pids, cpuSeconds);
    // stderr goes through: it names the reasons of failed requests.
    const result = spawnSync(binary, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const cpu = sum(pids, cpuSeconds) - cpu0;
    const line =
      /done=(\d+) succeeded=(\d+) failed=(\d+) seconds=([\d.]+) ops_per_s=([\d.]+) p50_us=(\d+) p99_us=(\d+)/.exec(
        result.stdout ?? '',
      );
    if (line === null)
      throw new Error(
        `grpc-put-load failed (${result.error?.message ?? `exit ${result.status ?? result.signal}`}): ${result.stdout}`,
      );
    const succeeded = Number(line[2]);
    return {
      ops_per_s: Number(line[5]),
      p50_ms: Number(line[6]) / 1000,
      p99_ms: Number(line[7]) / 1000,
      // Requests a closed connection never completed count as failed too.
      failed: options.requests - succeeded,
      cpu_us_per_op: (cpu / Math.max(1, succeeded)) * 1e6,
      rss_mib: sum(pids, rssBytes) / 2 ** 20,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
