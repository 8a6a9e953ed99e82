import {
  configNotFound,
  blameEntries,
  CfgdError,
  checkChain,
  configKey,
  invalidField,
  isDeleted,
  noValues,
  planDelete,
  planPatch,
  planRollback,
  planUndelete,
  resourceName,
  validateName,
  validateValues,
  validateVersion,
  type BlameEntry,
  type ChainBreak,
  type ConfigKey,
  type ConfigVersion,
  type JsonObject,
  type JsonValue,
  type Planner,
  type ValueLimits,
} from '../domain/index.js';
import type { ConfigStore } from '../store/store.js';
import type { Pruner } from './retention.js';
import type { Authorizer, RequestContext } from './context.js';
import { decodeNameToken, encodeNameToken, validatePageSize } from './paging.js';
import type { SchemaChecks } from './schemas/schema-checks.js';
import { commit, outcome } from './writes.js';

export interface LifecycleAppDeps {
  readonly store: ConfigStore;
  /** Prunes old versions after writes (retention); none: every version is kept. */
  readonly pruner?: Pruner | undefined;
  readonly authorizer: Authorizer;
  readonly schemaChecks: SchemaChecks;
  readonly limits: ValueLimits;
  readonly clock: () => Date;
  /** The server's limit on kept versions (`--max-versions`; 0: every version). */
  readonly defaultMaxVersions: number;
}

/** What every lifecycle write takes besides the config: compare-and-set and dry run. */
interface WriteOptions {
  readonly userId: string;
  readonly configName: string;
  readonly expectedVersion?: number | undefined;
  readonly validateOnly?: boolean | undefined;
  /** A UUID naming the request: a retry with it answers the first call's result (AIP-155). */
  readonly requestId?: string | undefined;
}

export interface PatchInput extends WriteOptions {
  readonly patch: unknown;
}

export interface RollbackInput extends WriteOptions {
  readonly toVersion: number;
}

export interface WriteResult {
  readonly config: ConfigVersion;
  readonly changed: boolean;
}

export interface RetentionResult {
  readonly maxVersions: number | undefined;
  readonly effectiveMaxVersions: number;
  readonly firstKept: number;
  readonly latest: number;
}

export interface BlameResult {
  readonly version: number;
  readonly keys: BlameEntry[];
}

export interface VerifyResult {
  readonly intact: boolean;
  readonly firstBad: ChainBreak | undefined;
  readonly firstChecked: number;
  readonly latest: number;
}

/** Versions read per step of a chain check. */
const VERIFY_CHUNK = 256;

export interface ListInput {
  readonly userId: string;
  readonly pageSize: number;
  readonly pageToken: string;
  readonly namePrefix: string;
  readonly showDeleted: boolean;
}

export interface ListResult {
  readonly configs: ConfigVersion[];
  readonly nextPageToken: string;
}

/**
 * The config lifecycle beyond Put: list, patch, rollback, delete and
 * undelete. Each write is a plan of the domain run through the store like a
 * Put (atomic, serialized, checked against the schema in force), and needs
 * `write` on the config; listing needs `read` on at least one config of the
 * user and returns only those the caller may read.
 */
export class LifecycleApp {
  constructor(private readonly deps: LifecycleAppDeps) {}

  async list(ctx: RequestContext, input: ListInput): Promise<ListResult> {
    const userId = validateName('user_id', input.userId);
    this.deps.authorizer.authorizeSome(ctx.principal, 'read', userId);
    const pageSize = validatePageSize(input.pageSize);
    if (input.namePrefix !== '' && !/^[A-Za-z0-9._-]{1,128}$/.test(input.namePrefix)) {
      throw invalidField('name_prefix', 'NAME_INVALID', 'must be the start of a config name: A-Z a-z 0-9 . _ -');
    }
    const list = `users/${userId}/configs`;
    const after = input.pageToken === '' ? '' : decodeNameToken(input.pageToken, list, 'ListConfigs');
    const all = await this.deps.store.listLatest(userId);
    const visible = all.filter(
      (config) =>
        config.key.configName > after &&
        config.key.configName.startsWith(input.namePrefix) &&
        (input.showDeleted || !isDeleted(config)) &&
        // A config with a schema but no values yet is not listed: Get does not find it either.
        (config.hasValues || isDeleted(config)) &&
        this.deps.authorizer.allowed(ctx.principal, 'read', resourceName(config.key)),
    );
    const page = visible.slice(0, pageSize);
    const last = page.at(-1);
    return {
      configs: page,
      nextPageToken: visible.length > pageSize && last !== undefined ? encodeNameToken(last.key.configName, list) : '',
    };
  }

  async patch(ctx: RequestContext, input: PatchInput): Promise<WriteResult> {
    const key = this.authorized(ctx, input);
    const patch = validateValues(input.patch, this.deps.limits, 'patch');
    const request = this.request(ctx, input);
    const checks = this.deps.schemaChecks;
    const limits = this.deps.limits;
    const planner: Planner = (current, schema) => {
      const plan = planPatch(key, current, { ...request, patch }, checks.of(key, schema));
      // The merged values must fit the limits like any values written.
      if (plan.kind === 'create') validateValues(plan.next.values, limits);
      return plan;
    };
    return this.run(key, input, planner, 'patch', { patch });
  }

  async rollback(ctx: RequestContext, input: RollbackInput): Promise<WriteResult> {
    const key = this.authorized(ctx, input);
    const toVersion = validateVersion('to_version', input.toVersion);
    if (toVersion === 0) throw invalidField('to_version', 'VERSION_INVALID', 'is required: the version to restore');
    const request = this.request(ctx, input);
    // Versions never change, so the target is read once, before the write.
    const target = await this.deps.store.version(key, toVersion);
    if (target === undefined) {
      throw new CfgdError('not-found', 'VERSION_NOT_FOUND', `${resourceName(key)} has no version ${toVersion}`, {
        metadata: { resource: resourceName(key), version: String(toVersion) },
      });
    }
    const checks = this.deps.schemaChecks;
    const planner: Planner = (current, schema) => planRollback(key, current, target, request, checks.of(key, schema));
    return this.run(key, input, planner, 'rollback', { to_version: toVersion });
  }

  async delete(ctx: RequestContext, input: WriteOptions): Promise<WriteResult> {
    const key = this.authorized(ctx, input);
    const request = this.request(ctx, input);
    return this.run(key, input, (current) => planDelete(key, current, request), 'delete', {});
  }

  async undelete(ctx: RequestContext, input: WriteOptions): Promise<WriteResult> {
    const key = this.authorized(ctx, input);
    const request = this.request(ctx, input);
    const checks = this.deps.schemaChecks;
    const planner: Planner = (current, schema) => planUndelete(key, current, request, checks.of(key, schema));
    return this.run(key, input, planner, 'undelete', {});
  }

  /**
   * Sets the config's own limit on kept versions (undefined: the server's),
   * then prunes to it in the background. Needs `admin`: pruning removes audit
   * history, which a credential that may only write values must not decide.
   */
  async setRetention(
    ctx: RequestContext,
    input: { userId: string; configName: string; maxVersions?: number | undefined },
  ): Promise<RetentionResult> {
    const key = configKey(input.userId, input.configName);
    this.deps.authorizer.authorize(ctx.principal, 'admin', resourceName(key));
    const max = input.maxVersions;
    if (max !== undefined && (!Number.isSafeInteger(max) || max < 0)) {
      throw invalidField('max_versions', 'MAX_VERSIONS_INVALID', `must be a whole number >= 0, got ${max}`);
    }
    const { store } = this.deps;
    if (!(await store.setMaxVersions(key, max))) throw noValues(key, undefined);
    const latest = await store.latest(key);
    if (latest !== undefined) this.deps.pruner?.written(key, latest.version);
    const retention = await store.retention(key);
    return {
      maxVersions: max,
      effectiveMaxVersions: max ?? this.deps.defaultMaxVersions,
      firstKept: retention?.firstKept ?? 1,
      latest: latest?.version ?? 0,
    };
  }

  /** Who last set each key of the current values: read from the latest version alone. */
  async blame(ctx: RequestContext, input: { userId: string; configName: string }): Promise<BlameResult> {
    const key = configKey(input.userId, input.configName);
    this.deps.authorizer.authorize(ctx.principal, 'read', resourceName(key));
    const latest = await this.deps.store.latest(key);
    if (latest === undefined || !latest.hasValues) throw noValues(key, latest);
    return { version: latest.version, keys: blameEntries(latest) };
  }

  /**
   * Recomputes the hash chain of the config's kept history, from the oldest
   * kept version (whose stored previous hash is taken as given) to the latest
   * as of the first read, and answers the first version that fails it.
   */
  async verifyHistory(ctx: RequestContext, input: { userId: string; configName: string }): Promise<VerifyResult> {
    const key = configKey(input.userId, input.configName);
    this.deps.authorizer.authorize(ctx.principal, 'read', resourceName(key));
    const { store } = this.deps;
    const latest = await store.latest(key);
    if (latest === undefined) {
      throw configNotFound(key);
    }
    const first = await store.firstKeptVersion(key);
    // The schemas as stored now (`schemas` reads the database; `schema` may answer from a cache), by
    // the version that set each.
    const schemas = new Map<number, JsonObject>();
    for (let from = 1; from <= latest.audit.schemaVersion;) {
      const page = await store.schemas(key, from, VERIFY_CHUNK);
      for (const schema of page) schemas.set(schema.version, schema.schema);
      if (page.length < VERIFY_CHUNK) break;
      from = page.at(-1)!.schemaVersion + 1;
    }
    let previous: ConfigVersion | undefined;
    for (let after = first - 1; after < latest.version;) {
      const run = (await store.versionsAfter(key, after, VERIFY_CHUNK)).filter((v) => v.version <= latest.version);
      if (run.length === 0) break;
      const broken = checkChain(run, (version) => schemas.get(version.version), previous);
      if (broken !== undefined) return { intact: false, firstBad: broken, firstChecked: first, latest: latest.version };
      previous = run.at(-1);
      after = previous!.version;
    }
    return { intact: true, firstBad: undefined, firstChecked: first, latest: latest.version };
  }

  /** Commits a write (or plans it, for a dry run), recognising a retry by its request id. */
  private async run(
    key: ConfigKey,
    input: WriteOptions,
    planner: Planner,
    operation: string,
    fields: Record<string, JsonValue>,
  ): Promise<WriteResult> {
    const { store } = this.deps;
    const request = { ...fields, expected_version: input.expectedVersion ?? null };
    const write = { planner, validateOnly: input.validateOnly, requestId: input.requestId, operation, request };
    return outcome(store, key, await commit(store, key, write, this.deps.pruner));
  }

  /** The config's key, once the caller may write it (before any lookup). */
  private authorized(ctx: RequestContext, input: WriteOptions): ConfigKey {
    const key = configKey(input.userId, input.configName);
    this.deps.authorizer.authorize(ctx.principal, 'write', resourceName(key));
    return key;
  }

  private request(ctx: RequestContext, input: WriteOptions) {
    return {
      expectedVersion:
        input.expectedVersion === undefined ? undefined : validateVersion('expected_version', input.expectedVersion),
      author: ctx.principal.id,
      now: this.deps.clock(),
    };
  }
}
