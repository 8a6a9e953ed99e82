import type { NodeStatus } from '../app/node-status.js';

/** Messages between the primary and its workers about the cluster itself (the store has its own, see `WriterLink`). */
export type ClusterMessage =
  /** Worker → primary: it serves on these ports. */
  | { readonly cfgd: 'cluster'; readonly op: 'listening'; readonly grpcPort: number; readonly httpPort: number }
  /** Worker → primary: a GetStatus call wants every worker's status. */
  | { readonly cfgd: 'cluster'; readonly op: 'collect'; readonly id: number }
  /** Primary → worker: the answer to `collect`. */
  | { readonly cfgd: 'cluster'; readonly op: 'collected'; readonly id: number; readonly statuses: NodeStatus[] }
  /** Primary → worker: report your status. */
  | { readonly cfgd: 'cluster'; readonly op: 'report'; readonly query: number }
  /** Worker → primary: the answer to `report`. */
  | { readonly cfgd: 'cluster'; readonly op: 'reported'; readonly query: number; readonly status: NodeStatus };

export function isClusterMessage(message: unknown): message is ClusterMessage {
  return typeof message === 'object' && message !== null && (message as { cfgd?: unknown }).cfgd === 'cluster';
}

/** The environment variable that gives a worker its number. */
export const WORKER_ENV = 'CFGD_WORKER_NUMBER';

/** How long GetStatus waits for the workers' reports. */
export const COLLECT_TIMEOUT_MS = 1000;
