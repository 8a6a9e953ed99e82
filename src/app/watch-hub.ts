/**
 * The watch module's entry point: streams of committed versions, shared per
 * scope. The parts live in `./watch/`: the start planner (`start-plan.ts`),
 * the bounded queue, the sequence check, the channel (one store subscription
 * per scope, reference counted), the watcher (one stream, an explicit phase)
 * and the hub that ties them together.
 */
export { WatchHub, type WatchHubOptions, type WatchHubStats } from './watch/hub.js';
export { INITIAL_STATE_COMPLETE, PROGRESS, type VersionEvent, type WatchEvent } from './watch/watch-event.js';
export type { WatchScope, WatchStart } from './watch/start-plan.js';
export type { WatchPhase, WatchStream } from './watch/watcher.js';
export type { WatchLog } from './watch/faults.js';
