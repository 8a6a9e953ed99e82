import { invalidField } from '../domain/index.js';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/** `page_size` as AIP-158 reads it: 0 means the default, larger than the maximum means the maximum. */
export function validatePageSize(pageSize: number): number {
  if (!Number.isSafeInteger(pageSize) || pageSize < 0) {
    throw invalidField('page_size', 'PAGE_SIZE_INVALID', `must be a whole number >= 0, got ${pageSize}`);
  }
  if (pageSize === 0) return DEFAULT_PAGE_SIZE;
  return Math.min(pageSize, MAX_PAGE_SIZE);
}

/**
 * Page tokens are opaque to clients: base64url of the next position and the
 * list they belong to (a resource name), so a token of one list is refused by another.
 */
export function encodePageToken(next: number, list: string): string {
  return Buffer.from(JSON.stringify({ v: next, r: list })).toString('base64url');
}

export function decodePageToken(token: string, list: string, rpc: string): number {
  const fields = parseToken(token, list, rpc);
  if (!Number.isSafeInteger(fields.v) || (fields.v as number) < 1) throw notOurs(rpc);
  return fields.v as number;
}

/** A page token of a list ordered by name: the last name of the previous page. */
export function encodeNameToken(lastName: string, list: string): string {
  return Buffer.from(JSON.stringify({ n: lastName, r: list })).toString('base64url');
}

export function decodeNameToken(token: string, list: string, rpc: string): string {
  const fields = parseToken(token, list, rpc);
  if (typeof fields.n !== 'string') throw notOurs(rpc);
  return fields.n;
}

function parseToken(token: string, list: string, rpc: string): { v?: unknown; n?: unknown; r?: unknown } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) throw notOurs(rpc);
  const fields = parsed as { v?: unknown; n?: unknown; r?: unknown };
  if (fields.r !== list) {
    throw invalidField('page_token', 'PAGE_TOKEN_INVALID', `belongs to another list than ${list}`);
  }
  return fields;
}

function notOurs(rpc: string) {
  return invalidField('page_token', 'PAGE_TOKEN_INVALID', `is not a token returned by ${rpc}`);
}
