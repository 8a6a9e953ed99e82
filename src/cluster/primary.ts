import cluster, { type Worker } from 'node:cluster';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ensureAdminToken } from '../app/auth/bootstrap.js';
import type { CfgdSettings } from '../settings/settings.js';
import { EmbeddedStore } from '../store/embedded/sqlite-store.js';
import { WriterHost } from '../store/embedded/writer-host.js';
import { workerLink } from './links.js';
import { CfgdMetrics } from '../metrics/metrics.js';
import { COLLECT_TIMEOUT_MS, isClusterMessage, WORKER_ENV, type ClusterMessage, type Collectable } from './messages.js';

/** A worker that lived shorter than this before it died waits longer before its restart. */
const STABLE_MS = 10_000;
const MAX_RESTART_DELAY_MS = 5000;
/**
 * How long after `--shutdown-grace-ms` the primary waits for a draining worker before it kills it:
 * a service manager's stop timeout must be longer than the grace plus this.
 */
export const WORKER_CUT_MS = 5000;

export interface RunningPrimary {
  /** Stops the workers (each drains its calls), then the writer. */
  stop(): Promise<void>;
}

/**
 * The primary process of `--workers N`: it serves no calls. It forks N
 * workers, which share the gRPC and REST ports (node:cluster hands each new
 * connection to the next worker), restarts a worker that dies, and collects
 * their status for GetStatus. With the embedded store it is also the store's
 * one writer (group commit; see `EmbeddedStore` and `WriterHost`), and
 * installs the admin token before any worker starts. With RethinkDB each
 * worker is simply one more node of the cluster.
 */
export async function startPrimary(
  settings: CfgdSettings,
  log: Logger,
  describeStore: string,
): Promise<RunningPrimary> {
  cluster.setupPrimary({ serialization: 'advanced' });
  // The primary serves no call; its metrics are its process's and, with the embedded store, its writer's.
  const metrics = settings.metrics === 'off' ? undefined : new CfgdMetrics();
  let store: EmbeddedStore | undefined;
  let host: WriterHost | undefined;
  if (settings.store.kind === 'embedded') {
    store = new EmbeddedStore({ ...settings.store, events: metrics?.storeEvents() });
    if (settings.auth.mode === 'on') {
      await ensureAdminToken({
        credentials: store.credentials,
        adminToken: settings.auth.adminToken,
        tokenFile: join(settings.store.path, 'admin.token'),
        clock: () => new Date(),
        log: log.child({ component: 'auth' }),
      });
    }
    host = await WriterHost.start(store);
  }

  const workers = new Map<number, Worker>();
  const restarts = new Map<number, number>();
  let stopping = false;
  let queries = 0;
  const send = (worker: Worker, message: ClusterMessage): void => {
    if (worker.isConnected()) worker.send(message);
  };

  /** `what` of every worker that answers in time; for metrics, the primary's own too (its writer's commits). */
  const collect = async (what: Collectable): Promise<unknown[]> => {
    const query = ++queries;
    const expected = [...workers.values()].filter((worker) => worker.isConnected());
    const results = await new Promise<unknown[]>((resolve) => {
      const reports: unknown[] = [];
      const done = (): void => {
        clearTimeout(timer);
        for (const worker of expected) worker.off('message', onReport);
        resolve(reports);
      };
      const onReport = (message: unknown): void => {
        if (!isClusterMessage(message) || message.op !== 'reported' || message.query !== query) return;
        reports.push(message.result);
        if (reports.length === expected.length) done();
      };
      const timer = setTimeout(done, COLLECT_TIMEOUT_MS);
      for (const worker of expected) {
        worker.on('message', onReport);
        send(worker, { cfgd: 'cluster', op: 'report', query, what });
      }
      if (expected.length === 0) done();
    });
    if (what === 'metrics' && metrics !== undefined) results.push(await metrics.json());
    return results;
  };

  let announced = false;
  let announce: ((ports: { grpcPort: number; httpPort: number }) => void) | undefined;
  let failStart: ((error: Error) => void) | undefined;
  const started = new Promise<{ grpcPort: number; httpPort: number }>((resolve, reject) => {
    announce = resolve;
    failStart = reject;
  });
  const listening = new Set<number>();

  const fork = (number: number): void => {
    const born = Date.now();
    const worker = cluster.fork({ [WORKER_ENV]: String(number) });
    workers.set(number, worker);
    // A message to a worker that has just died fails on its channel; its 'exit' follows, and a restart.
    worker.on('error', (error: Error) => log.warn({ worker: number, err: error }, 'message to a worker failed'));
    host?.attach(workerLink(worker));
    worker.on('message', (message: unknown) => {
      if (!isClusterMessage(message)) return;
      if (message.op === 'listening') {
        listening.add(number);
        if (listening.size === settings.workers) announce?.(message);
      } else if (message.op === 'collect') {
        void collect(message.what).then((results) =>
          send(worker, { cfgd: 'cluster', op: 'collected', id: message.id, results }),
        );
      }
    });
    worker.on('exit', (code, signal) => {
      if (workers.get(number) === worker) workers.delete(number);
      if (stopping) return;
      if (!announced) {
        // A worker that never served: the others would fail the same way (a port in use, a bad setting).
        failStart?.(new Error(`worker ${number} exited (${signal ?? code}) before it listened`));
        return;
      }
      const delay =
        Date.now() - born < STABLE_MS ? Math.min(MAX_RESTART_DELAY_MS, 100 * 2 ** (restarts.get(number) ?? 0)) : 0;
      restarts.set(number, Date.now() - born < STABLE_MS ? (restarts.get(number) ?? 0) + 1 : 0);
      log.warn(
        { worker: number, pid: worker.process.pid, code, signal, restartInMs: delay },
        'worker died; restarting it',
      );
      setTimeout(() => {
        if (!stopping) fork(number);
      }, delay);
    });
  };

  const stopWorkers = async (): Promise<void> => {
    stopping = true;
    const exits = [...workers.values()].map(
      (worker) =>
        new Promise<void>((resolve) => {
          if (worker.isDead()) return resolve();
          worker.once('exit', () => resolve());
          worker.process.kill('SIGTERM');
          // A worker that does not drain in time is cut.
          setTimeout(() => worker.process.kill('SIGKILL'), settings.shutdownGraceMs + WORKER_CUT_MS).unref();
        }),
    );
    await Promise.all(exits);
    if (store !== undefined)
      log.info(store.commitStats(), 'the writer stops: group commits and the writes they carried');
    host?.close();
    await store?.close();
  };

  for (let number = 1; number <= settings.workers; number++) fork(number);
  let ports: { grpcPort: number; httpPort: number };
  try {
    ports = await started;
    announced = true;
  } catch (error: unknown) {
    await stopWorkers();
    throw error;
  }
  const hostOf = (address: string): string => address.slice(0, address.lastIndexOf(':'));
  log.info(
    {
      grpc: `${hostOf(settings.grpcAddress)}:${ports.grpcPort}`,
      http: `${hostOf(settings.httpAddress)}:${ports.httpPort}`,
      store: describeStore,
      workers: settings.workers,
      tls:
        settings.tls === undefined
          ? 'off'
          : settings.tls.clientCaFile === undefined
            ? 'on'
            : 'on, client certificates required',
      auth: settings.auth.mode,
    },
    'cfgd listening',
  );
  let stopped: Promise<void> | undefined;
  return {
    stop: () => (stopped ??= stopWorkers().then(() => log.info('cfgd stopped'))),
  };
}
