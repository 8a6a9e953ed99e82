// The REST API's messages as the console reads them: proto3 JSON with the proto field names
// (snake_case), 64-bit integers as decimal strings, timestamps as RFC 3339 strings.

/** A JSON value, as config values hold them. */
export type Json = null | boolean | number | string | Json[] | JsonObject;

/** A JSON object: a config's values. */
export interface JsonObject {
  [key: string]: Json;
}

/** One grant of the caller: a verb on a resource pattern `users/{u}/configs/{c}`. */
export interface Grant {
  verb: string;
  resource: string;
}

/** `GET /v1/whoami`. */
export interface WhoAmIResponse {
  principal: string;
  kind: string;
  grants: Grant[];
  expire_time?: string;
  token_id?: string;
}

/** One version of a config. */
export interface Config {
  name: string;
  user_id: string;
  config_name: string;
  id: string;
  version: string;
  values?: JsonObject;
  update_time?: string;
  schema_version: string;
  deleted: boolean;
  /** The principal that wrote this version; older servers do not send it. */
  author?: string;
}

/** What happened to one top-level key. */
export type ChangeAction = 'CHANGE_ACTION_ADDED' | 'CHANGE_ACTION_UPDATED' | 'CHANGE_ACTION_REMOVED';

/** One top-level key's change between two versions. */
export interface Change {
  action: ChangeAction;
  key: string;
  /** The new value (ADDED, UPDATED) or the old one (REMOVED). */
  value?: Json;
  /** The previous value of an UPDATED key. */
  old_value?: Json;
}

/** The audit entry of one version. */
export interface AuditEntry {
  version: string;
  create_time?: string;
  author: string;
  changes: Change[];
  operation: string;
  schema_version: string;
  rollback_to_version: string;
  hash: string;
  previous_hash: string;
}

/** `GET …/configs/{c}`. */
export interface GetResponse {
  config: Config;
  latest_version: string;
}

/** The answer of every write (Put, Rollback …), dry runs included. */
export interface WriteResponse {
  config?: Config;
  audit_entry?: AuditEntry;
  changed: boolean;
}

/** `GET …/history`. */
export interface HistoryResponse {
  entries: AuditEntry[];
  next_page_token: string;
  latest_version: string;
}

/** `GET …/configs`. */
export interface ListConfigsResponse {
  configs: Config[];
  next_page_token: string;
}

/** `GET …/history:verify`. */
export interface VerifyHistoryResponse {
  intact: boolean;
  first_bad_version: string;
  problem: string;
  first_checked_version: string;
  latest_version: string;
}

/** One instance's report in `GET …/instances`. */
export interface InstanceReport {
  instance_id: string;
  applied_version: string;
  failed_version: string;
  error: string;
  report_time?: string;
  reported_by: string;
}

/** `GET …/instances`. */
export interface ListInstancesResponse {
  latest_version: string;
  instances: InstanceReport[];
  converged: number;
  instance_ttl_ms: string;
}

/** The event types of a config watch. */
export type WatchEventType =
  | 'WATCH_EVENT_TYPE_VERSION'
  | 'WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE'
  | 'WATCH_EVENT_TYPE_PROGRESS'
  | 'WATCH_EVENT_TYPE_SCHEMA'
  | 'WATCH_EVENT_TYPE_DELETED'
  | 'WATCH_EVENT_TYPE_RESYNC';

/** One message of a watch stream (one SSE event's data). */
export interface WatchResponse {
  type: WatchEventType;
  config?: Config;
  audit_entry?: AuditEntry;
}
