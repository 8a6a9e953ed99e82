/**
 * What recording a Get's metrics costs, measured in process: the call
 * observer's start and end of the call (with its two clock reads) and the
 * store decorator's timing of `latest`, against the bare calls, over a store
 * that answers at once. The h2load comparison with `--metrics off` measures
 * the same cost end to end, but its spread between runs on a shared 2-core
 * machine is larger than the cost; this figure, divided by the server's CPU
 * per Get, is the share it takes.
 */
import { Registry } from 'prom-client';
import type { ConfigKey, ConfigVersion } from '../src/domain/index.js';
import { callMetrics } from '../src/metrics/call-metrics.js';
import { InstrumentedStore } from '../src/metrics/store-metrics.js';
import type { ConfigStore } from '../src/store/store.js';

const CALLS = 200_000;
const ROUNDS = 5;

/** Nanoseconds the metrics add to one Get: the median over rounds of (instrumented − bare) per call. */
export async function metricsRecordingNsPerGet(): Promise<number> {
  const version = { version: 1 } as unknown as ConfigVersion;
  const store = { latest: (_key: ConfigKey) => Promise.resolve(version) } as unknown as ConfigStore;
  const registry = new Registry();
  const instrumented = new InstrumentedStore(store, registry);
  const observer = callMetrics(registry).operation({
    transport: 'grpc',
    method: 'cfgd.v1.ConfigService/Get',
    route: 'cfgd.v1.ConfigService/Get',
    streaming: false,
  });
  const key: ConfigKey = { userId: 'bench', configName: 'metrics' };
  const bare = async (): Promise<void> => {
    await store.latest(key);
  };
  const measured = async (): Promise<void> => {
    const began = performance.now();
    observer.started();
    await instrumented.latest(key);
    observer.finished(0, (performance.now() - began) / 1000, undefined, undefined);
  };
  const perCall = async (call: () => Promise<void>): Promise<number> => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < CALLS; i++) await call();
    return Number(process.hrtime.bigint() - start) / CALLS;
  };
  // Warm both paths up before measuring.
  await perCall(bare);
  await perCall(measured);
  const differences: number[] = [];
  for (let round = 0; round < ROUNDS; round++) differences.push((await perCall(measured)) - (await perCall(bare)));
  differences.sort((a, b) => a - b);
  return differences[Math.floor(differences.length / 2)]!;
}
