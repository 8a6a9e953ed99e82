/**
 * `npx tsx bench/grpc-put-check.ts`: grpc-put-load end to end. Starts cfgd (from the sources, auth
 * off, one worker), sends it Puts with a new value each (20,000 over 128 configs, 4 connections ×
 * 32 streams), prints the figures and checks that the versions created add up to the successful
 * Puts; then, when etcd is installed, the same load of etcd Puts, checked against etcd's revision.
 * Beside the figures: the CPU time of the load generator itself, as a share of the elapsed time
 * (near 1 would mean it, not the server, is the bottleneck).
 */
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PutRequest } from '../generated/cfgd/v1/config_service.js';
import { frame } from './adapters.js';
import { ensureGrpcPutLoad, grpcPutLoad, KEY_PLACEHOLDER, SEQ_PLACEHOLDER, type GrpcPutOptions } from './grpc-put.js';
import { ROOT, startEtcd } from './procs.js';
import type { Figures } from './workloads.js';

const LOAD = { requests: 20_000, clients: 4, streams: 32, keys: 128 };
const KEY = `load-${KEY_PLACEHOLDER}`;
const keyName = (i: number) => `load-${String(i).padStart(4, '0')}`;

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK']).stdout.toString().trim() || 100);

/** CPU seconds of this process's children that have been waited for (grpc-put-load, once it exits). */
function childrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS; // cutime, cstime
}

/** grpcPutLoad, plus the generator's own CPU seconds and their share of the elapsed time. */
function measured(pid: number, options: GrpcPutOptions): Figures {
  const cpu0 = childrenCpuSeconds();
  const start = performance.now();
  const figures = grpcPutLoad(pid, options);
  const seconds = (performance.now() - start) / 1000;
  const cpu = childrenCpuSeconds() - cpu0;
  return {
    ...figures,
    client_cpu_s: cpu,
    client_cpu_share: cpu / seconds,
    client_cpu_us_per_op: (cpu / options.requests) * 1e6,
  };
}

const show = (name: string, figures: Figures) =>
  console.log(
    `${name}: ${Object.entries(figures)
      .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(3)}`)
      .join(' ')}`,
  );

async function startCfgd(
  store: string,
): Promise<{ pid: number; grpc: number; http: number; stop: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/main.ts',
      '--grpc-addr',
      '127.0.0.1:0',
      '--http-addr',
      '127.0.0.1:0',
      '--store',
      store,
      '--auth',
      'off',
      '--workers',
      '1',
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout });
  const [grpc, http] = await new Promise<[number, number]>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`cfgd exited with ${code}`)));
    lines.on('line', (line) => {
      if (!line.includes('"cfgd listening"')) return;
      const entry = JSON.parse(line) as { grpc: string; http: string };
      resolve([Number(entry.grpc.split(':').at(-1)), Number(entry.http.split(':').at(-1))]);
    });
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  return { pid: child.pid!, grpc, http, stop };
}

async function checkCfgd(): Promise<boolean> {
  const store = mkdtempSync(join(tmpdir(), 'grpc-put-check-'));
  const cfgd = await startCfgd(store);
  try {
    const body = frame(
      PutRequest.encode({
        userId: 'bench',
        configName: KEY,
        values: { n: SEQ_PLACEHOLDER },
        expectedVersion: undefined,
        validateOnly: false,
      }).finish(),
    );
    const figures = measured(cfgd.pid, { port: cfgd.grpc, path: '/cfgd.v1.ConfigService/Put', body, ...LOAD });
    show('cfgd --workers 1', figures);
    // Every Put carried new values, so each successful one made a version: the latest versions of
    // the configs add up to the number of successful Puts.
    let versions = 0;
    for (let i = 0; i < LOAD.keys; i++) {
      const response = await fetch(`http://127.0.0.1:${cfgd.http}/v1/users/bench/configs/${keyName(i)}`);
      if (!response.ok) throw new Error(`GET ${keyName(i)}: HTTP ${response.status}`);
      const { config } = (await response.json()) as { config: { version: string | number } };
      versions += Number(config.version);
    }
    const succeeded = LOAD.requests - figures.failed!;
    const ok = versions === succeeded;
    console.log(
      `cfgd: ${versions} versions over ${LOAD.keys} configs, ${succeeded} successful Puts: ${ok ? 'OK' : 'MISMATCH'}`,
    );
    return ok;
  } finally {
    await cfgd.stop();
    rmSync(store, { recursive: true, force: true });
  }
}

async function checkEtcd(): Promise<boolean> {
  const etcd = await startEtcd();
  if (etcd === undefined) return true;
  try {
    // etcdserverpb.PutRequest: key = 1, value = 2 (as bench/adapters.ts encodes it).
    const message = new BinaryWriter()
      .uint32(10)
      .bytes(Buffer.from(KEY))
      .uint32(18)
      .bytes(Buffer.from(`v-${SEQ_PLACEHOLDER}`))
      .finish();
    const figures = measured(etcd.child.pid!, {
      port: etcd.port,
      path: '/etcdserverpb.KV/Put',
      body: frame(message),
      ...LOAD,
    });
    show('etcd', figures);
    // etcd's revision starts at 1 and every Put adds one; the keys are the 128 configs.
    const response = await fetch(`http://127.0.0.1:${etcd.port}/v3/kv/range`, {
      method: 'POST',
      body: JSON.stringify({
        key: Buffer.from('load-').toString('base64'),
        range_end: Buffer.from('load.').toString('base64'),
        count_only: true,
      }),
    });
    const range = (await response.json()) as { header: { revision: string }; count?: string };
    const succeeded = LOAD.requests - figures.failed!;
    const ok = Number(range.header.revision) - 1 === succeeded && Number(range.count) === LOAD.keys;
    console.log(
      `etcd: revision ${range.header.revision}, ${range.count} keys, ${succeeded} successful Puts: ${ok ? 'OK' : 'MISMATCH'}`,
    );
    return ok;
  } finally {
    await etcd.stop();
  }
}

console.log(`grpc-put-load: ${ensureGrpcPutLoad()}`);
console.log(
  `load: ${LOAD.requests} Puts, ${LOAD.clients} connections × ${LOAD.streams} streams, ${LOAD.keys} keys, a new value each`,
);
const cfgdOk = await checkCfgd();
const etcdOk = existsSync('/usr/bin/etcd') ? await checkEtcd() : true;
if (!existsSync('/usr/bin/etcd')) console.log('etcd: /usr/bin/etcd is not installed; skipped');
process.exitCode = cfgdOk && etcdOk ? 0 : 1;
