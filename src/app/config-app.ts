import {
  configNotFound,
  CfgdError,
  configKey,
  EVERY_CONFIG,
  invalidField,
  isDeleted,
  noValues,
  planWrite,
  resourceName,
  validateName,
  validateValues,
  validateVersion,
  type AuditEntry,
  type ConfigKey,
  type ConfigVersion,
  type Planner,
  type ValueLimits,
} from '../domain/index.js';
import type { ConfigStore, StoreStats } from '../store/store.js';
import type { Authorizer, RequestContext } from './context.js';
import type { Pruner } from './retention.js';
import { decodePageToken, encodePageToken, validatePageSize } from './paging.js';
import { commit, outcome } from './writes.js';
import type { SchemaChecks } from './schemas/schema-checks.js';
import type { NodeStatus, StatusPeers } from './node-status.js';
import type { WatchHub, WatchHubStats, WatchStart, WatchStream } from './watch-hub.js';

export interface ConfigAppDeps {
  readonly store: ConfigStore;
  /** Prunes old versions after writes (retention); none: every version is kept. */
  readonly pruner?: Pruner | undefined;
  /** Shares store subscriptions between watch streams; built on the same store. */
  readonly watchHub: WatchHub;
  readonly authorizer: Authorizer;
  /** The compiled schemas, shared with the schema use cases. */
  readonly schemaChecks: SchemaChecks;
  readonly limits: ValueLimits;
  readonly clock: () => Date;
  /** The worker processes of this server, when it runs several (`--workers N`). */
  readonly peers?: StatusPeers | undefined;
  /** This process's number among them (1 when it serves alone). */
  readonly worker?: number | undefined;
}

export interface PutInput {
  readonly userId: string;
  readonly configName: string;
  readonly values: unknown;
  readonly expectedVersion?: number | undefined;
  /** Plan the write and answer what it would do, writing nothing (AIP-163). */
  readonly validateOnly?: boolean | undefined;
  /** A UUID naming the request: a retry with it answers the first call's result (AIP-155). */
  readonly requestId?: string | undefined;
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
  /** Empty: every config of the user. */
  readonly configName: string;
  /** Config watches: deliver every version greater than this; undefined: the current version first. */
  readonly startVersion?: number | undefined;
  /** User watches: the version the client holds of each config, by config name. */
  readonly knownVersions?: Readonly<Record<string, number>> | undefined;
}

export type { WatchEvent, WatchStream } from './watch-hub.js';

/**
 * The use cases of cfgd. Each one validates names, authorizes, validates the
 * rest of the input, then reads or writes through the store. Transports call
 * these and only map their inputs and outputs.
 */
export class ConfigApp {
  constructor(private readonly deps: ConfigAppDeps) {}

  /** Counters for operators and leak tests. */
  stats(): WatchHubStats & { readonly store: StoreStats } {
    return { ...this.deps.watchHub.stats(), store: this.deps.store.stats() };
  }

  async put(ctx: RequestContext, input: PutInput): Promise<PutResult> {
    const key = configKey(input.userId, input.configName);
    this.deps.authorizer.authorize(ctx.principal, 'write', resourceName(key));
    const values = validateValues(input.values, this.deps.limits);
    const expectedVersion =
      input.expectedVersion === undefined ? undefined : validateVersion('expected_version', input.expectedVersion);
    const request = { values, expectedVersion, author: ctx.principal.id, now: this.deps.clock() };
    const checks = this.deps.schemaChecks;
    const planner: Planner = (current, schema) => planWrite(key, current, request, checks.of(key, schema));
    const { store } = this.deps;
    const write = {
      planner,
      validateOnly: input.validateOnly,
      requestId: input.requestId,
      operation: 'put',
      request: { values, expected_version: expectedVersion ?? null },
    };
    return outcome(store, key, await commit(store, key, write, this.deps.pruner));
  }

  async get(ctx: RequestContext, input: GetInput): Promise<GetResult> {
    const key = configKey(input.userId, input.configName);
    this.deps.authorizer.authorize(ctx.principal, 'read', resourceName(key));
    const version = validateVersion('version', input.version);
    const latest = await this.requireVersion(key);
    if (version === 0 || version === latest.version) {
      // The current state: NOT_FOUND when it holds no values (CONFIG_DELETED for a deleted config).
      if (!latest.hasValues) throw noValues(key, latest);
      return { config: latest, latestVersion: latest.version };
    }
    // Earlier versions stay readable, also those of a deleted config, unless retention pruned them.
    const config = version < latest.version ? await this.deps.store.version(key, version) : undefined;
    if (config === undefined && version < latest.version) await this.refusePruned(key, version);
    if (config?.hasValues === false) {
      const what = isDeleted(config) ? 'it is a deletion' : 'it set a schema before the first values';
      throw new CfgdError(
        'not-found',
        'VERSION_NOT_FOUND',
        `${resourceName(key)} holds no values at version ${version}: ${what}`,
        { metadata: { resource: resourceName(key), version: String(version), latest_version: String(latest.version) } },
      );
    }
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
    this.deps.authorizer.authorize(ctx.principal, 'read', name);
    const startVersion = validateVersion('start_version', input.startVersion);
    const pageSize = validatePageSize(input.pageSize);
    const from = input.pageToken === '' ? Math.max(startVersion, 1) : decodePageToken(input.pageToken, name, 'History');
    const latest = await this.requireVersion(key);
    // A start asked for explicitly must still be kept; without one, History starts at the oldest kept version.
    if (input.pageToken === '' && startVersion > 0) await this.refusePruned(key, startVersion);
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
   * Opens a watch stream: of one config's versions (every version greater
   * than `startVersion`, or the current version first when it is undefined),
   * or, without a config name, of every config of the user (the current
   * version of each, or every version after the known one, then an
   * initial-state-complete marker). Then each new version as it commits, in
   * order, each exactly once, with progress events while idle. Validation,
   * authorization and the store subscription happen before this resolves, so
   * transports can report those errors before they start streaming. The
   * stream ends by throwing `ctx.signal.reason` when the signal aborts, or
   * RESOURCE_EXHAUSTED when its reader falls too far behind. Callers must
   * `close()` it when done, whether or not they iterated it.
   */
  async watch(ctx: RequestContext, input: WatchInput): Promise<WatchStream> {
    const userId = validateName('user_id', input.userId);
    const known = Object.entries(input.knownVersions ?? {});
    let start: WatchStart;
    let resource: string;
    if (input.configName === '') {
      // Every config of the user, present and future: only a grant with `*` for the config covers it.
      resource = `users/${userId}/configs/*`;
      if (input.startVersion !== undefined) {
        throw invalidField(
          'start_version',
          'START_VERSION_WITHOUT_CONFIG',
          'is for config watches; use known_versions',
        );
      }
      start = {
        scope: 'user',
        known: new Map(
          known.map(([name, version]) => [
            validateName(`known_versions[${name}]`, name),
            validateVersion(`known_versions[${name}]`, version),
          ]),
        ),
      };
    } else {
      const key = configKey(userId, input.configName);
      resource = resourceName(key);
      if (known.length > 0) {
        throw invalidField('known_versions', 'KNOWN_VERSIONS_WITH_CONFIG', 'is for user watches; use start_version');
      }
      const after = input.startVersion === undefined ? undefined : validateVersion('start_version', input.startVersion);
      start = { scope: 'config', after };
    }
    this.deps.authorizer.authorize(ctx.principal, 'watch', resource);
    const scope = input.configName === '' ? { userId } : { userId, configName: input.configName };
    const stream = await this.deps.watchHub.open(scope, start, ctx.signal);
    // The stream stays authorized while it lives: a revoked or expired credential, or a lost grant, ends it.
    const release = this.deps.authorizer.guard(ctx.principal, 'watch', resource, (reason) => stream.fail(reason));
    return {
      [Symbol.asyncIterator]: () => stream[Symbol.asyncIterator](),
      ended: stream.ended,
      fail: (reason) => stream.fail(reason),
      close: () => {
        release();
        stream.close();
      },
    };
  }

  /** Each worker's counters (this process's alone when it serves alone), for operators: needs `admin` on every config. */
  async status(ctx: RequestContext): Promise<NodeStatus[]> {
    this.deps.authorizer.authorize(ctx.principal, 'admin', EVERY_CONFIG);
    return this.deps.peers === undefined ? [this.nodeStatus()] : this.deps.peers.collect();
  }

  /** This process's counters and memory. */
  nodeStatus(): NodeStatus {
    const memory = process.memoryUsage();
    return {
      ...this.stats(),
      worker: this.deps.worker ?? 1,
      pid: process.pid,
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
    };
  }

  /** NOT_FOUND (`VERSION_PRUNED`, naming the oldest kept version) when retention pruned `version`. */
  private async refusePruned(key: ConfigKey, version: number): Promise<void> {
    const firstKept = await this.deps.store.firstKeptVersion(key);
    if (version >= firstKept) return;
    throw new CfgdError(
      'not-found',
      'VERSION_PRUNED',
      `${resourceName(key)} no longer keeps version ${version}: retention keeps versions ${firstKept} and later`,
      { metadata: { resource: resourceName(key), version: String(version), first_kept_version: String(firstKept) } },
    );
  }

  /** The latest version, with values or not (History lists a schema set before the first values). */
  private async requireVersion(key: ConfigKey): Promise<ConfigVersion> {
    const latest = await this.deps.store.latest(key);
    if (latest === undefined) {
      throw configNotFound(key);
    }
    return latest;
  }
}
