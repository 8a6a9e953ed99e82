import type { StoreStats } from '../store/store.js';
import type { WatchHubStats } from './watch/hub.js';

/** What one serving process holds open: its watches, its store's subscriptions, its memory. */
export interface NodeStatus extends WatchHubStats {
  /** Its number among the worker processes of this server (1 when it serves alone). */
  readonly worker: number;
  readonly pid: number;
  readonly store: StoreStats;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
}

/**
 * The other worker processes of this server (`--workers N`): asks every one,
 * this one included, for its status. Workers that do not answer in time (one
 * being restarted) are left out.
 */
export interface StatusPeers {
  collect(): Promise<NodeStatus[]>;
}
