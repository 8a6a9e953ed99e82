import type { ConfigApp } from '../../app/config-app.js';
import type { RequestContext } from '../../app/context.js';
import {
  configKey,
  configUuid,
  legacyConfigId,
  type AuditEntry,
  type Change,
  type ConfigVersion,
  type JsonValue,
} from '../../domain/index.js';
import { etagOf, idempotencyKey, ifMatchVersion, noneMatch, sendJson, type Exchange, type Route } from './http.js';
import { parseTemplate } from './path-template.js';

/**
 * The legacy, curl-compatible API of the original service:
 *
 *   POST /values/{user_id}/{config_name}   body: the values (a JSON object)
 *   GET  /values/{user_id}/{config_name}
 *
 * Both answer the original document, field for field (snake_case, keys
 * sorted, the whole audit trail), not proto JSON. Additions over the
 * original: the `updated` action with `old_value`, ETag / If-Match /
 * If-None-Match.
 */
export function legacyValuesRoutes(app: ConfigApp): Route[] {
  const template = parseTemplate('/values/{user_id}/{config_name}');
  return [
    {
      method: 'POST',
      template,
      name: 'legacy POST /values/{user_id}/{config_name}',
      streaming: false,
      async handle(exchange) {
        const { user_id: userId, config_name: configName } = exchange.params;
        // Names first, so a bad name is reported before the body is looked at.
        configKey(userId, configName);
        const values = await exchange.readJsonBody();
        const expectedVersion = ifMatchVersion(exchange.req);
        const { config } = await app.put(exchange.ctx, {
          userId: userId!,
          configName: configName!,
          values,
          expectedVersion,
          requestId: idempotencyKey(exchange.req),
        });
        await sendDocument(exchange, app, config);
      },
    },
    {
      method: 'GET',
      template,
      name: 'legacy GET /values/{user_id}/{config_name}',
      streaming: false,
      async handle(exchange) {
        const { config } = await app.get(exchange.ctx, {
          userId: exchange.params.user_id!,
          configName: exchange.params.config_name!,
          version: 0,
        });
        if (noneMatch(exchange.req, etagOf(config.version))) {
          exchange.res.writeHead(304, { etag: etagOf(config.version) }).end();
          return;
        }
        await sendDocument(exchange, app, config);
      },
    },
  ];
}

async function sendDocument(exchange: Exchange, app: ConfigApp, config: ConfigVersion): Promise<void> {
  const trail = await auditTrail(app, exchange.ctx, config);
  sendJson(exchange.res, 200, legacyDocument(config, trail), { etag: etagOf(config.version) });
}

/** Every audit entry up to the config's version, read page by page. */
async function auditTrail(app: ConfigApp, ctx: RequestContext, config: ConfigVersion): Promise<AuditEntry[]> {
  const entries: AuditEntry[] = [];
  let pageToken = '';
  do {
    const page = await app.history(ctx, {
      userId: config.key.userId,
      configName: config.key.configName,
      startVersion: 1,
      pageSize: 1000,
      pageToken,
    });
    entries.push(...page.entries.filter((entry) => entry.version <= config.version));
    pageToken = entries.length < config.version ? page.nextPageToken : '';
  } while (pageToken !== '');
  return entries;
}

/** The original service's document; keys in the original's (sorted) order. */
export function legacyDocument(config: ConfigVersion, trail: readonly AuditEntry[]): Record<string, JsonValue> {
  return {
    audit_trail: trail.map((entry) => ({
      changes: entry.changes.map(legacyChange),
      created_at: legacyTimestamp(entry.createdAt),
      version: entry.version,
    })),
    config_id: legacyConfigId(config.key),
    id: configUuid(config.key),
    values: config.values,
    version: config.version,
  };
}

function legacyChange(change: Change): Record<string, JsonValue> {
  if (change.action === 'updated') {
    return { action: change.action, key: change.key, old_value: change.oldValue, value: change.value };
  }
  return { action: change.action, key: change.key, value: change.value };
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The original's timestamp format, always UTC: `Sun Mar 08 2015 05:41:10 GMT+00:00`. */
export function legacyTimestamp(date: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  const time = `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`;
  return `${DAYS[date.getUTCDay()]} ${MONTHS[date.getUTCMonth()]} ${pad(date.getUTCDate())} ${date.getUTCFullYear()} ${time} GMT+00:00`;
}
