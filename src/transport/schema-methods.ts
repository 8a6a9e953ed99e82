import type { SchemaApp } from '../app/schemas/schema-app.js';
import type {
  GetSchemaRequest,
  GetSchemaResponse,
  SchemaHistoryRequest,
  SchemaHistoryResponse,
  SetSchemaRequest,
  SetSchemaResponse,
} from '../../generated/cfgd/v1/config_service.js';
import { toAuditEntryMessage, toConfigMessage, toConfigSchemaMessage } from './convert.js';
import { withRequestId, type UnaryMethod } from './methods.js';

/** The schema RPCs of `cfgd.v1.ConfigService`. */
export interface SchemaMethods {
  readonly SetSchema: UnaryMethod<SetSchemaRequest, SetSchemaResponse>;
  readonly GetSchema: UnaryMethod<GetSchemaRequest, GetSchemaResponse>;
  readonly SchemaHistory: UnaryMethod<SchemaHistoryRequest, SchemaHistoryResponse>;
}

/** The schema RPCs once, for both transports: messages in, app calls, messages out. */
export function schemaMethods(app: SchemaApp): SchemaMethods {
  return {
    SetSchema: {
      kind: 'unary',
      http: { idempotencyKey: withRequestId },
      async call(req, ctx) {
        const { schema, config, changed } = await app.setSchema(ctx, {
          userId: req.userId,
          configName: req.configName,
          schema: req.schema,
          migrationValues: req.migrationValues,
          expectedSchemaVersion: req.expectedSchemaVersion,
          expectedVersion: req.expectedVersion,
          validateOnly: req.validateOnly,
          requestId: req.requestId,
        });
        return {
          schema: toConfigSchemaMessage(schema),
          config: config.hasValues ? toConfigMessage(config) : undefined,
          auditEntry: toAuditEntryMessage(config.audit),
          changed,
        };
      },
    },
    GetSchema: {
      kind: 'unary',
      async call(req, ctx) {
        const { schema, latestSchemaVersion } = await app.getSchema(ctx, req);
        return { schema: toConfigSchemaMessage(schema), latestSchemaVersion };
      },
    },
    SchemaHistory: {
      kind: 'unary',
      async call(req, ctx) {
        const page = await app.schemaHistory(ctx, req);
        return {
          schemas: page.schemas.map(toConfigSchemaMessage),
          nextPageToken: page.nextPageToken,
          latestSchemaVersion: page.latestSchemaVersion,
        };
      },
    },
  };
}
