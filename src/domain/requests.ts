import { createHash } from 'node:crypto';
import { CfgdError, invalidField } from './errors.js';
import { resourceName, type ConfigKey } from './names.js';
import type { JsonValue } from './values.js';

/**
 * What a store remembers of a write that carried a request id (AIP-155): the
 * fingerprint of the request and what it did, so that a retry answers the
 * same (the same version, `changed` as it was) instead of writing again.
 */
export interface RequestRecord {
  readonly requestId: string;
  /** `fingerprint` of the request that first used the id. */
  readonly fingerprint: string;
  /** The version the request left the config at: the one it created, or the current one when it changed nothing. */
  readonly version: number;
  readonly changed: boolean;
}

/** A request id and the fingerprint of its request, handed to a store's write. */
export interface RequestIdentity {
  readonly requestId: string;
  readonly fingerprint: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The request id, lowercased; undefined when none was given (unset or empty). INVALID_ARGUMENT unless a UUID. */
export function validateRequestId(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (!UUID.test(value)) {
    throw invalidField(
      'request_id',
      'REQUEST_ID_INVALID',
      'must be a UUID such as 3f2b9c6e-0d1a-4c1e-9a57-5b0e2c7d8f10',
    );
  }
  return value.toLowerCase();
}

/**
 * The SHA-256 (hex) of a request's canonical JSON: object keys sorted at
 * every level, so that the same request sent twice (in any key order)
 * has the same fingerprint, and any other request a different one.
 */
export function fingerprint(operation: string, request: JsonValue): string {
  return createHash('sha256')
    .update(canonicalJson([operation, request]), 'utf8')
    .digest('hex');
}

/** JSON with object keys sorted at every level (and no undefined members). */
export function canonicalJson(value: JsonValue | undefined): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
  const members = Object.keys(value)
    .filter((name) => value[name] !== undefined)
    .sort()
    .map((name) => `${JSON.stringify(name)}:${canonicalJson(value[name])}`);
  return `{${members.join(',')}}`;
}

/** A retry's answer: the record, unless the id was first used by a different request (INVALID_ARGUMENT). */
export function replay(key: ConfigKey, record: RequestRecord, identity: RequestIdentity): RequestRecord {
  if (record.fingerprint !== identity.fingerprint) {
    throw new CfgdError(
      'invalid-argument',
      'REQUEST_ID_REUSED',
      `request_id ${identity.requestId} was used for a different request on ${resourceName(key)}; use a new one`,
      {
        metadata: { field: 'request_id', request_id: identity.requestId, version: String(record.version) },
        fieldViolations: [{ field: 'request_id', description: 'was used for a different request' }],
      },
    );
  }
  return record;
}
