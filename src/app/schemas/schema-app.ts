import {
  configNotFound,
  CfgdError,
  configKey,
  planSetSchema,
  resourceName,
  validateValues,
  validateVersion,
  type ConfigKey,
  type ConfigSchema,
  type ConfigVersion,
  type JsonObject,
  type Planner,
  type ValueLimits,
} from '../../domain/index.js';
import type { ConfigStore } from '../../store/store.js';
import type { Pruner } from '../retention.js';
import { commit, outcome } from '../writes.js';
import type { Authorizer, RequestContext } from '../context.js';
import { decodePageToken, encodePageToken, validatePageSize } from '../paging.js';
import type { SchemaChecks } from './schema-checks.js';

export interface SchemaAppDeps {
  readonly store: ConfigStore;
  /** Prunes old versions after writes (retention); none: every version is kept. */
  readonly pruner?: Pruner | undefined;
  readonly authorizer: Authorizer;
  readonly schemaChecks: SchemaChecks;
  readonly limits: ValueLimits;
  readonly clock: () => Date;
}

export interface SetSchemaInput {
  readonly userId: string;
  readonly configName: string;
  readonly schema: unknown;
  /** Values to commit with the schema, replacing the current ones; they must satisfy it. */
  readonly migrationValues?: unknown;
  readonly expectedSchemaVersion?: number | undefined;
  readonly expectedVersion?: number | undefined;
  readonly validateOnly?: boolean | undefined;
  /** A UUID naming the request: a retry with it answers the first call's result (AIP-155). */
  readonly requestId?: string | undefined;
}

export interface SetSchemaResult {
  /** The schema in effect after the call. */
  readonly schema: ConfigSchema;
  /** The version the change created (or, unchanged, the current one). */
  readonly config: ConfigVersion;
  /** False when the schema (and values) equalled the current ones and nothing was written. */
  readonly changed: boolean;
}

export interface GetSchemaInput {
  readonly userId: string;
  readonly configName: string;
  /** 0 reads the current schema. */
  readonly schemaVersion: number;
}

export interface GetSchemaResult {
  readonly schema: ConfigSchema;
  readonly latestSchemaVersion: number;
}

export interface SchemaHistoryInput {
  readonly userId: string;
  readonly configName: string;
  readonly startSchemaVersion: number;
  readonly pageSize: number;
  readonly pageToken: string;
}

export interface SchemaHistoryResult {
  readonly schemas: ConfigSchema[];
  readonly nextPageToken: string;
  readonly latestSchemaVersion: number;
}

/**
 * The schema use cases. Setting a schema needs `admin` on the config: a
 * schema is the policy that guards every write, so a credential that may
 * only write values cannot loosen it. Reading schemas needs `read`.
 */
export class SchemaApp {
  constructor(private readonly deps: SchemaAppDeps) {}

  async setSchema(ctx: RequestContext, input: SetSchemaInput): Promise<SetSchemaResult> {
    const key = configKey(input.userId, input.configName);
    this.deps.authorizer.authorize(ctx.principal, 'admin', resourceName(key));
    if (input.schema === undefined || input.schema === null) {
      throw new CfgdError('invalid-argument', 'SCHEMA_INVALID', 'schema: is required (`{}` accepts any values)', {
        metadata: { field: 'schema' },
        fieldViolations: [{ field: 'schema', description: 'is required' }],
      });
    }
    const migrationValues =
      input.migrationValues === undefined || input.migrationValues === null
        ? undefined
        : validateValues(input.migrationValues, this.deps.limits, 'migration_values');
    const expectedSchemaVersion = optionalVersion('expected_schema_version', input.expectedSchemaVersion);
    const expectedVersion = optionalVersion('expected_version', input.expectedVersion);
    // Compiled last, once the rest of the request is valid; disposed unless it becomes the cached
    // check of the schema version it commits.
    const compiled = this.deps.schemaChecks.propose(input.schema);
    let adopted = false;
    try {
      const request = {
        schema: input.schema as JsonObject,
        check: (values: JsonObject) => compiled.check(values),
        migrationValues,
        expectedSchemaVersion,
        expectedVersion,
        author: ctx.principal.id,
        now: this.deps.clock(),
      };
      let before: ConfigSchema | undefined;
      const planner: Planner = (current, currentSchema) => {
        before = currentSchema;
        return planSetSchema(key, current, currentSchema, request);
      };
      const result = await commit(
        this.deps.store,
        key,
        {
          planner,
          validateOnly: input.validateOnly,
          requestId: input.requestId,
          operation: 'set-schema',
          request: {
            schema: request.schema,
            migration_values: migrationValues ?? null,
            expected_schema_version: expectedSchemaVersion ?? null,
            expected_version: expectedVersion ?? null,
          },
        },
        this.deps.pruner,
      );
      if (result.kind === 'replay') return this.replayed(key, result.record.version, result.record.changed);
      if (input.validateOnly !== true && result.kind === 'create' && result.schema !== undefined) {
        // Committed: the check compiled for this request serves the writes that follow.
        adopted = this.deps.schemaChecks.adopt(key, result.schema, compiled);
      }
      return this.result(key, result, before);
    } finally {
      if (!adopted) compiled.dispose();
    }
  }

  async getSchema(ctx: RequestContext, input: GetSchemaInput): Promise<GetSchemaResult> {
    const key = configKey(input.userId, input.configName);
    this.deps.authorizer.authorize(ctx.principal, 'read', resourceName(key));
    const wanted = validateVersion('schema_version', input.schemaVersion);
    const latestSchemaVersion = await this.latestSchemaVersion(key);
    const schemaVersion = wanted === 0 ? latestSchemaVersion : wanted;
    const schema = schemaVersion <= latestSchemaVersion ? await this.deps.store.schema(key, schemaVersion) : undefined;
    if (schema === undefined) {
      const what = wanted === 0 ? 'has no schema' : `has no schema version ${wanted}`;
      throw new CfgdError('not-found', 'SCHEMA_NOT_FOUND', `${resourceName(key)} ${what}`, {
        metadata: {
          resource: resourceName(key),
          schema_version: String(wanted),
          latest_schema_version: String(latestSchemaVersion),
        },
      });
    }
    return { schema, latestSchemaVersion };
  }

  async schemaHistory(ctx: RequestContext, input: SchemaHistoryInput): Promise<SchemaHistoryResult> {
    const key = configKey(input.userId, input.configName);
    const list = `${resourceName(key)}/schema`;
    this.deps.authorizer.authorize(ctx.principal, 'read', resourceName(key));
    const start = validateVersion('start_schema_version', input.startSchemaVersion);
    const pageSize = validatePageSize(input.pageSize);
    const from = input.pageToken === '' ? Math.max(start, 1) : decodePageToken(input.pageToken, list, 'SchemaHistory');
    const latestSchemaVersion = await this.latestSchemaVersion(key);
    const schemas =
      from > latestSchemaVersion
        ? []
        : await this.deps.store.schemas(key, from, Math.min(pageSize, latestSchemaVersion - from + 1));
    const last = schemas.at(-1);
    return {
      schemas,
      nextPageToken:
        last !== undefined && last.schemaVersion < latestSchemaVersion
          ? encodePageToken(last.schemaVersion + 1, list)
          : '',
      latestSchemaVersion,
    };
  }

  /** A retried SetSchema: the version its first call left, with the schema in force there. */
  private async replayed(key: ConfigKey, version: number, changed: boolean): Promise<SetSchemaResult> {
    const { config } = await outcome(this.deps.store, key, {
      kind: 'replay',
      record: { requestId: '', fingerprint: '', version, changed },
    });
    const schema = await this.deps.store.schema(key, config.audit.schemaVersion);
    if (schema === undefined) throw new Error(`${resourceName(key)} version ${version} names a missing schema`);
    return { schema, config, changed };
  }

  /** The config's current schema version (0: none); NOT_FOUND when the config has never been written. */
  private async latestSchemaVersion(key: ConfigKey): Promise<number> {
    const latest = await this.deps.store.latest(key);
    if (latest === undefined) {
      throw configNotFound(key);
    }
    return latest.audit.schemaVersion;
  }

  private result(key: ConfigKey, plan: ReturnType<Planner>, before: ConfigSchema | undefined): SetSchemaResult {
    if (plan.kind === 'create' && plan.schema !== undefined) {
      return { schema: plan.schema, config: plan.next, changed: true };
    }
    if (plan.kind === 'unchanged' && before !== undefined)
      return { schema: before, config: plan.current, changed: false };
    // planSetSchema creates a version with its schema, or answers unchanged only where the schema is the current one.
    throw new Error(`a schema change of ${resourceName(key)} planned neither a schema nor an unchanged one`);
  }
}

function optionalVersion(field: string, value: number | undefined): number | undefined {
  return value === undefined ? undefined : validateVersion(field, value);
}
