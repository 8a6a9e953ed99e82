import type { AuditEntry, Change, ConfigVersion } from '../domain/index.js';
import { configUuid, resourceName } from '../domain/index.js';
import {
  ChangeAction,
  type AuditEntry as AuditEntryMessage,
  type Change as ChangeMessage,
  type Config as ConfigMessage,
} from '../../generated/cfgd/v1/config_service.js';

const ACTIONS = {
  added: ChangeAction.CHANGE_ACTION_ADDED,
  updated: ChangeAction.CHANGE_ACTION_UPDATED,
  removed: ChangeAction.CHANGE_ACTION_REMOVED,
} as const;

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
  };
}

export function toConfigMessage(config: ConfigVersion): ConfigMessage {
  return {
    name: resourceName(config.key),
    userId: config.key.userId,
    configName: config.key.configName,
    id: configUuid(config.key),
    version: config.version,
    values: config.values,
    updateTime: config.audit.createdAt,
  };
}
