import type { Logger } from 'pino';
import type { NodeStatus, StatusPeers } from '../app/node-status.js';
import type { CfgdSettings } from '../settings/settings.js';
import { WorkerStore } from '../store/embedded/worker-store.js';
import type { ConfigStore } from '../store/store.js';
import { primaryLink } from './links.js';
import type { MetricsJson } from '../metrics/metrics.js';
import { COLLECT_TIMEOUT_MS, isClusterMessage, WORKER_ENV, type ClusterMessage, type Collectable } from './messages.js';

/** What a worker needs of the composition root: a node started on its store, numbered, with its peers. */
export type StartNode = (overrides: {
  readonly store?: ConfigStore | undefined;
  readonly worker: WorkerPeers;
}) => Promise<{
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly app: { nodeStatus(): NodeStatus };
  /** This node's metrics; undefined with `--metrics off`. */
  readonly metrics: { json(): Promise<MetricsJson> } | undefined;
  stop(): Promise<void>;
}>;

/** A worker's number and what it can ask of the others, through the primary. */
export interface WorkerPeers {
  readonly number: number;
  readonly peers: StatusPeers;
  /** Every process's metrics (the workers' and the primary's), for one scrape. */
  gatherMetrics(): Promise<MetricsJson[]>;
}

/**
 * One worker process of `--workers N`: a whole cfgd node (both listeners,
 * shared with the other workers through the primary) whose embedded store
 * writes through the primary. It ends when told to (SIGTERM/SIGINT: drains
 * like a single process) or when the primary is gone (at once: its writer is
 * gone with it).
 */
export async function runWorker(settings: CfgdSettings, log: Logger, start: StartNode): Promise<void> {
  const number = Number(process.env[WORKER_ENV]);
  const link = primaryLink();
  const store = settings.store.kind === 'embedded' ? new WorkerStore(settings.store, link) : undefined;
  const send = (message: ClusterMessage): void => {
    if (process.connected) process.send!(message);
  };
  const collecting = new Map<number, (results: unknown[]) => void>();
  let nextCollect = 1;
  const collect = (what: Collectable): Promise<unknown[]> =>
    new Promise((resolve, reject) => {
      const id = nextCollect++;
      const timer = setTimeout(() => {
        collecting.delete(id);
        reject(new Error(`the primary did not collect the workers’ ${what} in time`));
      }, 2 * COLLECT_TIMEOUT_MS);
      collecting.set(id, (results) => {
        collecting.delete(id);
        clearTimeout(timer);
        resolve(results);
      });
      send({ cfgd: 'cluster', op: 'collect', id, what });
    });
  const peers: StatusPeers = { collect: async () => (await collect('status')) as NodeStatus[] };
  const gatherMetrics = async (): Promise<MetricsJson[]> => (await collect('metrics')) as MetricsJson[];
  let stopping = false;
  // A message to a primary that has just died fails on the channel; the 'disconnect' below follows.
  process.on('error', (error: Error) => log.warn({ err: error }, 'message to the primary failed'));
  process.on('disconnect', () => {
    if (stopping) return;
    log.error('the primary process is gone; this worker stops');
    process.exit(1);
  });
  let cfgd: Awaited<ReturnType<StartNode>>;
  try {
    cfgd = await start({ store, worker: { number, peers, gatherMetrics } });
  } catch (error: unknown) {
    await store?.close();
    throw error;
  }
  process.on('message', (message: unknown) => {
    if (!isClusterMessage(message)) return;
    if (message.op === 'report') {
      const { query } = message;
      if (message.what === 'status') send({ cfgd: 'cluster', op: 'reported', query, result: cfgd.app.nodeStatus() });
      // With metrics off no scrape is served, so none is asked for; an answer keeps the primary from waiting.
      else
        void (cfgd.metrics?.json() ?? Promise.resolve([])).then((result) =>
          send({ cfgd: 'cluster', op: 'reported', query, result }),
        );
    }
    if (message.op === 'collected') collecting.get(message.id)?.(message.results);
  });
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'worker shutting down');
    cfgd
      .stop()
      .then(() => store?.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          log.error({ err: error }, 'worker shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  send({ cfgd: 'cluster', op: 'listening', grpcPort: cfgd.grpcPort, httpPort: cfgd.httpPort });
}
