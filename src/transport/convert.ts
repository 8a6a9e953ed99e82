import type { AuditEntry, Change, ConfigSchema, ConfigVersion, Operation as DomainOperation } from '../domain/index.js';
import { configUuid, resourceName } from '../domain/index.js';
import {
  ChangeAction,
  Operation,
  type AuditEntry as AuditEntryMessage,
  type Change as ChangeMessage,
  type Config as ConfigMessage,
  type ConfigSchema as ConfigSchemaMessage,
} from '../../generated/cfgd/v1/config_service.js';

const ACTIONS = {
  added: ChangeAction.CHANGE_ACTION_ADDED,
  updated: ChangeAction.CHANGE_ACTION_UPDATED,
  removed: ChangeAction.CHANGE_ACTION_REMOVED,
} as const;

const OPERATIONS: Record<DomainOperation, Operation> = {
  put: Operation.OPERATION_PUT,
  'set-schema': Operation.OPERATION_SET_SCHEMA,
  patch: Operation.OPERATION_PATCH,
  rollback: Operation.OPERATION_ROLLBACK,
  delete: Operation.OPERATION_DELETE,
  undelete: Operation.OPERATION_UNDELETE,
};

export function toChangeMessage(change: Change): ChangeMessage {
  return {
    action: ACTIONS[change.action],
    key: change.key,
    value: change.value,
    oldValue: change.action === 'updated' ? change.oldValue : undefined,
  };
}

export function toAuditEntryMessage(entry: AuditEntry): AuditEntryMessage {
  return {
    version: entry.version,
    createTime: entry.createdAt,
    author: entry.author,
    changes: entry.changes.map(toChangeMessage),
    operation: OPERATIONS[entry.operation],
    schemaVersion: entry.schemaVersion,
    rollbackToVersion: entry.rollbackTo ?? 0,
    hash: entry.hash ?? '',
    previousHash: entry.previousHash ?? '',
  };
}

/** A config message; `withValues: false` leaves the values out (a list's BASIC view). */
export function toConfigMessage(config: ConfigVersion, withValues = true): ConfigMessage {
  return {
    name: resourceName(config.key),
    userId: config.key.userId,
    configName: config.key.configName,
    id: configUuid(config.key),
    version: config.version,
    // A version without values (a deletion, a schema set before the first values) has none to send.
    values: config.hasValues && withValues ? config.values : undefined,
    updateTime: config.audit.createdAt,
    schemaVersion: config.audit.schemaVersion,
    deleted: config.audit.operation === 'delete',
    author: config.audit.author,
  };
}

export function toConfigSchemaMessage(schema: ConfigSchema): ConfigSchemaMessage {
  return {
    schemaVersion: schema.schemaVersion,
    schema: schema.schema,
    version: schema.version,
    createTime: schema.createdAt,
    author: schema.author,
  };
}
