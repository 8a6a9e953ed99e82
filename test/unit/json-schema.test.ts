import { describe, expect, it } from 'vitest';
import { CfgdError, schemaViolation } from '../../src/domain/index.js';
import { MAX_VIOLATIONS, SchemaCompiler } from '../../src/schema/json-schema.js';

const compiler = new SchemaCompiler({ maxBytes: 16 * 1024, maxDepth: 16 });

function refusal(schema: unknown): { reason: string; message: string } {
  try {
    compiler.compile(schema);
  } catch (error: unknown) {
    if (!(error instanceof CfgdError)) throw error;
    return { reason: error.reason, message: error.message };
  }
  throw new Error('the schema was accepted');
}

const service = {
  type: 'object',
  properties: {
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    host: { type: 'string', format: 'hostname' },
    admin: { type: 'string', format: 'email' },
    tags: { type: 'array', items: { type: 'string', pattern: '^[a-z]+$' } },
    limits: { $ref: '#/$defs/limits' },
  },
  required: ['port', 'host'],
  additionalProperties: false,
  $defs: { limits: { type: 'object', properties: { rps: { type: 'number', exclusiveMinimum: 0 } } } },
};

describe('JSON Schemas', () => {
  it('accept values that satisfy them', () => {
    const schema = compiler.compile(service);
    expect(schema.check({ port: 80, host: 'api.example.com', tags: ['a', 'b'], limits: { rps: 5 } })).toEqual([]);
  });

  it('list every violation with a JSON pointer into the values', () => {
    const schema = compiler.compile(service);
    const violations = schema.check({
      port: 'eighty',
      admin: 'not-an-email',
      tags: ['ok', 'NOT'],
      limits: { rps: 0 },
      extra: true,
    });
    const byPath = Object.fromEntries(violations.map((v) => [v.path, v.keyword]));
    expect(byPath).toEqual({
      '/port': 'type',
      '/host': 'required',
      '/admin': 'format',
      '/tags/1': 'pattern',
      '/limits/rps': 'exclusiveMinimum',
      '/extra': 'additionalProperties',
    });
    expect(violations.find((v) => v.path === '/port')?.description).toBe('must be integer');
  });

  it('find every violation; the error lists MAX_VIOLATIONS of them and counts them all', () => {
    const schema = compiler.compile({ type: 'object', additionalProperties: { type: 'integer' } });
    const values = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`k/${i}`, 'x']));
    const violations = schema.check(values);
    expect(violations).toHaveLength(150);
    expect(violations[0]?.path).toBe('/k~10');
    const error = schemaViolation(violations, 1);
    expect(error.fieldViolations).toHaveLength(MAX_VIOLATIONS);
    expect(error.metadata.violations).toBe('150');
    expect(error.message).toMatch(/\(and 149 more\)$/);
  });

  it('run patterns in linear time: a catastrophically backtracking pattern answers at once', () => {
    // With a backtracking engine this check takes 2^60 steps and the test times out.
    const schema = compiler.compile({ type: 'object', properties: { s: { type: 'string', pattern: '^(a+)+$' } } });
    const evil = `${'a'.repeat(60)}!`;
    expect(schema.check({ s: evil }).map((v) => v.keyword)).toEqual(['pattern']);
    expect(schema.check({ s: 'a'.repeat(60) })).toEqual([]);
    const keys = compiler.compile({ type: 'object', patternProperties: { '^(x+x+)+y$': { type: 'integer' } } });
    expect(keys.check({ [`${'x'.repeat(60)}y`]: 'no' }).map((v) => v.path)).toEqual([`/${'x'.repeat(60)}y`]);
    expect(keys.check({ [`${'x'.repeat(60)}!`]: 'not matched' })).toEqual([]);
  });

  it('refuse patterns that need backtracking (backreferences, lookahead)', () => {
    expect(refusal({ type: 'string', pattern: '^(a)\\1$' })).toMatchObject({ reason: 'SCHEMA_INVALID' });
    expect(refusal({ type: 'string', pattern: '^(?=a)a$' }).message).toMatch(/linear time/);
  });

  it('refuse references outside the schema: nothing is fetched or read', () => {
    for (const ref of ['https://example.com/schema.json', 'file:///etc/passwd', 'other.json#/x', '/etc/passwd']) {
      expect(refusal({ type: 'object', properties: { a: { $ref: ref } } })).toMatchObject({
        reason: 'SCHEMA_INVALID',
        message: expect.stringContaining('points outside the schema') as string,
      });
    }
    expect(refusal({ $ref: '#/$defs/missing' }).reason).toBe('SCHEMA_INVALID');
  });

  it('refuse what is not a usable draft 2020-12 schema', () => {
    expect(refusal([]).reason).toBe('SCHEMA_INVALID');
    expect(refusal('string').reason).toBe('SCHEMA_INVALID');
    expect(refusal({ type: 'integr' }).reason).toBe('SCHEMA_INVALID');
    expect(refusal({ type: 'string', format: 'no-such-format' }).message).toMatch(/format/);
    expect(refusal({ type: 'object', propertiez: {} }).message).toMatch(/propertiez/);
    expect(refusal({ description: 'x'.repeat(20_000) }).message).toMatch(/larger than 16384 bytes/);
    let deep: object = { type: 'object' };
    for (let i = 0; i < 20; i++) deep = { type: 'object', properties: { a: deep } };
    expect(refusal(deep).message).toMatch(/deeper than 16/);
  });

  it('turn violations into one INVALID_ARGUMENT listing each with its field', () => {
    const error = schemaViolation(
      [
        { path: '/port', description: 'must be integer', keyword: 'type' },
        { path: '/host', description: "must have required property 'host'", keyword: 'required' },
      ],
      3,
    );
    expect(error).toMatchObject({ kind: 'invalid-argument', reason: 'SCHEMA_VIOLATION' });
    expect(error.message).toBe('values do not satisfy schema version 3: /port must be integer (and 1 more)');
    expect(error.fieldViolations.map((v) => v.field)).toEqual(['values/port', 'values/host']);
  });
});
