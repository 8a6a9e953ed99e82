import { describe, expect, it } from 'vitest';
import {
  CfgdError,
  planSetSchema,
  planWrite,
  type ConfigKey,
  type ConfigSchema,
  type ConfigVersion,
  type JsonObject,
  type SchemaCheck,
} from '../../src/domain/index.js';
import { SchemaChecks } from '../../src/app/schemas/schema-checks.js';
import { SchemaCompiler, type CompiledSchema } from '../../src/schema/json-schema.js';

const key: ConfigKey = { userId: 'u', configName: 'c' };
const now = new Date('2026-05-06T07:08:09.000Z');
/** Values whose `n` is above `max` break it. */
const atMost =
  (max: number): SchemaCheck =>
  (values) =>
    typeof values.n === 'number' && values.n > max
      ? [{ path: '/n', description: `must be <= ${max}`, keyword: 'maximum' }]
      : [];

function version(n: number, values: JsonObject, schemaVersion: number, hasValues = true): ConfigVersion {
  return {
    key,
    version: n,
    values,
    hasValues,
    audit: { version: n, createdAt: now, author: 'a', changes: [], operation: 'put', schemaVersion },
  };
}

function schemaOf(schemaVersion: number, schema: JsonObject): ConfigSchema {
  return { schemaVersion, version: 1, schema, createdAt: now, author: 'a' };
}

function thrown(run: () => unknown): CfgdError {
  try {
    run();
  } catch (error: unknown) {
    if (error instanceof CfgdError) return error;
    throw error;
  }
  throw new Error('expected a CfgdError');
}

describe('planWrite under a schema', () => {
  it('refuses values that break the schema, listing each violation against the schema version in force', () => {
    const error = thrown(() =>
      planWrite(key, version(4, { n: 1 }, 2), { values: { n: 50 }, author: 'w', now }, atMost(10)),
    );
    expect(error).toMatchObject({ kind: 'invalid-argument', reason: 'SCHEMA_VIOLATION' });
    expect(error.metadata).toEqual({ schema_version: '2', violations: '1' });
    expect(error.fieldViolations).toEqual([{ field: 'values/n', description: 'must be <= 10' }]);
  });

  it('records the schema version the values were checked against', () => {
    const plan = planWrite(key, version(4, { n: 1 }, 2), { values: { n: 5 }, author: 'w', now }, atMost(10));
    expect(plan.kind === 'create' && plan.next.audit).toMatchObject({ operation: 'put', schemaVersion: 2, version: 5 });
  });

  it('diffs the first values after a version without values against nothing', () => {
    const plan = planWrite(key, version(1, {}, 1, false), { values: {}, author: 'w', now }, atMost(10));
    // `{}` is new values here, not equal to "no values": a version is created.
    expect(plan.kind === 'create' && [plan.next.version, plan.next.hasValues]).toEqual([2, true]);
  });
});

describe('planSetSchema', () => {
  const request = (check: SchemaCheck, more: Partial<Parameters<typeof planSetSchema>[3]> = {}) => ({
    schema: { maximum: 10 },
    check,
    author: 'owner',
    now,
    ...more,
  });

  it('on a config that does not exist: version 1, without values, schema version 1', () => {
    const plan = planSetSchema(key, undefined, undefined, request(atMost(10)));
    expect(plan.kind).toBe('create');
    if (plan.kind !== 'create') return;
    expect(plan.next).toMatchObject({ version: 1, hasValues: false, values: {} });
    expect(plan.next.audit).toMatchObject({ operation: 'set-schema', schemaVersion: 1, changes: [] });
    expect(plan.schema).toEqual({
      schemaVersion: 1,
      version: 1,
      schema: { maximum: 10 },
      createdAt: now,
      author: 'owner',
    });
  });

  it('refuses a schema the current values break (FAILED_PRECONDITION), unless migration values satisfy it', () => {
    const current = version(3, { n: 50 }, 1);
    const error = thrown(() => planSetSchema(key, current, schemaOf(1, {}), request(atMost(10))));
    expect(error).toMatchObject({ kind: 'failed-precondition', reason: 'SCHEMA_INCOMPATIBLE' });
    expect(error.fieldViolations).toEqual([{ field: 'values/n', description: 'must be <= 10' }]);

    const migrated = planSetSchema(key, current, schemaOf(1, {}), request(atMost(10), { migrationValues: { n: 5 } }));
    expect(migrated.kind === 'create' && migrated.next).toMatchObject({
      version: 4,
      values: { n: 5 },
      hasValues: true,
    });
    expect(migrated.kind === 'create' && migrated.next.audit.changes).toEqual([
      { action: 'updated', key: 'n', value: 5, oldValue: 50 },
    ]);

    const bad = thrown(() =>
      planSetSchema(key, current, schemaOf(1, {}), request(atMost(10), { migrationValues: { n: 11 } })),
    );
    expect(bad).toMatchObject({ kind: 'invalid-argument', reason: 'SCHEMA_VIOLATION' });
    expect(bad.fieldViolations).toEqual([{ field: 'migration_values/n', description: 'must be <= 10' }]);
  });

  it('compare-and-set on the schema version and the version', () => {
    const current = version(3, { n: 1 }, 2);
    expect(
      thrown(() => planSetSchema(key, current, schemaOf(2, {}), request(atMost(10), { expectedSchemaVersion: 1 }))),
    ).toMatchObject({ kind: 'version-mismatch', reason: 'SCHEMA_VERSION_MISMATCH' });
    expect(
      thrown(() => planSetSchema(key, current, schemaOf(2, {}), request(atMost(10), { expectedVersion: 2 }))),
    ).toMatchObject({ kind: 'version-mismatch', reason: 'VERSION_MISMATCH' });
    expect(planSetSchema(key, current, schemaOf(2, {}), request(atMost(10), { expectedSchemaVersion: 2 })).kind).toBe(
      'create',
    );
  });

  it('the same schema again changes nothing; with different migration values it is a new version', () => {
    const current = version(3, { n: 1 }, 2);
    const same = schemaOf(2, { maximum: 10 });
    expect(planSetSchema(key, current, same, request(atMost(10))).kind).toBe('unchanged');
    expect(planSetSchema(key, current, same, request(atMost(10), { migrationValues: { n: 1 } })).kind).toBe(
      'unchanged',
    );
    const plan = planSetSchema(key, current, same, request(atMost(10), { migrationValues: { n: 2 } }));
    expect(plan.kind === 'create' && plan.next.audit.schemaVersion).toBe(3);
  });
});

describe('SchemaChecks', () => {
  /** A compiler that counts what it compiles and disposes. */
  function counting(): { compiler: SchemaCompiler; compiled: () => number; disposed: () => number } {
    const real = new SchemaCompiler();
    let compiled = 0;
    let disposed = 0;
    const compiler = Object.create(real) as SchemaCompiler;
    compiler.compile = (schema: unknown): CompiledSchema => {
      compiled++;
      const inner = real.compile(schema);
      return { check: (values) => inner.check(values), dispose: () => (disposed++, inner.dispose()) };
    };
    return { compiler, compiled: () => compiled, disposed: () => disposed };
  }

  it('compiles a committed schema version once and shares it; drops the least recently used past its size', () => {
    const { compiler, compiled, disposed } = counting();
    const checks = new SchemaChecks(compiler, 2);
    const schema = (n: number): ConfigSchema => schemaOf(n, { type: 'object', properties: { n: { maximum: n } } });
    const one = schema(1);
    expect(checks.of(key, one)!({ n: 2 })).toHaveLength(1);
    expect(checks.of(key, schemaOf(1, one.schema))!({ n: 1 })).toEqual([]);
    expect(compiled()).toBe(1);
    checks.of(key, schema(2));
    checks.of(key, one); // 1 is now the most recently used
    checks.of(key, schema(3)); // evicts 2
    expect([compiled(), disposed()]).toEqual([3, 1]);
    checks.of(key, one);
    expect(compiled()).toBe(3);
    checks.of(key, schema(2));
    expect([compiled(), disposed()]).toEqual([4, 2]);
    expect(checks.of(key, undefined)).toBeUndefined();
  });

  it('a proposed schema adopted once committed serves later writes without compiling again', () => {
    const { compiler, compiled, disposed } = counting();
    const checks = new SchemaChecks(compiler, 4);
    const committed = schemaOf(1, { type: 'object', properties: { n: { maximum: 3 } } });
    const proposed = checks.propose(committed.schema);
    expect(checks.adopt(key, committed, proposed)).toBe(true);
    // The store hands later writes its own copy of the same schema version.
    expect(checks.of(key, { ...committed })!({ n: 4 })).toHaveLength(1);
    expect(compiled()).toBe(1);
    // A second adoption of the same version is refused; its caller disposes its copy.
    expect(checks.adopt(key, committed, checks.propose(committed.schema))).toBe(false);
    expect(disposed()).toBe(0);
  });
});
