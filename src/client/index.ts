/**
 * cfgd's client library for TypeScript services: `import { CfgdClient } from 'cfgd'`.
 * The generated message types it speaks are re-exported for callers' signatures.
 */
export { CfgdClient } from './client.js';
export type { CfgdClientOptions, ClientTls, ConfigKey, WatchOptions, WatchTarget } from './client.js';
export { CfgdClientError, type FieldViolation } from './errors.js';
export {
  WatchEventType,
  type AuditEntry,
  type Config,
  type WatchResponse,
} from '../../generated/cfgd/v1/config_service.js';
export type {
  InstanceReport,
  ListInstancesResponse,
  ReportInstanceResponse,
} from '../../generated/cfgd/v1/fleet_service.js';
