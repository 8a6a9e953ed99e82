/** Messages between the primary and its workers about the cluster itself (the store has its own, see `WriterLink`). */
/** What the primary can gather from every worker: a GetStatus's node statuses, or a scrape's metrics. */
export type Collectable = 'status' | 'metrics';

export type ClusterMessage =
  /** Worker → primary: it serves on these ports. */
  | { readonly cfgd: 'cluster'; readonly op: 'listening'; readonly grpcPort: number; readonly httpPort: number }
  /** Worker → primary: a call wants `what` of every worker. */
  | { readonly cfgd: 'cluster'; readonly op: 'collect'; readonly id: number; readonly what: Collectable }
  /** Primary → worker: the answer to `collect`, one entry per worker (and, for metrics, the primary's own). */
  | { readonly cfgd: 'cluster'; readonly op: 'collected'; readonly id: number; readonly results: unknown[] }
  /** Primary → worker: report your `what`. */
  | { readonly cfgd: 'cluster'; readonly op: 'report'; readonly query: number; readonly what: Collectable }
  /** Worker → primary: the answer to `report`. */
  | { readonly cfgd: 'cluster'; readonly op: 'reported'; readonly query: number; readonly result: unknown };

export function isClusterMessage(message: unknown): message is ClusterMessage {
  return typeof message === 'object' && message !== null && (message as { cfgd?: unknown }).cfgd === 'cluster';
}

/** The environment variable that gives a worker its number. */
export const WORKER_ENV = 'CFGD_WORKER_NUMBER';

/** How long GetStatus (or a metrics scrape) waits for the workers' reports. */
export const COLLECT_TIMEOUT_MS = 1000;
