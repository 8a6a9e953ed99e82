import { describe, expect, it } from 'vitest';
import {
  chooseCopy,
  chooseDatabase,
  isQuarantineOf,
  quarantineName,
  SCHEMA,
  schemaId,
} from '../../src/store/rethinkdb/schema.js';

const A = '0a000000-0000-4000-8000-000000000000';
const B = '0b000000-0000-4000-8000-000000000000';
const C = '0c000000-0000-4000-8000-000000000000';

describe('choosing the copy of a duplicated table to keep', () => {
  it('keeps the smallest id when every copy is empty, whatever the order found', () => {
    expect(
      chooseCopy(
        [
          { id: C, empty: true },
          { id: A, empty: true },
          { id: B, empty: true },
        ],
        undefined,
      ),
    ).toEqual({
      kind: 'keep',
      keep: A,
      drop: [B, C],
    });
  });

  it('keeps the only copy holding documents, even with a larger id', () => {
    expect(
      chooseCopy(
        [
          { id: A, empty: true },
          { id: C, empty: false },
        ],
        undefined,
      ),
    ).toEqual({ kind: 'keep', keep: C, drop: [A] });
  });

  it('keeps the certified copy, the one nodes have used', () => {
    expect(
      chooseCopy(
        [
          { id: A, empty: true },
          { id: B, empty: false },
        ],
        B,
      ),
    ).toEqual({ kind: 'keep', keep: B, drop: [A] });
    expect(
      chooseCopy(
        [
          { id: A, empty: true },
          { id: B, empty: true },
        ],
        B,
      ),
    ).toEqual({ kind: 'keep', keep: B, drop: [A] });
  });

  it('ignores a certified id that is no longer among the copies', () => {
    expect(
      chooseCopy(
        [
          { id: B, empty: true },
          { id: C, empty: true },
        ],
        A,
      ),
    ).toEqual({ kind: 'keep', keep: B, drop: [C] });
  });

  it('never drops a copy holding documents: two such copies, or one beside the certified, are refused', () => {
    const both = chooseCopy(
      [
        { id: A, empty: false },
        { id: B, empty: false },
      ],
      undefined,
    );
    expect(both.kind).toBe('refuse');
    expect(both.kind === 'refuse' && both.why).toMatch(/more than one copy/);
    expect(
      chooseCopy(
        [
          { id: A, empty: true },
          { id: B, empty: false },
        ],
        A,
      ).kind,
    ).toBe('refuse');
  });

  it('keeps the copy of a duplicated database that holds tables; refuses when several do', () => {
    expect(
      chooseDatabase([
        { id: B, tables: 0 },
        { id: A, tables: 0 },
      ]),
    ).toEqual({ kind: 'keep', keep: A, drop: [B] });
    expect(
      chooseDatabase([
        { id: A, tables: 0 },
        { id: B, tables: 3 },
      ]),
    ).toEqual({ kind: 'keep', keep: B, drop: [A] });
    expect(
      chooseDatabase([
        { id: A, tables: 1 },
        { id: B, tables: 3 },
      ]).kind,
    ).toBe('refuse');
  });
});

describe('the schema', () => {
  it('names set-aside copies uniquely by id, recognisably by table', () => {
    const aside = quarantineName('config_versions', A);
    expect(aside).toBe('config_versions__dup_0a0000000000');
    expect(isQuarantineOf('config_versions', aside)).toBe(true);
    expect(isQuarantineOf('config_heads', aside)).toBe(false);
    expect(quarantineName('config_versions', B)).not.toBe(aside);
  });

  it('has an id that changes with any table or index, not with index order', () => {
    const id = schemaId(SCHEMA);
    expect(schemaId([...SCHEMA, { name: 'extra', indexes: [] }])).not.toBe(id);
    expect(schemaId(SCHEMA.map((t) => ({ ...t, indexes: [...t.indexes, 'x'] })))).not.toBe(id);
    expect(schemaId([{ name: 't', indexes: ['a', 'b'] }])).toBe(schemaId([{ name: 't', indexes: ['b', 'a'] }]));
  });
});
