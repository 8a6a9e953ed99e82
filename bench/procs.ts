/** Starting and measuring the processes under test: cfgd, etcd, reqlite and the echo server. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { accepts, freePort } from '../test/helpers/net.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK']).stdout.toString().trim() || 100);
const PAGE_SIZE = Number(spawnSync('getconf', ['PAGESIZE']).stdout.toString().trim() || 4096);

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/** The fields of /proc/PID/stat after the command name (field 3 on), or undefined once it is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** A process and all its living descendants (cfgd's workers under `--workers N`). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = Number(statFields(Number(entry))?.[1]);
    if (!Number.isFinite(parent)) continue;
    children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

/** CPU seconds (user + system) a process and its descendants have used so far. */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const member of processTree(pid)) {
    const fields = statFields(member);
    if (fields !== undefined) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS;
}

/** Resident memory of a process and its descendants, in bytes. */
export function rssBytes(pid: number): number {
  let pages = 0;
  for (const member of processTree(pid)) {
    try {
      pages += Number(readFileSync(`/proc/${member}/statm`, 'utf8').split(' ')[1]);
    } catch {
      // Gone meanwhile.
    }
  }
  return pages * PAGE_SIZE;
}

export { freePort };

export async function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  if (!(await accepts(port, timeoutMs))) throw new Error(`nothing listens on port ${port}`);
}

function stopper(child: ChildProcess, cleanup: () => void = () => {}): () => Promise<void> {
  return async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    cleanup();
  };
}

export interface CfgdProc extends Proc {
  readonly grpcPort: number;
  readonly httpPort: number;
}

/**
 * The admin token every benchmarked cfgd with auth on is started with (`--admin-token`), and that
 * every bench client sends. A fixed, public string: the bench listens on loopback only.
 */
export const BENCH_ADMIN_TOKEN = 'cfgd-bench-admin-token-not-a-secret-0123456789';

/**
 * cfgd from the compiled build (`npm run build` first), on a fresh embedded store or a RethinkDB URL;
 * with auth on (cfgd's default) and `BENCH_ADMIN_TOKEN` as its admin token, unless `auth` is 'off'.
 */
export async function startCfgd(
  name: string,
  store: { sync: 'full' | 'normal' } | { url: string },
  auth: 'on' | 'off' = 'on',
  extraArgs: readonly string[] = [],
): Promise<CfgdProc> {
  const dir = mkdtempSync(join(tmpdir(), 'cfgd-bench-'));
  const storeArgs = 'url' in store ? ['--store', store.url] : ['--store', dir, '--sync', store.sync];
  const authArgs = auth === 'on' ? ['--admin-token', BENCH_ADMIN_TOKEN] : ['--auth', 'off'];
  const child = spawn(
    process.execPath,
    [
      'dist/src/main.js',
      '--grpc-addr',
      '127.0.0.1:0',
      '--http-addr',
      '127.0.0.1:0',
      '--log-level',
      'info',
      ...storeArgs,
      ...authArgs,
      ...extraArgs,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout });
  const ports = await new Promise<[number, number]>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`cfgd exited with ${code}`)));
    lines.on('line', (line) => {
      if (!line.includes('cfgd listening')) return;
      const entry = JSON.parse(line) as { grpc: string; http: string; auth?: string };
      if (entry.auth !== auth) {
        child.kill('SIGKILL');
        reject(new Error(`cfgd reports auth ${entry.auth}, the bench asked for ${auth}`));
      }
      resolve([Number(entry.grpc.split(':').at(-1)), Number(entry.http.split(':').at(-1))]);
    });
  });
  lines.on('line', () => {});
  return {
    name,
    child,
    grpcPort: ports[0],
    httpPort: ports[1],
    stop: stopper(child, () => rmSync(dir, { recursive: true, force: true })),
  };
}

export interface PortProc extends Proc {
  readonly port: number;
}

/** etcd from Debian's etcd-server, fsyncing as it does by default; undefined when it is not installed. */
export async function startEtcd(): Promise<PortProc | undefined> {
  if (spawnSync('which', ['etcd']).status !== 0) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'etcd-bench-'));
  const [port, peer] = [await freePort(), await freePort()];
  const child = spawn(
    'etcd',
    [
      '--data-dir',
      dir,
      '--listen-client-urls',
      `http://127.0.0.1:${port}`,
      '--advertise-client-urls',
      `http://127.0.0.1:${port}`,
      '--listen-peer-urls',
      `http://127.0.0.1:${peer}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${peer}`,
      '--initial-cluster',
      `default=http://127.0.0.1:${peer}`,
      '--log-level',
      'error',
    ],
    { stdio: 'ignore' },
  );
  await waitForPort(port);
  return { name: 'etcd', child, port, stop: stopper(child, () => rmSync(dir, { recursive: true, force: true })) };
}

export async function startReqlite(): Promise<PortProc> {
  const bin = createRequire(import.meta.url).resolve('reqlite/bin/reqlite');
  const port = await freePort();
  const child = spawn(process.execPath, [bin, '--port-offset', String(port - 28015)], { stdio: 'ignore' });
  await waitForPort(port);
  return { name: 'reqlite', child, port, stop: stopper(child) };
}

export async function startEcho(): Promise<PortProc> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/echo-server.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve) => {
    createInterface({ input: child.stdout }).once('line', (line) => resolve(Number(line.trim())));
  });
  return { name: 'echo', child, port, stop: stopper(child) };
}

/** Whether apt-get can install a missing Debian package here (as root). */
export function ensureDebianPackage(binary: string, pkg: string): boolean {
  if (spawnSync('which', [binary]).status === 0) return true;
  if (process.getuid?.() !== 0) return false;
  console.error(`bench: installing ${pkg} with apt-get`);
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore' });
  spawnSync('apt-get', ['install', '-y', '-qq', pkg], {
    stdio: 'ignore',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return spawnSync('which', [binary]).status === 0;
}
