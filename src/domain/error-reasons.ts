/**
 * Every reason cfgd gives for an error: the `reason` of the `google.rpc.ErrorInfo`
 * (domain `cfgd.v1`) in the `grpc-status-details-bin` trailer, and of the first
 * entry of `details` in a REST error body. Reasons are stable across releases;
 * a client may branch on them. Each reason always comes with the same kind of
 * error, and so with the same gRPC status code (see `src/transport/status.ts`);
 * the REST routes add a few HTTP-only refinements of the status (405, 413, 415,
 * 431 …), listed with their reason.
 *
 * This is the one list: `CfgdError` accepts only these reasons, each with its
 * kind, and a test checks that the README's error table says the same.
 */
/** The kinds of error; transports map each to one gRPC status code (and HTTP status). */
export type ErrorKind =
  | 'invalid-argument'
  | 'failed-precondition'
  | 'out-of-range'
  | 'not-found'
  | 'version-mismatch'
  | 'already-exists'
  | 'unauthenticated'
  | 'permission-denied'
  | 'resource-exhausted'
  | 'deadline-exceeded'
  | 'unavailable'
  | 'cancelled'
  | 'unimplemented'
  | 'internal';

export const ERROR_REASONS = {
  // Names and values
  NAME_REQUIRED: { kind: 'invalid-argument', doc: 'user_id or config_name (or another name) is missing' },
  NAME_TOO_LONG: { kind: 'invalid-argument', doc: 'a name is longer than 128 characters' },
  NAME_INVALID: { kind: 'invalid-argument', doc: 'a name has a character outside A-Z a-z 0-9 . _ -' },
  VALUES_REQUIRED: { kind: 'invalid-argument', doc: 'the values are missing' },
  VALUES_NOT_OBJECT: { kind: 'invalid-argument', doc: 'the values are not a JSON object' },
  BODY_NOT_OBJECT: { kind: 'invalid-argument', doc: 'a request body that must be a JSON object is not one' },
  VALUES_NOT_JSON: { kind: 'invalid-argument', doc: 'the values hold something JSON cannot (NaN, Infinity)' },
  VALUES_NOT_UNICODE: {
    kind: 'invalid-argument',
    doc: 'a key or string is not well-formed Unicode (a lone surrogate)',
  },
  VALUES_TOO_LARGE: { kind: 'invalid-argument', doc: 'the values encode to more than --max-values-bytes' },
  VALUES_TOO_DEEP: { kind: 'invalid-argument', doc: 'the values nest deeper than --max-depth' },
  VERSION_INVALID: { kind: 'invalid-argument', doc: 'a version is not a whole number >= 0' },
  PAGE_SIZE_INVALID: { kind: 'invalid-argument', doc: 'page_size is not a whole number >= 0' },
  PAGE_TOKEN_INVALID: { kind: 'invalid-argument', doc: 'page_token was not returned by History for this config' },
  START_VERSION_WITHOUT_CONFIG: { kind: 'invalid-argument', doc: 'start_version on a user watch (use known_versions)' },
  KNOWN_VERSIONS_WITH_CONFIG: { kind: 'invalid-argument', doc: 'known_versions on a config watch (use start_version)' },
  REQUEST_ID_INVALID: { kind: 'invalid-argument', doc: 'request_id (or Idempotency-Key) is not a UUID' },
  REQUEST_ID_REUSED: {
    kind: 'invalid-argument',
    doc: 'request_id (or Idempotency-Key) was used before for a different request on this config',
  },
  REQUEST_UNDECODABLE: { kind: 'invalid-argument', doc: 'the request message could not be decoded' },
  // The REST shim
  REQUEST_INVALID: { kind: 'invalid-argument', doc: 'a value in the request does not fit its field' },
  MALFORMED_JSON: { kind: 'invalid-argument', doc: 'the body is not JSON, or not UTF-8' },
  QUERY_PARAMETER_UNKNOWN: { kind: 'invalid-argument', doc: 'a query parameter names no field, or one already set' },
  QUERY_PARAMETER_INVALID: {
    kind: 'invalid-argument',
    doc: 'a query parameter is given twice, or in a form its field cannot take',
  },
  IF_MATCH_INVALID: { kind: 'invalid-argument', doc: 'If-Match is not one ETag cfgd sent' },
  LAST_EVENT_ID_INVALID: { kind: 'invalid-argument', doc: 'Last-Event-ID is not a version' },
  REQUEST_TARGET_INVALID: { kind: 'invalid-argument', doc: 'the request target is not a path or an http URL' },
  HOST_REQUIRED: { kind: 'invalid-argument', doc: 'an HTTP/1.1 request without Host' },
  MALFORMED_HTTP_REQUEST: { kind: 'invalid-argument', doc: "Node's HTTP parser refused the request (HTTP 400)" },
  CONTENT_TYPE_MISSING: { kind: 'invalid-argument', doc: 'a body without Content-Type (HTTP 415)' },
  CONTENT_TYPE_UNSUPPORTED: {
    kind: 'invalid-argument',
    doc: 'a body that is not application/json in UTF-8 (HTTP 415)',
  },
  EXPECTATION_UNSUPPORTED: { kind: 'invalid-argument', doc: 'an Expect other than 100-continue (HTTP 417)' },
  ROUTE_NOT_FOUND: { kind: 'not-found', doc: 'no route has this path' },
  METHOD_NOT_ALLOWED: { kind: 'unimplemented', doc: 'the route does not take this method (HTTP 405, with Allow)' },
  BODY_TOO_LARGE: { kind: 'resource-exhausted', doc: 'the body is over --max-body-bytes (HTTP 413)' },
  CHUNK_EXTENSIONS_TOO_LARGE: { kind: 'resource-exhausted', doc: "chunk extensions over Node's limit (HTTP 413)" },
  HEADERS_TOO_LARGE: { kind: 'resource-exhausted', doc: 'the request line and headers are over 16 KiB (HTTP 431)' },
  REQUEST_TIMEOUT: { kind: 'cancelled', doc: 'the request did not arrive in time (HTTP 408)' },
  REQUEST_BODY_INCOMPLETE: { kind: 'cancelled', doc: 'the client hung up before its body was complete' },
  // Configs and versions
  CONFIG_NOT_FOUND: { kind: 'not-found', doc: 'the config does not exist' },
  VERSION_NOT_FOUND: { kind: 'not-found', doc: 'the config has no such version' },
  VERSION_PRUNED: {
    kind: 'not-found',
    doc: 'the version was pruned by retention (metadata first_kept_version: the oldest kept)',
  },
  MAX_VERSIONS_INVALID: { kind: 'invalid-argument', doc: 'max_versions is not a whole number >= 0' },
  VERSION_MISMATCH: { kind: 'version-mismatch', doc: 'expected_version (or If-Match) is not the current version' },
  CONFIG_DELETED: {
    kind: 'not-found',
    doc: 'the config was deleted (metadata deleted_version); History still reads, Put or Undelete revive it',
  },
  CONFIG_NOT_DELETED: {
    kind: 'failed-precondition',
    doc: 'Undelete of a config whose latest version is not a deletion',
  },
  VERSION_HAS_NO_VALUES: {
    kind: 'failed-precondition',
    doc: 'Rollback to a version without values (a deletion, or a schema set before the first values)',
  },
  // Rendering (RenderConfig)
  FORMAT_INVALID: { kind: 'invalid-argument', doc: 'RenderConfig was asked for a format it does not write' },
  RENDER_UNREPRESENTABLE: {
    kind: 'failed-precondition',
    doc:
      'the values cannot be written in the format asked for: an env key that is not a shell variable name, ' +
      'two properties keys that flatten to one name, a NUL in an env value (metadata key)',
  },
  // Fleet convergence (FleetService)
  REPORT_INVALID: {
    kind: 'invalid-argument',
    doc: 'an instance report names a version the config never had, or its error is over 1024 characters',
  },
  TOO_MANY_INSTANCES: {
    kind: 'resource-exhausted',
    doc: 'a new instance reports on a config that has --max-instances live instances already',
  },
  // Schemas
  SCHEMA_INVALID: {
    kind: 'invalid-argument',
    doc: 'a schema is not draft 2020-12, too large or deep, has a non-local $ref or a pattern RE2 cannot run',
  },
  SCHEMA_VIOLATION: {
    kind: 'invalid-argument',
    doc: "the values (or migration_values) do not satisfy the config's schema; every violation is listed",
  },
  SCHEMA_INCOMPATIBLE: {
    kind: 'failed-precondition',
    doc: 'a new schema that the current values do not satisfy, without migration_values',
  },
  SCHEMA_VERSION_MISMATCH: {
    kind: 'version-mismatch',
    doc: 'expected_schema_version is not the current schema version',
  },
  SCHEMA_NOT_FOUND: { kind: 'not-found', doc: 'the config has no schema, or no such schema version' },
  // Authentication and authorization
  AUTHORIZATION_MALFORMED: {
    kind: 'unauthenticated',
    doc: 'the authorization header is not "Bearer <token>" or "Basic" with the token as password',
  },
  TOKEN_MISSING: { kind: 'unauthenticated', doc: 'no credentials: no token, JWT or client certificate' },
  TOKEN_INVALID: { kind: 'unauthenticated', doc: 'an unknown token, or a JWT that fails verification' },
  TOKEN_EXPIRED: { kind: 'unauthenticated', doc: 'the token or JWT has expired' },
  TOKEN_NOT_YET_VALID: { kind: 'unauthenticated', doc: "the JWT's nbf (not before) is in the future" },
  TOKEN_REVOKED: { kind: 'unauthenticated', doc: 'the token was revoked' },
  PERMISSION_DENIED: {
    kind: 'permission-denied',
    doc: "the caller's grants do not allow the verb on the resource (whether or not it exists)",
  },
  GRANT_INVALID: { kind: 'invalid-argument', doc: 'a grant is not a verb on users/{user_id}/configs/{config_name}' },
  PRINCIPAL_INVALID: { kind: 'invalid-argument', doc: 'a binding principal is not cert:<subject> or jwt:<sub>' },
  EXPIRY_INVALID: { kind: 'invalid-argument', doc: 'a token expiry in the past, or both ttl and expire_time' },
  TOKEN_EXISTS: { kind: 'already-exists', doc: 'a token with this id or secret exists already' },
  TOKEN_NOT_FOUND: { kind: 'not-found', doc: 'no token has this id' },
  BINDING_NOT_FOUND: { kind: 'not-found', doc: 'no binding has this principal' },
  // Watch
  WATCH_READER_TOO_SLOW: {
    kind: 'resource-exhausted',
    doc: 'a watch reader fell more than --watch-queue events behind',
  },
  WATCH_START_MISMATCH: {
    kind: 'internal',
    doc: 'a watch stream could not start where it was asked to (a server fault)',
  },
  WATCH_SEQUENCE_BROKEN: { kind: 'internal', doc: 'versions reached a watch out of sequence (a server fault)' },
  // Availability
  SERVER_SHUTTING_DOWN: { kind: 'unavailable', doc: 'the node is stopping; reconnect to another' },
  DATABASE_UNAVAILABLE: {
    kind: 'unavailable',
    doc: 'RethinkDB did not answer in time; for a write: nothing was written',
  },
  WRITE_OUTCOME_UNKNOWN: {
    kind: 'unavailable',
    doc: 'a write was sent but not confirmed; stored as metadata.version or not at all',
  },
  WRITE_CONTENTION: { kind: 'unavailable', doc: '1000 lost races in a row for one config' },
  CONSOLE_NOT_BUILT: { kind: 'unavailable', doc: '/ui/ of a server whose console was not built (npm run build)' },
  // The rest
  CANCELLED: { kind: 'cancelled', doc: 'the client cancelled the call or went away' },
  INTERNAL: { kind: 'internal', doc: 'anything unexpected; the message is generic and the cause is logged' },
} as const satisfies Record<string, { readonly kind: ErrorKind; readonly doc: string }>;

export type ErrorReason = keyof typeof ERROR_REASONS;

/** The kind of error a reason always comes with. */
export type KindOf<R extends ErrorReason> = (typeof ERROR_REASONS)[R]['kind'];

/** A kind and a reason that go together: what `CfgdError` takes first, so the compiler checks the pair. */
export type KindAndReason = { [R in ErrorReason]: [kind: KindOf<R>, reason: R] }[ErrorReason];

/** The reasons that come with one kind of error. */
export type ReasonOf<K extends ErrorKind> = { [R in ErrorReason]: KindOf<R> extends K ? R : never }[ErrorReason];
