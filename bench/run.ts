/**
 * `npm run bench [-- --quick]`: cfgd side by side with etcd and with a bare
 * grpc-js echo server, same load generators, same run. Prints figures and
 * ratios and writes bench/results/latest.{json,md,svg} (quick.* with --quick).
 * Figures are medians of the repetitions (min–max beside them); ratios are
 * computed pair by pair within each repetition, then their median is taken.
 * Odd repetitions run the targets in list order, even ones in reverse, so that
 * drift of the shared host does not favour whichever target runs first.
 *
 * cfgd runs with authentication on (its default) and a fixed bench admin token
 * (`--admin-token`, procs.ts) that every client sends; `cfgd_noauth` is the
 * same cfgd with `--auth off`, for the cost of auth on Get (target: within 5 %).
 *
 * `put_schema` (cfgd only) is the cost of schema checks: sequential Puts to a config with a realistic
 * schema (bench/service-schema.ts) and to one without, in alternating blocks within the same process;
 * its ratios are with ÷ without, pair by pair within each repetition (target: Put ≤ 10 % slower).
 *
 * Options for a focused run (its results go to bench/results/focused.{json,md}):
 *   --only cfgd,cfgd_noauth   only these targets (names as in the tables)
 *   --workloads h2_get        only these workloads (of those each target runs)
 *   --reps 6                  this many repetitions (default: 3; 1 with --quick)
 * e.g. `npm run bench -- --only cfgd,cfgd_noauth --workloads h2_get --reps 6`, or
 * `npm run bench -- --only cfgd --workloads put_schema --reps 6` for the schema checks alone.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cfgdAdapter, echoAdapter, etcdAdapter, type Adapter } from './adapters.js';
import { renderChart } from './chart.js';
import {
  BENCH_ADMIN_TOKEN,
  ensureDebianPackage,
  ROOT,
  startCfgd,
  startEcho,
  startEtcd,
  startReqlite,
  type Proc,
} from './procs.js';
import { SCHEMA_RULES, SERVICE_SCHEMA, serviceValues } from './service-schema.js';
import { grpcPutLoad } from './grpc-put.js';
import { fanout, h2load, historyGrowth, legacyCurl, schemaPut, sequential, type Figures } from './workloads.js';
import { metricsRecordingNsPerGet } from './metrics-cost.js';

const quick = process.argv.includes('--quick');

/** The value of `--name value` or `--name=value`, if given. */
function option(name: string): string | undefined {
  const args = process.argv.slice(2);
  const index = args.indexOf(`--${name}`);
  if (index >= 0) return args[index + 1];
  return args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}
const list = (value: string | undefined): string[] | undefined => value?.split(',').filter((v) => v !== '');
const only = list(option('only'));
const onlyWorkloads = list(option('workloads'));
const repsOption = option('reps');
const focused = only !== undefined || onlyWorkloads !== undefined || repsOption !== undefined;
const SIZE = quick
  ? {
      reps: 1,
      seq: 200,
      schemaWarmup: 200,
      schemaBlock: 50,
      h2: 2000,
      fanout: [100],
      writes: 10,
      deep: 500,
      legacy: 50,
      big: 20,
      bigBytes: 64 * 1024,
    }
  : {
      reps: 3,
      seq: 2000,
      schemaWarmup: 500,
      schemaBlock: 100,
      h2: 20000,
      fanout: [100, 1000, 10000],
      writes: 40,
      deep: 10000,
      legacy: 300,
      big: 200,
      bigBytes: 64 * 1024,
    };
if (repsOption !== undefined) {
  SIZE.reps = Number(repsOption);
  if (!Number.isInteger(SIZE.reps) || SIZE.reps < 1)
    throw new Error(`--reps needs a positive integer, got ${repsOption}`);
}

type Run = Record<string, Record<string, Figures>>; // target → workload → figures

interface Target {
  readonly name: string;
  readonly label: string;
  /** `token`: the admin token cfgd was started with (auth on), which every client sends. */
  start(): Promise<{
    proc: Proc;
    pid: number;
    adapter: Adapter;
    httpPort?: number;
    token?: string | undefined;
    extra?: Proc;
  }>;
  readonly workloads: readonly string[];
}

const ALL = [
  'seq_put',
  'seq_get',
  'h2_get',
  'grpc_put',
  'put_64k',
  'put_schema',
  'growth',
  'legacy_post',
  ...SIZE.fanout.map((n) => `fanout_${n}`),
];

function targets(haveEtcd: boolean): Target[] {
  const cfgd = (
    name: string,
    label: string,
    sync: 'full' | 'normal',
    workloads: string[],
    auth: 'on' | 'off' = 'on',
    extraArgs: readonly string[] = [],
  ): Target => ({
    name,
    label,
    workloads,
    async start() {
      const proc = await startCfgd(name, { sync }, auth, extraArgs);
      const token = auth === 'on' ? BENCH_ADMIN_TOKEN : undefined;
      const adapter = cfgdAdapter(name, proc.grpcPort, token === undefined ? undefined : `Bearer ${token}`);
      return { proc, pid: proc.child.pid!, adapter, httpPort: proc.httpPort, token };
    },
  });
  const list: Target[] = [
    cfgd(
      'cfgd',
      `cfgd, embedded, fsync per commit, auth on, ${availableParallelism()} workers (the defaults; headline)`,
      'full',
      ALL,
    ),
    cfgd(
      'cfgd_w1',
      'cfgd as above with --workers 1: one process',
      'full',
      ['seq_put', 'seq_get', 'h2_get', 'grpc_put', 'put_64k', ...SIZE.fanout.map((n) => `fanout_${n}`)],
      'on',
      ['--workers', '1'],
    ),
    cfgd('cfgd_noauth', 'cfgd, embedded, --auth off', 'full', ['seq_get', 'h2_get'], 'off'),
    cfgd(
      'cfgd_w1_nometrics',
      'cfgd_w1 with --metrics off (no call, store operation or commit measured)',
      'full',
      ['h2_get'],
      'on',
      ['--workers', '1', '--metrics', 'off'],
    ),
    cfgd(
      'cfgd_retention',
      'cfgd, embedded, --max-versions 100 (old versions pruned as it writes)',
      'full',
      ['growth'],
      'on',
      ['--max-versions', '100'],
    ),
    cfgd('cfgd_relaxed', 'cfgd, embedded, --sync normal (survives a crash, not power loss)', 'normal', [
      'seq_put',
      'grpc_put',
      'growth',
    ]),
    {
      name: 'cfgd_reqlite',
      label: 'cfgd on reqlite (a JavaScript RethinkDB re-implementation: not a performance reference)',
      workloads: ['seq_put', 'seq_get', 'h2_get', 'fanout_100'],
      async start() {
        const extra = await startReqlite();
        const proc = await startCfgd('cfgd_reqlite', { url: `rethinkdb://127.0.0.1:${extra.port}/bench` });
        const adapter = cfgdAdapter('cfgd_reqlite', proc.grpcPort, `Bearer ${BENCH_ADMIN_TOKEN}`);
        return { proc, pid: proc.child.pid!, adapter, token: BENCH_ADMIN_TOKEN, extra };
      },
    },
    {
      name: 'echo',
      label: 'grpc-js echo server (the ceiling of one grpc-js process)',
      workloads: ['seq_put', 'seq_get', 'h2_get'],
      async start() {
        const proc = await startEcho();
        return { proc, pid: proc.child.pid!, adapter: echoAdapter(proc.port) };
      },
    },
  ];
  if (haveEtcd) {
    list.splice(2, 0, {
      name: 'etcd',
      label: `etcd ${spawnSync('etcd', ['--version']).stdout.toString().split('\n')[0]?.replace('etcd Version: ', '')} (fsync per commit, its default)`,
      workloads: ALL.filter((w) => w !== 'legacy_post' && w !== 'put_schema'),
      async start() {
        const proc = (await startEtcd())!;
        return { proc, pid: proc.child.pid!, adapter: etcdAdapter(proc.port) };
      },
    });
  }
  return list;
}

async function measure(target: Target, run: Run): Promise<void> {
  const { proc, pid, adapter, httpPort, token, extra } = await target.start();
  const figures: Record<string, Figures> = (run[target.name] = {});
  const has = (w: string) => target.workloads.includes(w) && (onlyWorkloads?.includes(w) ?? true);
  const headers = adapter.authorization === undefined ? [] : [`authorization: ${adapter.authorization}`];
  const filler = 'x'.repeat(64);
  try {
    await adapter.put('read-me', { value: filler });
    if (has('seq_put')) figures.seq_put = await sequential(pid, SIZE.seq, (i) => adapter.put('seq', { i, filler }));
    if (has('seq_get')) figures.seq_get = await sequential(pid, SIZE.seq, () => adapter.get('read-me'));
    if (has('h2_get')) {
      const get = { port: portOf(proc), clients: 4, streams: 32, grpc: adapter.h2Get('read-me'), headers };
      // A warm-up run first, not measured: the first burst of a fresh process pays for its JIT
      // compilation, which says nothing about its capacity and made the pairs swing by ±20 %.
      h2load(pid, { ...get, requests: Math.ceil(SIZE.h2 / 4) });
      figures.h2_get = h2load(pid, { ...get, requests: SIZE.h2 });
    }
    if (has('grpc_put') && adapter.grpcPut !== undefined) {
      // A new value per request (h2load would replay one body, and cfgd rightly makes no version of
      // unchanged values), over as many keys as requests in flight, durable before acknowledged.
      const put = { port: portOf(proc), clients: 4, streams: 32, keys: 128, headers };
      grpcPutLoad(pid, { ...put, ...adapter.grpcPut('warm-'), requests: Math.ceil(SIZE.h2 / 4) });
      figures.grpc_put = grpcPutLoad(pid, { ...put, ...adapter.grpcPut('load-'), requests: SIZE.h2 });
    }
    if (has('put_64k')) {
      const big = (i: number) => ({ blob: `${i}-`.padEnd(SIZE.bigBytes, 'z') });
      figures.put_64k = await sequential(pid, SIZE.big, (i) => adapter.put('big', big(i)));
    }
    if (has('put_schema')) {
      figures.put_schema = await schemaPut(adapter, pid, {
        n: SIZE.seq,
        warmup: SIZE.schemaWarmup,
        block: SIZE.schemaBlock,
        schema: SERVICE_SCHEMA,
        values: serviceValues,
        invalid: { ...serviceValues(0), replicas: 0 },
      });
    }
    if (has('growth')) figures.growth = await historyGrowth(adapter, pid, SIZE.deep, 200);
    if (has('legacy_post') && httpPort !== undefined)
      figures.legacy_post = await legacyCurl(pid, httpPort, SIZE.legacy, token);
    for (const watchers of SIZE.fanout) {
      if (!has(`fanout_${watchers}`)) continue;
      const heavy = watchers >= 10000;
      figures[`fanout_${watchers}`] = await fanout(adapter, pid, {
        watchers,
        channels: 8,
        writes: heavy ? 20 : SIZE.writes,
        rate: heavy ? 5 : 20,
      });
    }
  } finally {
    adapter.close();
    await proc.stop();
    await extra?.stop();
  }
}

/** Rounds of the interleaved metrics comparison; each round runs h2load Get once on each server. */
const INTERLEAVED_ROUNDS = 12;

/**
 * The metrics' cost end to end with less noise than fresh processes per repetition give: cfgd_w1
 * and cfgd_w1_nometrics run side by side (both warm), and h2load Get alternates between them,
 * round after round, so that each pair of runs sees the same state of the machine. Undefined
 * unless both targets (and the h2_get workload) are selected.
 */
async function interleavedMetricsCost(list: readonly Target[]) {
  const on = list.find((t) => t.name === 'cfgd_w1');
  const off = list.find((t) => t.name === 'cfgd_w1_nometrics');
  if (on === undefined || off === undefined || !(onlyWorkloads?.includes('h2_get') ?? true)) return undefined;
  console.error(`bench: metrics on vs off, interleaved, ${INTERLEAVED_ROUNDS} rounds`);
  const started = [await on.start(), await off.start()];
  try {
    const loads = started.map(({ proc, pid, adapter }) => {
      const headers = adapter.authorization === undefined ? [] : [`authorization: ${adapter.authorization}`];
      return { pid, get: { port: portOf(proc), clients: 4, streams: 32, grpc: adapter.h2Get('read-me'), headers } };
    });
    for (const [index, { adapter }] of started.entries()) {
      await adapter.put('read-me', { value: 'x'.repeat(64) });
      h2load(loads[index]!.pid, { ...loads[index]!.get, requests: Math.ceil(SIZE.h2 / 2) });
    }
    const ops: number[] = [];
    const cpu: number[] = [];
    for (let round = 0; round < INTERLEAVED_ROUNDS; round++) {
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      const figures: Figures[] = [];
      for (const index of order)
        figures[index] = h2load(loads[index]!.pid, { ...loads[index]!.get, requests: SIZE.h2 / 2 });
      ops.push(figures[0]!.ops_per_s! / figures[1]!.ops_per_s!);
      cpu.push(figures[0]!.cpu_us_per_op! / figures[1]!.cpu_us_per_op!);
    }
    return { rounds: INTERLEAVED_ROUNDS, ops_per_s: stat(ops), cpu_us_per_op: stat(cpu) };
  } finally {
    for (const { adapter, proc } of started) {
      adapter.close();
      await proc.stop();
    }
  }
}

function portOf(proc: Proc): number {
  return 'grpcPort' in proc ? (proc as { grpcPort: number }).grpcPort : (proc as unknown as { port: number }).port;
}

interface Stat {
  median: number;
  min: number;
  max: number;
}

function stat(values: number[]): Stat {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  return {
    median: sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN,
    min: sorted[0] ?? Number.NaN,
    max: sorted.at(-1) ?? Number.NaN,
  };
}

function aggregate(runs: Run[]): Record<string, Record<string, Record<string, Stat>>> {
  const out: Record<string, Record<string, Record<string, Stat>>> = {};
  for (const [target, workloads] of Object.entries(runs[0] ?? {})) {
    out[target] = {};
    for (const [workload, figures] of Object.entries(workloads)) {
      out[target][workload] = {};
      for (const metric of Object.keys(figures)) {
        out[target][workload][metric] = stat(runs.map((r) => r[target]?.[workload]?.[metric] ?? Number.NaN));
      }
    }
  }
  return out;
}

/** subject ÷ reference for each figure both have, per repetition, then the median. */
function ratios(runs: Run[], subject: string, reference: string): Record<string, Stat> {
  const out: Record<string, Stat> = {};
  for (const [workload, figures] of Object.entries(runs[0]?.[subject] ?? {})) {
    for (const metric of Object.keys(figures)) {
      const values = runs.map(
        (r) => (r[subject]?.[workload]?.[metric] ?? Number.NaN) / (r[reference]?.[workload]?.[metric] ?? Number.NaN),
      );
      if (values.some((v) => Number.isFinite(v))) out[`${workload}.${metric}`] = stat(values);
    }
  }
  return out;
}

/** The cost of authentication the issue sets a target for: Get capacity with auth on ÷ off. */
const AUTH_COST = { figure: 'h2_get.ops_per_s', reference: 'cfgd_noauth', target: 'within 5 %', floor: 0.95 };

function authCost(runs: Run[]) {
  const ratio = ratios(runs, 'cfgd', AUTH_COST.reference)[AUTH_COST.figure];
  if (ratio === undefined) return undefined;
  return { ...AUTH_COST, ratio, met: ratio.median >= AUTH_COST.floor };
}

/**
 * The metrics' share of a Get's server CPU, the figure the target (≤ 3 %) is judged on: their
 * recording path measured in process ÷ cfgd_w1's CPU per Get. The end-to-end comparisons with
 * `--metrics off` (the cfgd_w1 ÷ cfgd_w1_nometrics ratios, and the interleaved runs) are printed
 * too, but on a shared 2-core host two runs of the same server differ by more than 3 %.
 */
const METRICS_COST = { ceiling: 0.03 };

function metricsCost(runs: Run[], recordingNs: number | undefined) {
  const cpuUs = aggregate(runs).cfgd_w1?.h2_get?.cpu_us_per_op?.median;
  if (recordingNs === undefined || cpuUs === undefined) return undefined;
  const share = recordingNs / 1000 / cpuUs;
  return { recordingNs, cpuUs, share, ceiling: METRICS_COST.ceiling, met: share <= METRICS_COST.ceiling };
}

function interleavedLine(cost: NonNullable<Awaited<ReturnType<typeof interleavedMetricsCost>>>): string {
  return (
    `**Metrics cost end to end, interleaved: cfgd_w1 ÷ cfgd_w1_nometrics over ${cost.rounds} alternating ` +
    `h2load Get runs on the two warm servers: ops/s ${fmt(cost.ops_per_s)}, server CPU per Get ` +
    `${fmt(cost.cpu_us_per_op)}**`
  );
}

function metricsCostLine(cost: NonNullable<ReturnType<typeof metricsCost>>): string {
  return (
    `**Metrics cost: recording a Get's metrics takes ${cost.recordingNs.toFixed(0)} ns in process ` +
    `(call observer and store timing, measured against the bare calls), ` +
    `${(cost.share * 100).toFixed(2)} % of cfgd_w1's server CPU per Get (${cost.cpuUs.toFixed(1)} µs); ` +
    `target ≤ ${cost.ceiling * 100} %: ${cost.met ? 'met' : 'missed'}** (the h2load comparison with ` +
    '`--metrics off` is in the Targets and the cfgd_w1 ÷ cfgd_w1_nometrics ratios)'
  );
}

function authCostLine(cost: NonNullable<ReturnType<typeof authCost>>): string {
  return (
    `**Auth cost: h2load Get ops/s, cfgd (auth on) ÷ cfgd_noauth (auth off) = ${fmt(cost.ratio)}; ` +
    `target: ${cost.target} (≥ ${cost.floor}): ${cost.met ? 'met' : 'missed'}** (pair by pair within each repetition)`
  );
}

/**
 * The cost of schema checks the issue sets a target for: sequential Put p50 to a config with the
 * realistic schema ÷ to one without (`put_schema`, both sides in the same cfgd process).
 */
const SCHEMA_COST = { figure: 'ratio_p50_ms', cpu: 'ratio_cpu_us_per_op', target: 'at most 10 % slower', ceiling: 1.1 };

function schemaCost(runs: Run[]) {
  const figures = aggregate(runs).cfgd?.put_schema;
  const ratio = figures?.[SCHEMA_COST.figure];
  if (figures === undefined || ratio === undefined) return undefined;
  return {
    ...SCHEMA_COST,
    rules: SCHEMA_RULES,
    ratio,
    cpuRatio: figures[SCHEMA_COST.cpu],
    met: ratio.median <= SCHEMA_COST.ceiling,
  };
}

function schemaCostLine(cost: NonNullable<ReturnType<typeof schemaCost>>): string {
  return (
    `**Schema cost: sequential Put p50, with a ${cost.rules}-rule schema ÷ without = ${fmt(cost.ratio)}; ` +
    `server CPU per Put ${fmt(cost.cpuRatio)}; target: ${cost.target} (≤ ${cost.ceiling}): ` +
    `${cost.met ? 'met' : 'missed'}** (pair by pair within each repetition)`
  );
}

/** The `put_schema` table: each side's figures and the ratios, one row each, per target that ran it. */
function schemaLines(figures: ReturnType<typeof aggregate>): string[] {
  const rows = Object.entries(figures).filter(([, w]) => w.put_schema !== undefined);
  if (rows.length === 0) return [];
  const metrics = ['ops_per_s', 'p50_ms', 'p99_ms', 'cpu_us_per_op'];
  const sides = { schema: 'with schema', plain: 'without schema', ratio: 'with ÷ without, pair by pair' };
  const lines = [
    `## Sequential Put with a ${SCHEMA_RULES}-rule JSON Schema vs without (one client, alternating blocks of ${SIZE.schemaBlock})`,
    '',
    `| target | config | ${metrics.join(' | ')} |`,
    `| --- | --- | ${metrics.map(() => '---').join(' | ')} |`,
  ];
  for (const [target, workloads] of rows) {
    for (const [side, what] of Object.entries(sides))
      lines.push(
        `| ${target} | ${what} | ${metrics.map((m) => fmt(workloads.put_schema![`${side}_${m}`])).join(' | ')} |`,
      );
  }
  lines.push('');
  return lines;
}

/** The ratio tables: each subject beside each reference it has figures in common with. */
const RATIO_PAIRS: readonly (readonly [string, string])[] = [
  ['cfgd', 'etcd'],
  ['cfgd_w1', 'etcd'],
  ['cfgd', 'echo'],
  ['cfgd_w1', 'echo'],
  ['cfgd', 'cfgd_w1'],
  ['cfgd', 'cfgd_noauth'],
  ['cfgd_w1', 'cfgd_w1_nometrics'],
];

/**
 * The performance targets: a figure of `subject` ÷ the same figure of `reference` (pair by pair
 * within each repetition, then the median), or `subject`'s own figure when there is no reference,
 * against a bound.
 */
const TARGETS: readonly {
  readonly what: string;
  readonly subject: string;
  readonly reference?: string;
  readonly figure: string;
  readonly bound: number;
  readonly at: 'least' | 'most';
}[] = [
  {
    what: 'h2load Get capacity',
    subject: 'cfgd',
    reference: 'etcd',
    figure: 'h2_get.ops_per_s',
    bound: 1,
    at: 'least',
  },
  {
    what: 'gRPC Put capacity',
    subject: 'cfgd',
    reference: 'etcd',
    figure: 'grpc_put.ops_per_s',
    bound: 1,
    at: 'least',
  },
  {
    what: 'server CPU per Get',
    subject: 'cfgd',
    reference: 'etcd',
    figure: 'h2_get.cpu_us_per_op',
    bound: 1,
    at: 'most',
  },
  {
    what: 'server CPU per Put',
    subject: 'cfgd',
    reference: 'etcd',
    figure: 'grpc_put.cpu_us_per_op',
    bound: 1,
    at: 'most',
  },
  { what: 'sequential Put p50', subject: 'cfgd', reference: 'etcd', figure: 'seq_put.p50_ms', bound: 1.2, at: 'most' },
  { what: 'sequential Put p99', subject: 'cfgd', reference: 'etcd', figure: 'seq_put.p99_ms', bound: 1, at: 'most' },
  { what: '64 KiB Put CPU', subject: 'cfgd', reference: 'etcd', figure: 'put_64k.cpu_us_per_op', bound: 2, at: 'most' },
  {
    what: 'Get capacity of one process vs the grpc-js echo ceiling',
    subject: 'cfgd_w1',
    reference: 'echo',
    figure: 'h2_get.ops_per_s',
    bound: 0.8,
    at: 'least',
  },
  ...[1000, 10000].flatMap((n) => [
    {
      what: `fan-out last delivery p99 (from sending the write), ${n} watchers`,
      subject: 'cfgd',
      reference: 'etcd',
      figure: `fanout_${n}.last_from_send_p99_ms`,
      bound: 1,
      at: 'most' as const,
    },
    {
      what: `memory per idle watcher (KiB), ${n} watchers`,
      subject: 'cfgd',
      figure: `fanout_${n}.kib_per_watcher`,
      bound: 12,
      at: 'most' as const,
    },
  ]),
];

function performanceTargets(runs: Run[]) {
  return TARGETS.flatMap((target) => {
    const [workload, metric] = target.figure.split('.') as [string, string];
    const value =
      target.reference === undefined
        ? aggregate(runs)[target.subject]?.[workload]?.[metric]
        : ratios(runs, target.subject, target.reference)[target.figure];
    if (value === undefined || !Number.isFinite(value.median)) return [];
    const met = target.at === 'least' ? value.median >= target.bound : value.median <= target.bound;
    return [{ ...target, value, met }];
  });
}

function targetLines(targets: ReturnType<typeof performanceTargets>): string[] {
  if (targets.length === 0) return [];
  return [
    '## Targets',
    '',
    '| target | figure | value | bound | met |',
    '| --- | --- | --- | --- | --- |',
    ...targets.map(
      (t) =>
        `| ${t.what} | ${t.subject}${t.reference === undefined ? '' : ` ÷ ${t.reference}`} ${t.figure} | ${fmt(t.value)} | ` +
        `${t.at === 'least' ? '≥' : '≤'} ${t.bound} | ${t.met ? 'met' : 'missed'} |`,
    ),
    '',
  ];
}

const fmt = (s: Stat | undefined): string =>
  s === undefined || !Number.isFinite(s.median) ? '–' : `${round(s.median)} (${round(s.min)}–${round(s.max)})`;
const round = (v: number): string =>
  Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);

function markdown(result: ReturnType<typeof buildResult>): string {
  const lines: string[] = [
    `# cfgd benchmark${result.quick ? ' (quick smoke run: small sizes, not comparable)' : ''}`,
    '',
    `${result.date} · ${result.machine} · ${result.reps} repetition(s); each cell is the median (min–max).`,
    '',
    ...(result.selection === undefined ? [] : [`Focused run: \`${result.selection}\`.`, '']),
    ...(result.authCost === undefined ? [] : [authCostLine(result.authCost), '']),
    ...(result.metricsCost === undefined ? [] : [metricsCostLine(result.metricsCost), '']),
    ...(result.metricsInterleaved === undefined ? [] : [interleavedLine(result.metricsInterleaved), '']),
    ...(result.schemaCost === undefined ? [] : [schemaCostLine(result.schemaCost), '']),
    ...targetLines(result.targets),
    '| target | what |',
    '| --- | --- |',
    ...Object.entries(result.labels).map(([name, label]) => `| ${name} | ${label} |`),
    '',
  ];
  for (const [workload, title] of Object.entries(WORKLOAD_TITLES)) {
    const rows = Object.entries(result.figures).filter(([, w]) => w[workload] !== undefined);
    if (rows.length === 0) continue;
    const metrics = Object.keys(rows[0]![1][workload]!);
    lines.push(
      `## ${title}`,
      '',
      `| target | ${metrics.join(' | ')} |`,
      `| --- | ${metrics.map(() => '---').join(' | ')} |`,
    );
    for (const [target, workloads] of rows)
      lines.push(`| ${target} | ${metrics.map((m) => fmt(workloads[workload]![m])).join(' | ')} |`);
    lines.push('');
  }
  lines.push(...schemaLines(result.figures));
  for (const [pair, table] of Object.entries(result.ratios)) {
    const what =
      pair === 'cfgd ÷ cfgd_noauth'
        ? ': auth on ÷ auth off'
        : pair === 'cfgd ÷ cfgd_w1'
          ? ': default workers ÷ one'
          : '';
    lines.push(
      `## Ratios ${pair}${what} (pair by pair within each repetition)`,
      '',
      '| figure | ratio |',
      '| --- | --- |',
    );
    for (const [figure, s] of Object.entries(table)) lines.push(`| ${figure} | ${fmt(s)} |`);
    lines.push('');
  }
  return lines.join('\n');
}

const WORKLOAD_TITLES: Record<string, string> = {
  seq_put: 'Sequential Put, one client (Node gRPC client)',
  seq_get: 'Sequential Get, one client (Node gRPC client)',
  h2_get: 'Server capacity: Get with h2load, 4 connections × 32 streams',
  grpc_put:
    'Server capacity: Put with grpc-put-load (C, libnghttp2), 4 connections × 32 streams, a new value per request over 128 keys',
  put_64k: 'Put of a 64 KiB value, one client',
  growth: 'Put latency at version 10 and deep in the history of one key',
  legacy_post: 'Legacy REST POST /values, curl-style (a new connection per request)',
  ...Object.fromEntries(
    SIZE.fanout.map((n) => [`fanout_${n}`, `Watch fan-out: ${n} watchers on one config over 8 channels`]),
  ),
};

function buildResult(
  runs: Run[],
  labels: Record<string, string>,
  skipped: string[],
  recordingNs?: number,
  metricsInterleaved?: Awaited<ReturnType<typeof interleavedMetricsCost>>,
) {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return {
    date: new Date().toISOString(),
    quick,
    reps: runs.length,
    machine: `${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
    selection: focused ? process.argv.slice(2).join(' ') : undefined,
    labels,
    skipped,
    figures: aggregate(runs),
    ratios: Object.fromEntries(
      RATIO_PAIRS.filter(
        ([subject, reference]) => runs[0]?.[subject] !== undefined && runs[0]?.[reference] !== undefined,
      ).map(([subject, reference]) => [`${subject} ÷ ${reference}`, ratios(runs, subject, reference)]),
    ),
    targets: performanceTargets(runs),
    authCost: authCost(runs),
    metricsCost: metricsCost(runs, recordingNs),
    metricsInterleaved,
    schemaCost: schemaCost(runs),
    runs,
  };
}

async function main(): Promise<void> {
  console.error('bench: building cfgd');
  if (spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' }).status !== 0)
    throw new Error('build failed');
  const skipped: string[] = [];
  if (!ensureDebianPackage('h2load', 'nghttp2-client'))
    throw new Error('h2load (Debian nghttp2-client) is needed and could not be installed');
  const wantEtcd = only === undefined || only.includes('etcd');
  const haveEtcd = wantEtcd && ensureDebianPackage('etcd', 'etcd-server');
  if (wantEtcd && !haveEtcd)
    skipped.push('etcd: not installed and apt-get could not install etcd-server; etcd figures and ratios are missing');
  for (const line of skipped) console.error(`bench: SKIPPED ${line}`);
  const all = targets(haveEtcd);
  const unknown = (only ?? []).filter((name) => !all.some((t) => t.name === name) && name !== 'etcd');
  if (unknown.length > 0)
    throw new Error(`--only: no target ${unknown.join(', ')} (${all.map((t) => t.name).join(', ')})`);
  const list = only === undefined ? all : only.flatMap((name) => all.filter((t) => t.name === name));
  const runs: Run[] = [];
  for (let rep = 1; rep <= SIZE.reps; rep++) {
    const run: Run = {};
    for (const target of rep % 2 === 1 ? list : [...list].reverse()) {
      console.error(`bench: repetition ${rep}/${SIZE.reps}: ${target.name}`);
      await measure(target, run);
    }
    runs.push(run);
  }
  // Measured when the targets have stopped, so that nothing else runs beside it.
  const interleaved = await interleavedMetricsCost(list);
  const recordingNs = list.some((t) => t.name === 'cfgd_w1') ? await metricsRecordingNsPerGet() : undefined;
  const result = buildResult(
    runs,
    Object.fromEntries(list.map((t) => [t.name, t.label])),
    skipped,
    recordingNs,
    interleaved,
  );
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const base = focused ? 'focused' : quick ? 'quick' : 'latest';
  writeFileSync(join(dir, `${base}.json`), `${JSON.stringify(result, null, 2)}\n`);
  const md = markdown(result);
  writeFileSync(join(dir, `${base}.md`), `${md}\n`);
  if (!focused) writeFileSync(join(dir, `${base}.svg`), renderChart(result));
  console.log(md);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
