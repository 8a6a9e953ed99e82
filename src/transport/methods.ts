import type { ConfigApp, WatchEvent } from '../app/config-app.js';
import { CfgdError, type ConfigVersion } from '../domain/index.js';
import type { GetStatusRequest, GetStatusResponse, WorkerStatus } from '../../generated/cfgd/v1/status_service.js';
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
import { markReused } from './reused.js';

/** A stream of response messages; `close` releases what it holds (idempotent). */
export interface MessageStream<T> extends AsyncIterable<T> {
  /** Aborts with the stream's error when it ends on the server's side while its reader is blocked. */
  readonly ended: AbortSignal;
  close(): void;
}

export interface UnaryMethod<Req, Res> {
  readonly kind: 'unary';
  call(request: Req, ctx: RequestContext): Promise<Res>;
  /** What HTTP's conditional requests mean for this method, where they mean anything. */
  readonly http?: UnaryHttpSemantics<Req, Res>;
}

export interface ServerStreamMethod<Req, Res> {
  readonly kind: 'server-stream';
  /** Validates and subscribes; errors surface here, before any message is sent. */
  open(request: Req, ctx: RequestContext): Promise<MessageStream<Res>>;
  /** How an event stream of this method is resumed, where it can be. */
  readonly http?: StreamHttpSemantics<Req, Res>;
}

/**
 * HTTP features of a unary method, declared beside it rather than guessed
 * from field names by the gateway (a renamed field would silently lose them;
 * here the compiler sees it). Method syntax keeps the table assignable to
 * the transports' `AnyMethod`.
 */
export interface UnaryHttpSemantics<Req, Res> {
  /** `If-Match: "N"`: the request made conditional on the resource being at version N. */
  ifMatch?(request: Req, version: number): Req;
  /** The version of the resource a response carries: its `ETag`, which `If-None-Match` is compared with. */
  etag?(response: Res): number | undefined;
  /** `Idempotency-Key: K`: the request named K (its `request_id`, AIP-155), so that a retry is recognised. */
  idempotencyKey?(request: Req, key: string): Req;
}

/** `idempotencyKey` for every request message with a `request_id`: the header fills it, or must equal it. */
export function withRequestId<Req extends { requestId?: string | undefined }>(request: Req, key: string): Req {
  if (request.requestId !== undefined && request.requestId !== '' && request.requestId !== key) {
    throw new CfgdError(
      'invalid-argument',
      'REQUEST_ID_INVALID',
      'request_id: the Idempotency-Key header and request_id name different requests',
      {
        metadata: { field: 'request_id' },
        fieldViolations: [{ field: 'request_id', description: 'differs from Idempotency-Key' }],
      },
    );
  }
  return { ...request, requestId: key };
}

/** HTTP features of a server stream served as Server-Sent Events. */
export interface StreamHttpSemantics<Req, Res> {
  /** Whether events of this request carry ids (and `Last-Event-ID` resumes it). */
  resumable(request: Req): boolean;
  /** `Last-Event-ID: N`: the request resumed after event N. */
  resumeAfter(request: Req, lastEventId: number): Req;
  /** The id of an event: the version it carries, if any (a progress message has none). */
  eventId(message: Res): number | undefined;
}

export type AnyMethod = UnaryMethod<unknown, unknown> | ServerStreamMethod<unknown, unknown>;

/**
 * The config RPCs of `cfgd.v1.ConfigService`, keyed by their proto names, in
 * wire message types. Its schema RPCs are in `schema-methods.ts`.
 */
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
    case 'resync':
      return {
        type: WatchEventType.WATCH_EVENT_TYPE_RESYNC,
        config: toConfigMessage(event.version),
        auditEntry: toAuditEntryMessage(event.version.audit),
      };
    case 'version': {
      let message = versionMessages.get(event.version);
      if (message === undefined) {
        message = {
          // A version without values is not a state to load: its own type, which older clients skip.
          type: event.version.hasValues
            ? WatchEventType.WATCH_EVENT_TYPE_VERSION
            : event.version.audit.operation === 'delete'
              ? WatchEventType.WATCH_EVENT_TYPE_DELETED
              : WatchEventType.WATCH_EVENT_TYPE_SCHEMA,
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
  /** Get's answer for the latest version, by the version object the store handed out. */
  const latestResponses = new WeakMap<ConfigVersion, GetResponse>();
  return {
    Put: {
      kind: 'unary',
      http: {
        ifMatch: (req, version) => ({ ...req, expectedVersion: version }),
        etag: (res) => res.config?.version,
        idempotencyKey: withRequestId,
      },
      async call(req, ctx) {
        const { config, changed } = await app.put(ctx, {
          userId: req.userId,
          configName: req.configName,
          values: req.values,
          expectedVersion: req.expectedVersion,
          validateOnly: req.validateOnly,
          requestId: req.requestId,
        });
        return { config: toConfigMessage(config), auditEntry: toAuditEntryMessage(config.audit), changed };
      },
    },
    Get: {
      kind: 'unary',
      http: { etag: (res) => res.config?.version },
      async call(req, ctx) {
        const { config, latestVersion } = await app.get(ctx, req);
        if (config.version !== latestVersion) return { config: toConfigMessage(config), latestVersion };
        // The store hands out one object per latest version while it stays the latest; so is its answer.
        let response = latestResponses.get(config);
        if (response === undefined) {
          response = markReused({ config: toConfigMessage(config), latestVersion });
          latestResponses.set(config, response);
        }
        return response;
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
      // Only a stream of one config has one version sequence to resume; a user watch resumes with known_versions.
      http: {
        resumable: (req) => req.configName !== '',
        resumeAfter: (req, version) => ({ ...req, startVersion: version }),
        eventId: (message) => message.config?.version,
      },
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

/** StatusService: what this node holds open, from the app, the store and the process, per worker and in total. */
export function statusServiceMethods(app: ConfigApp): StatusServiceMethods {
  return {
    GetStatus: {
      kind: 'unary',
      async call(_req, ctx) {
        const workers = (await app.status(ctx))
          .map((node): WorkerStatus => ({
            worker: node.worker,
            pid: node.pid,
            watchStreams: node.watches,
            watchChannels: node.channels,
            storeSubscriptions: node.store.subscriptions,
            changefeeds: node.store.changefeeds,
            queuedEvents: node.queuedEvents,
            overflowedStreams: node.overflowed,
            rssBytes: node.rssBytes,
            heapUsedBytes: node.heapUsedBytes,
          }))
          .sort((a, b) => a.worker - b.worker);
        const total = (field: Exclude<keyof WorkerStatus, 'worker' | 'pid'>): number =>
          workers.reduce((sum, worker) => sum + worker[field], 0);
        return {
          watchStreams: total('watchStreams'),
          watchChannels: total('watchChannels'),
          storeSubscriptions: total('storeSubscriptions'),
          changefeeds: total('changefeeds'),
          queuedEvents: total('queuedEvents'),
          overflowedStreams: total('overflowedStreams'),
          rssBytes: total('rssBytes'),
          heapUsedBytes: total('heapUsedBytes'),
          workers,
        };
      },
    },
  };
}
