import type { ConfigVersion } from '../../domain/index.js';

/** One message of a watch stream, before any transport encodes it. */
export type WatchEvent =
  | { readonly kind: 'version'; readonly version: ConfigVersion }
  /**
   * The config's state at `version`, instead of the versions the stream asked
   * for: retention pruned them, or the store never had them (the client's
   * start is ahead of the store's latest version). What follows is live.
   */
  | { readonly kind: 'resync'; readonly version: ConfigVersion }
  | { readonly kind: 'initial-state-complete' }
  | { readonly kind: 'progress' };

/** A version event. A channel makes one per version and hands the same object to every stream. */
export type VersionEvent = Extract<WatchEvent, { kind: 'version' }>;

/** A resynchronisation: the state at a version, in place of versions the store does not have (any more). */
export type ResyncEvent = Extract<WatchEvent, { kind: 'resync' }>;

export const INITIAL_STATE_COMPLETE: WatchEvent = Object.freeze({ kind: 'initial-state-complete' });
export const PROGRESS: WatchEvent = Object.freeze({ kind: 'progress' });
