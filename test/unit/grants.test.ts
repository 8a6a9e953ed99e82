import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  allows,
  CfgdError,
  parseGrant,
  validateGrant,
  validateGrants,
  type Grant,
  type Verb,
} from '../../src/domain/index.js';

/** The meaning of a grant, written the plain way: segment by segment, `*` matches any one name. */
function reference(grants: readonly Grant[], verb: Verb, resource: string): boolean {
  return grants.some((grant) => {
    if (grant.verb !== verb && grant.verb !== 'admin') return false;
    const have = grant.resource.split('/');
    const want = resource.split('/');
    return have.length === want.length && have.every((segment, i) => segment === '*' || segment === want[i]);
  });
}

function reasonOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error: unknown) {
    return error instanceof CfgdError ? error.reason : 'not a CfgdError';
  }
  return undefined;
}

describe('grants', () => {
  it('allow a verb on the configs their pattern covers, and admin allows every verb', () => {
    const grants: Grant[] = [
      { verb: 'read', resource: 'users/alice/configs/*' },
      { verb: 'write', resource: 'users/alice/configs/app' },
      { verb: 'admin', resource: 'users/ops/configs/*' },
    ];
    expect(allows(grants, 'read', 'users/alice/configs/anything')).toBe(true);
    expect(allows(grants, 'write', 'users/alice/configs/app')).toBe(true);
    expect(allows(grants, 'write', 'users/alice/configs/app2')).toBe(false);
    expect(allows(grants, 'write', 'users/alice/configs/ap')).toBe(false);
    expect(allows(grants, 'watch', 'users/alice/configs/app')).toBe(false);
    expect(allows(grants, 'read', 'users/alicex/configs/app')).toBe(false);
    expect(allows(grants, 'read', 'users/alic/configs/app')).toBe(false);
    // A user watch asks for every config: only `*` in the pattern covers it.
    expect(allows(grants, 'read', 'users/alice/configs/*')).toBe(true);
    expect(allows(grants, 'write', 'users/alice/configs/*')).toBe(false);
    for (const verb of ['read', 'write', 'watch', 'admin'] as const) {
      expect(allows(grants, verb, 'users/ops/configs/x')).toBe(true);
    }
    expect(allows(grants, 'admin', 'users/*/configs/*')).toBe(false);
    expect(allows([{ verb: 'admin', resource: 'users/*/configs/*' }], 'admin', 'users/*/configs/*')).toBe(true);
    expect(allows([], 'read', 'users/a/configs/b')).toBe(false);
  });

  it('match exactly what the plain segment-by-segment reading matches', () => {
    const name = fc.constantFrom('a', 'ab', 'b', '*', 'a.b', 'a-b', 'ba', '');
    const resourceOf = (u: string, c: string) => `users/${u}/configs/${c}`;
    const grant = fc.record({
      verb: fc.constantFrom<Verb>('read', 'write', 'watch', 'admin'),
      resource: fc.oneof(
        fc.tuple(name, name).map(([u, c]) => resourceOf(u, c)),
        fc.constantFrom('users/a/configs', 'users/a/configs/b/c', 'users/*', '*'),
      ),
    });
    const resource = fc.oneof(
      fc.tuple(name, name).map(([u, c]) => resourceOf(u, c)),
      fc.constantFrom('users/a/configs', 'users/a/configs/b/c', 'users/a'),
    );
    fc.assert(
      fc.property(
        fc.array(grant, { maxLength: 4 }),
        fc.constantFrom<Verb>('read', 'write', 'watch', 'admin'),
        resource,
        (grants, verb, wanted) => {
          expect(allows(grants, verb, wanted)).toBe(reference(grants, verb, wanted));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('are validated: a known verb on users/{user_id}/configs/{config_name}, names or *', () => {
    expect(validateGrant('g', 'read', 'users/a/configs/*')).toEqual({ verb: 'read', resource: 'users/a/configs/*' });
    expect(parseGrant('g', 'watch:users/*/configs/app')).toEqual({ verb: 'watch', resource: 'users/*/configs/app' });
    for (const [verb, resource] of [
      ['delete', 'users/a/configs/b'],
      ['READ', 'users/a/configs/b'],
      ['read', 'users/a/configs'],
      ['read', 'users/a/configs/b/c'],
      ['read', 'accounts/a/configs/b'],
      ['read', 'users/a b/configs/c'],
      ['read', 'users/a*/configs/c'],
      ['read', 'users//configs/c'],
      ['read', 42],
    ] as const) {
      expect(
        reasonOf(() => validateGrant('g', verb, resource)),
        `${verb} ${String(resource)}`,
      ).toMatch(/^(GRANT_INVALID|NAME_INVALID|NAME_REQUIRED)$/);
    }
    expect(reasonOf(() => parseGrant('g', 'read'))).toBe('GRANT_INVALID');
    expect(
      validateGrants('g', [
        { verb: 'read', resource: 'users/a/configs/*' },
        { verb: 'read', resource: 'users/a/configs/*' },
      ]),
    ).toHaveLength(1);
    expect(
      reasonOf(() =>
        validateGrants(
          'g',
          Array.from({ length: 101 }, () => ({ verb: 'read', resource: 'users/a/configs/*' })),
        ),
      ),
    ).toBe('GRANT_INVALID');
  });
});
