import type { ConfigApp } from '../app/config-app.js';
import type { RequestContext } from '../app/context.js';
import type {
  GetRequest,
  GetResponse,
  HistoryRequest,
  HistoryResponse,
  PutRequest,
  PutResponse,
  WatchRequest,
  WatchResponse,
} from '../../generated/cfgd/v1/config_service.js';
import { toAuditEntryMessage, toConfigMessage } from './convert.js';

/** A stream of response messages; `close` releases what it holds (idempotent). */
export interface MessageStream<T> extends AsyncIterable<T> {
  close(): void;
}

export interface UnaryMethod<Req, Res> {
  readonly kind: 'unary';
  call(request: Req, ctx: RequestContext): Promise<Res>;
}

export interface ServerStreamMethod<Req, Res> {
  readonly kind: 'server-stream';
  /** Validates and subscribes; errors surface here, before any message is sent. */
  open(request: Req, ctx: RequestContext): Promise<MessageStream<Res>>;
}

/** The RPCs of `cfgd.v1.ConfigService`, keyed by their proto names, in wire message types. */
export interface ConfigServiceMethods {
  readonly Put: UnaryMethod<PutRequest, PutResponse>;
  readonly Get: UnaryMethod<GetRequest, GetResponse>;
  readonly History: UnaryMethod<HistoryRequest, HistoryResponse>;
  readonly Watch: ServerStreamMethod<WatchRequest, WatchResponse>;
}

/**
 * ConfigService once, for every transport: map the request message to an app
 * call and the result to the response message. The gRPC server and the REST
 * shim both dispatch here, so the two cannot drift apart.
 */
export function configServiceMethods(app: ConfigApp): ConfigServiceMethods {
  return {
    Put: {
      kind: 'unary',
      async call(req, ctx) {
        const { config, changed } = await app.put(ctx, {
          userId: req.userId,
          configName: req.configName,
          values: req.values,
          expectedVersion: req.expectedVersion,
        });
        return { config: toConfigMessage(config), auditEntry: toAuditEntryMessage(config.audit), changed };
      },
    },
    Get: {
      kind: 'unary',
      async call(req, ctx) {
        const { config, latestVersion } = await app.get(ctx, req);
        return { config: toConfigMessage(config), latestVersion };
      },
    },
    History: {
      kind: 'unary',
      async call(req, ctx) {
        const page = await app.history(ctx, req);
        return {
          entries: page.entries.map(toAuditEntryMessage),
          nextPageToken: page.nextPageToken,
          latestVersion: page.latestVersion,
        };
      },
    },
    Watch: {
      kind: 'server-stream',
      async open(req, ctx) {
        const versions = await app.watch(ctx, req);
        return {
          async *[Symbol.asyncIterator]() {
            for await (const version of versions) {
              yield { config: toConfigMessage(version), auditEntry: toAuditEntryMessage(version.audit) };
            }
          },
          close: () => versions.close(),
        };
      },
    },
  };
}
