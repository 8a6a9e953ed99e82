import {
  BINDINGS,
  HEADS,
  HEADS_BY_USER,
  INSTANCE_REPORTS,
  REPORTS_BY_INSTANCE,
  REPORTS_BY_TIME,
  TOKENS,
  TOKENS_BY_SECRET_HASH,
  VERSIONS,
  VERSIONS_BY_REQUEST,
  VERSIONS_BY_SCHEMA,
  REQUESTS,
  SCHEMA_ARCHIVE,
} from './queries.js';

/** A table cfgd needs, with its secondary indexes (each on the field of the same name). */
export interface TableSpec {
  readonly name: string;
  readonly indexes: readonly string[];
}

/**
 * cfgd's RethinkDB schema. Every table or index cfgd needs is declared here
 * and nowhere else: bootstrap creates what is missing under its lease, and a
 * change here (a new table, a new index) is applied by the first node that
 * starts with it.
 */
export const SCHEMA: readonly TableSpec[] = [
  { name: VERSIONS, indexes: [VERSIONS_BY_SCHEMA, VERSIONS_BY_REQUEST] },
  { name: HEADS, indexes: [HEADS_BY_USER] },
  { name: TOKENS, indexes: [TOKENS_BY_SECRET_HASH] },
  { name: BINDINGS, indexes: [] },
  { name: REQUESTS, indexes: [] },
  { name: SCHEMA_ARCHIVE, indexes: [] },
  { name: INSTANCE_REPORTS, indexes: [REPORTS_BY_INSTANCE, REPORTS_BY_TIME] },
];

/** Identifies a schema, so that a node can tell whether the one in place is its own. */
export function schemaId(schema: readonly TableSpec[]): string {
  return JSON.stringify(schema.map((table) => [table.name, [...table.indexes].sort()]));
}

/** One copy of a table that exists several times under one name, as bootstrap found it. */
export interface TableCopy {
  readonly id: string;
  readonly empty: boolean;
}

/** What to do about a table that exists several times under one name. */
export type CopyDecision =
  | { readonly kind: 'keep'; readonly keep: string; readonly drop: readonly string[] }
  | { readonly kind: 'refuse'; readonly why: string };

/**
 * Chooses which copy of a duplicated table to keep: the one cfgd certified
 * (nodes have used it), else the only one holding documents, else the one
 * with the smallest id (all are empty; any choice loses nothing). Only empty
 * copies are ever dropped: when documents are in more than one copy, or in a
 * copy other than the certified one, the choice is refused.
 */
export function chooseCopy(copies: readonly TableCopy[], certified: string | undefined): CopyDecision {
  const ids = copies.map((copy) => copy.id).sort();
  const holding = copies.filter((copy) => !copy.empty).map((copy) => copy.id);
  const keep = certified !== undefined && ids.includes(certified) ? certified : (holding[0] ?? ids[0]);
  if (keep === undefined) return { kind: 'refuse', why: 'there is no copy to keep' };
  const conflicting = holding.filter((id) => id !== keep);
  if (conflicting.length > 0) {
    return {
      kind: 'refuse',
      why: `documents are in more than one copy (${[keep, ...conflicting].filter((id) => holding.includes(id)).join(', ')})`,
    };
  }
  return { kind: 'keep', keep, drop: ids.filter((id) => id !== keep) };
}

/** One copy of a database that exists several times under one name: its id and how many tables it holds. */
export interface DatabaseCopy {
  readonly id: string;
  readonly tables: number;
}

/** Keeps the copy of a duplicated database that holds tables (else the smallest id); refuses when several do. */
export function chooseDatabase(copies: readonly DatabaseCopy[]): CopyDecision {
  return chooseCopy(
    copies.map((copy) => ({ id: copy.id, empty: copy.tables === 0 })),
    undefined,
  );
}

/** The name a copy of a duplicated table takes while it is counted: unique, and tied to its id. */
export function quarantineName(table: string, id: string): string {
  return `${table}__dup_${id.replace(/-/g, '').slice(0, 12)}`;
}

/** True for the names `quarantineName` gives copies of `table`. */
export function isQuarantineOf(table: string, name: string): boolean {
  return name.startsWith(`${table}__dup_`);
}
