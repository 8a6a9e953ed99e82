import type { BindingRecord, Grant, TokenRecord } from '../domain/index.js';

/**
 * How both backends store a token: grants as JSON text (as values are for versions), times in
 * epoch ms, null when absent. Never the secret, only its hash.
 */
export interface StoredTokenRow {
  readonly id: string;
  readonly secret_hash: string;
  readonly name: string;
  readonly grants_json: string;
  readonly created_at: number;
  readonly created_by: string;
  readonly expires_at: number | null;
  readonly revoked_at: number | null;
  readonly revoked_by: string | null;
}

/** How both backends store a binding: grants as JSON text, the time in epoch ms. */
export interface StoredBindingRow {
  readonly principal: string;
  readonly grants_json: string;
  readonly updated_at: number;
  readonly updated_by: string;
}

export function toStoredToken(token: TokenRecord): StoredTokenRow {
  return {
    id: token.id,
    secret_hash: token.secretHash,
    name: token.name,
    grants_json: grantsJson(token.grants),
    created_at: token.createdAt.getTime(),
    created_by: token.createdBy,
    expires_at: token.expiresAt?.getTime() ?? null,
    revoked_at: token.revokedAt?.getTime() ?? null,
    revoked_by: token.revokedBy ?? null,
  };
}

export function toTokenRecord(row: StoredTokenRow): TokenRecord {
  // `?? null`: a row written without these fields (a RethinkDB document) reads as one written with nulls.
  const expiresAt = (row.expires_at as number | null | undefined) ?? null;
  const revokedAt = (row.revoked_at as number | null | undefined) ?? null;
  const revokedBy = (row.revoked_by as string | null | undefined) ?? null;
  return {
    id: row.id,
    name: row.name,
    secretHash: row.secret_hash,
    grants: parseGrants(row.grants_json),
    createdAt: new Date(row.created_at),
    createdBy: row.created_by,
    ...(expiresAt === null ? {} : { expiresAt: new Date(expiresAt) }),
    ...(revokedAt === null ? {} : { revokedAt: new Date(revokedAt) }),
    ...(revokedBy === null ? {} : { revokedBy }),
  };
}

export function toStoredBinding(binding: BindingRecord): StoredBindingRow {
  return {
    principal: binding.principal,
    grants_json: grantsJson(binding.grants),
    updated_at: binding.updatedAt.getTime(),
    updated_by: binding.updatedBy,
  };
}

export function toBindingRecord(row: StoredBindingRow): BindingRecord {
  return {
    principal: row.principal,
    grants: parseGrants(row.grants_json),
    updatedAt: new Date(row.updated_at),
    updatedBy: row.updated_by,
  };
}

/** The grants' own fields only, in order. */
function grantsJson(grants: readonly Grant[]): string {
  return JSON.stringify(grants.map((grant) => ({ verb: grant.verb, resource: grant.resource })));
}

function parseGrants(json: string): Grant[] {
  // Stored only from validated `Grant`s.
  return JSON.parse(json) as Grant[];
}
