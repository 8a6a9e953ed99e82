import type { ConfigApp, WatchEvent } from '../app/config-app.js';
import type { ConfigVersion } from '../domain/index.js';
import type { GetStatusRequest, GetStatusResponse } from '../../generated/cfgd/v1/status_service.js';
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
import { WatchEventType } from '../../generated/cfgd/v1/config_service.js';
import { toAuditEntryMessage, toConfigMessage } from './convert.js';

/** A stream of response messages; `close` releases what it holds (idempotent). */
export interface MessageStream<T> extends AsyncIterable<T> {
  /** Aborts with the stream's error when it ends on the server's side while its reader is blocked. */
  readonly ended: AbortSignal;
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

export type AnyMethod = UnaryMethod<unknown, unknown> | ServerStreamMethod<unknown, unknown>;

/** The RPCs of `cfgd.v1.ConfigService`, keyed by their proto names, in wire message types. */
export interface ConfigServiceMethods {
  readonly Put: UnaryMethod<PutRequest, PutResponse>;
  readonly Get: UnaryMethod<GetRequest, GetResponse>;
  readonly History: UnaryMethod<HistoryRequest, HistoryResponse>;
  readonly Watch: ServerStreamMethod<WatchRequest, WatchResponse>;
}

const INITIAL_STATE_COMPLETE: WatchResponse = Object.freeze({
  type: WatchEventType.WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE,
  config: undefined,
  auditEntry: undefined,
});
const PROGRESS: WatchResponse = Object.freeze({
  type: WatchEventType.WATCH_EVENT_TYPE_PROGRESS,
  config: undefined,
  auditEntry: undefined,
});
/**
 * The message of each version, built once however many streams send it; the
 * transports key their encodings on the message object, so a version is
 * serialized once per node, not once per watcher.
 */
const versionMessages = new WeakMap<ConfigVersion, WatchResponse>();

export function watchResponse(event: WatchEvent): WatchResponse {
  switch (event.kind) {
    case 'initial-state-complete':
      return INITIAL_STATE_COMPLETE;
    case 'progress':
      return PROGRESS;
    case 'version': {
      let message = versionMessages.get(event.version);
      if (message === undefined) {
        message = {
          type: WatchEventType.WATCH_EVENT_TYPE_VERSION,
          config: toConfigMessage(event.version),
          auditEntry: toAuditEntryMessage(event.version.audit),
        };
        versionMessages.set(event.version, message);
      }
      return message;
    }
  }
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
        const events = await app.watch(ctx, req);
        return {
          [Symbol.asyncIterator]: () => {
            const inner = events[Symbol.asyncIterator]();
            return {
              next: async () => {
                const result = await inner.next();
                return result.done === true ? result : { done: false, value: watchResponse(result.value) };
              },
              return: async () => {
                events.close();
                return { done: true, value: undefined };
              },
            };
          },
          ended: events.ended,
          close: () => events.close(),
        };
      },
    },
  };
}

/** The RPCs of `cfgd.v1.StatusService`. */
export interface StatusServiceMethods {
  readonly GetStatus: UnaryMethod<GetStatusRequest, GetStatusResponse>;
}

/** StatusService: what this node holds open, from the app, the store and the process. */
export function statusServiceMethods(app: ConfigApp): StatusServiceMethods {
  return {
    GetStatus: {
      kind: 'unary',
      async call() {
        const stats = app.stats();
        const memory = process.memoryUsage();
        return {
          watchStreams: stats.watches,
          watchChannels: stats.channels,
          storeSubscriptions: stats.store.subscriptions,
          changefeeds: stats.store.changefeeds,
          queuedEvents: stats.queuedEvents,
          overflowedStreams: stats.overflowed,
          rssBytes: memory.rss,
          heapUsedBytes: memory.heapUsed,
        };
      },
    },
  };
}
