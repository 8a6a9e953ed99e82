import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CfgdError, ERROR_REASONS, type ErrorReason, type KindAndReason } from '../../src/domain/index.js';
import { toWireError } from '../../src/transport/status.js';

/** The README's table of reasons: reason → the gRPC code it names. */
function readmeTable(): Map<string, string> {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const rows = new Map<string, string>();
  for (const match of readme.matchAll(/^\| `([A-Z_]+)` \| `([A-Z0-9_]+)` \| [^|]+ \|$/gm)) {
    expect(rows.has(match[2]!), `${match[2]} is in the README's table twice`).toBe(false);
    rows.set(match[2]!, match[1]!);
  }
  return rows;
}

describe('the error reason catalog', () => {
  const catalog = Object.entries(ERROR_REASONS) as [ErrorReason, (typeof ERROR_REASONS)[ErrorReason]][];

  it('has UPPER_SNAKE reasons, each documented', () => {
    for (const [reason, { doc }] of catalog) {
      expect(reason).toMatch(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
      expect(doc.length, reason).toBeGreaterThan(10);
    }
  });

  it('is the only source of reasons, each with its own kind (checked by the compiler: npm run typecheck)', () => {
    // @ts-expect-error VERSION_MISMATCH comes with the kind version-mismatch, not not-found
    const wrongKind = new CfgdError('not-found', 'VERSION_MISMATCH', 'x');
    // @ts-expect-error a reason that is not in the catalog
    const unknownReason = new CfgdError('internal', 'NO_SUCH_REASON', 'x');
    // At run time the constructor takes what it is given; the pairing is a compile-time guarantee.
    expect([wrongKind.reason, unknownReason.reason]).toEqual(['VERSION_MISMATCH', 'NO_SUCH_REASON']);
  });

  it("and the README's error table list the same reasons, each with the same code", () => {
    const table = readmeTable();
    const expected = new Map(
      catalog.map(([reason, { kind }]) => [
        reason,
        toWireError(new CfgdError(...([kind, reason] as KindAndReason), ''), () => {}).grpcName,
      ]),
    );
    expect(Object.fromEntries(table)).toEqual(Object.fromEntries(expected));
  });
});
