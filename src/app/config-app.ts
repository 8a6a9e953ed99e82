import {
  CfgdError,
  configKey,
  invalidField,
  planWrite,
  resourceName,
  validateValues,
  validateVersion,
  type AuditEntry,
  type ConfigKey,
  type ConfigVersion,
  type ValueLimits,
} from '../domain/index.js';
import type { ConfigStore } from '../store/store.js';
import type { Authorizer, RequestContext } from './context.js';
import { WakeSignal } from './wake-signal.js';

export interface ConfigAppDeps {
  readonly store: ConfigStore;
  readonly authorizer: Authorizer;
  readonly limits: ValueLimits;
  readonly clock: () => Date;
}

export interface PutInput {
  readonly userId: string;
  readonly configName: string;
  readonly values: unknown;
  readonly expectedVersion?: number | undefined;
}

export interface PutResult {
  readonly config: ConfigVersion;
  /** False when the values equalled the current ones and no version was created. */
  readonly changed: boolean;
}

export interface GetInput {
  readonly userId: string;
  readonly configName: string;
  /** 0 reads the latest version. */
  readonly version: number;
}

export interface GetResult {
  readonly config: ConfigVersion;
  readonly latestVersion: number;
}

export interface HistoryInput {
  readonly userId: string;
  readonly configName: string;
  readonly startVersion: number;
  readonly pageSize: number;
  readonly pageToken: string;
}

export interface HistoryResult {
  readonly entries: AuditEntry[];
  readonly nextPageToken: string;
  readonly latestVersion: number;
}

export interface WatchInput {
  readonly userId: string;
  readonly configName: string;
  /** Deliver every version greater than this; undefined: the current version first. */
  readonly startVersion?: number | undefined;
}

/** The versions of one watched config; `close` releases its subscription (idempotent). */
export interface WatchStream extends AsyncIterable<ConfigVersion> {
  close(): void;
}

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
/** How many versions a watch reads from the store at a time while catching up. */
const WATCH_BATCH = 256;
/** How long a watch waits before it retries a store that was unavailable. */
const STORE_RETRY_MS = 1000;

/**
 * The use cases of cfgd. Each one validates names, authorizes, validates the
 * rest of the input, then reads or writes through the store. Transports call
 * these and only map their inputs and outputs.
 */
export class ConfigApp {
  private openWatches = 0;

  constructor(private readonly deps: ConfigAppDeps) {}

  /** Counters for operators and leak tests. */
  stats(): { watches: number } {
    return { watches: this.openWatches };
  }

  async put(ctx: RequestContext, input: PutInput): Promise<PutResult> {
    const key = configKey(input.userId, input.configName);
    await this.deps.authorizer.authorize(ctx.principal, 'write', resourceName(key));
    const values = validateValues(input.values, this.deps.limits);
    const expectedVersion =
      input.expectedVersion === undefined ? undefined : validateVersion('expected_version', input.expectedVersion);
    const request = { values, expectedVersion, author: ctx.principal.id, now: this.deps.clock() };
    const plan = await this.deps.store.write(key, (current) => planWrite(key, current, request));
    return plan.kind === 'create' ? { config: plan.next, changed: true } : { config: plan.current, changed: false };
  }

  async get(ctx: RequestContext, input: GetInput): Promise<GetResult> {
    const key = configKey(input.userId, input.configName);
    await this.deps.authorizer.authorize(ctx.principal, 'read', resourceName(key));
    const version = validateVersion('version', input.version);
    const latest = await this.requireLatest(key);
    if (version === 0 || version === latest.version) return { config: latest, latestVersion: latest.version };
    const config = version < latest.version ? await this.deps.store.version(key, version) : undefined;
    if (config === undefined) {
      throw new CfgdError('not-found', 'VERSION_NOT_FOUND', `${resourceName(key)} has no version ${version}`, {
        metadata: { resource: resourceName(key), version: String(version), latest_version: String(latest.version) },
      });
    }
    return { config, latestVersion: latest.version };
  }

  async history(ctx: RequestContext, input: HistoryInput): Promise<HistoryResult> {
    const key = configKey(input.userId, input.configName);
    const name = resourceName(key);
    await this.deps.authorizer.authorize(ctx.principal, 'read', name);
    const startVersion = validateVersion('start_version', input.startVersion);
    const pageSize = validatePageSize(input.pageSize);
    const from = input.pageToken === '' ? Math.max(startVersion, 1) : decodePageToken(input.pageToken, name);
    const latest = await this.requireLatest(key);
    const entries = await this.deps.store.auditEntries(key, from, pageSize + 1);
    const more = entries.length > pageSize;
    if (more) entries.length = pageSize;
    const last = entries.at(-1);
    return {
      entries,
      nextPageToken: more && last !== undefined ? encodePageToken(last.version + 1, name) : '',
      latestVersion: latest.version,
    };
  }

  /**
   * Opens a stream of a config's versions: every version greater than
   * `startVersion`, or the current version first when it is undefined; then
   * each new version as it commits. Validation, authorization and the store
   * subscription happen before this resolves, so transports can report those
   * errors before they start streaming. Versions come in order, each exactly
   * once: the store's wake-ups only say "look again", and what is delivered is
   * read from stored history after the last delivered version, so a write
   * racing the switch from history to live is neither missed nor repeated.
   * The stream ends by throwing `ctx.signal.reason` when the signal aborts.
   * Callers must `close()` it when done, whether or not they iterated it.
   */
  async watch(ctx: RequestContext, input: WatchInput): Promise<WatchStream> {
    const key = configKey(input.userId, input.configName);
    await this.deps.authorizer.authorize(ctx.principal, 'watch', resourceName(key));
    const start = input.startVersion === undefined ? undefined : validateVersion('start_version', input.startVersion);
    const wake = new WakeSignal();
    // Subscribe before the first read, so that no commit falls between the two.
    const unsubscribe = await this.deps.store.subscribe(key, () => wake.notify());
    this.openWatches++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.openWatches--;
      unsubscribe();
    };
    try {
      ctx.signal.throwIfAborted();
    } catch (error: unknown) {
      release();
      throw error;
    }
    const versions = this.streamVersions(ctx, key, start, wake, release);
    return { [Symbol.asyncIterator]: () => versions, close: release };
  }

  private async *streamVersions(
    ctx: RequestContext,
    key: ConfigKey,
    start: number | undefined,
    wake: WakeSignal,
    release: () => void,
  ): AsyncGenerator<ConfigVersion, never, undefined> {
    const { store } = this.deps;
    // While the store is unreachable the stream stays open: it waits for the store's wake-up (a
    // backend wakes every subscriber when it is back) or retries, then reads what it missed.
    const read = async <T>(query: () => Promise<T>): Promise<T> => {
      for (;;) {
        try {
          return await query();
        } catch (error: unknown) {
          if (!(error instanceof CfgdError && error.kind === 'unavailable')) throw error;
          await wake.wait(ctx.signal, STORE_RETRY_MS);
        }
      }
    };
    try {
      let last = start ?? 0;
      if (start === undefined) {
        const current = await read(() => store.latest(key));
        if (current !== undefined) {
          yield current;
          last = current.version;
        }
      }
      for (;;) {
        ctx.signal.throwIfAborted();
        const batch = await read(() => store.versionsAfter(key, last, WATCH_BATCH));
        for (const version of batch) {
          if (version.version !== last + 1) {
            throw new Error(`${resourceName(key)}: version ${version.version} follows ${last}`);
          }
          yield version;
          last = version.version;
        }
        if (batch.length < WATCH_BATCH) await wake.wait(ctx.signal);
      }
    } finally {
      release();
    }
  }

  private async requireLatest(key: ConfigKey): Promise<ConfigVersion> {
    const latest = await this.deps.store.latest(key);
    if (latest === undefined) {
      throw new CfgdError('not-found', 'CONFIG_NOT_FOUND', `${resourceName(key)} does not exist`, {
        metadata: { resource: resourceName(key) },
      });
    }
    return latest;
  }
}

function validatePageSize(pageSize: number): number {
  if (!Number.isSafeInteger(pageSize) || pageSize < 0) {
    throw invalidField('page_size', 'PAGE_SIZE_INVALID', `must be a whole number >= 0, got ${pageSize}`);
  }
  if (pageSize === 0) return DEFAULT_PAGE_SIZE;
  return Math.min(pageSize, MAX_PAGE_SIZE);
}

/** Page tokens are opaque to clients: base64url of the next version and the config they belong to. */
function encodePageToken(nextVersion: number, name: string): string {
  return Buffer.from(JSON.stringify({ v: nextVersion, r: name })).toString('base64url');
}

function decodePageToken(token: string, name: string): number {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const fields = parsed as { v?: unknown; r?: unknown } | undefined;
  if (typeof fields !== 'object' || fields === null || !Number.isSafeInteger(fields.v) || (fields.v as number) < 1) {
    throw invalidField('page_token', 'PAGE_TOKEN_INVALID', 'is not a token returned by History');
  }
  if (fields.r !== name) {
    throw invalidField('page_token', 'PAGE_TOKEN_INVALID', `belongs to another config than ${name}`);
  }
  return fields.v as number;
}
