import { randomUUID } from 'node:crypto';
import {
  credentials,
  Metadata,
  status as GrpcStatus,
  type CallOptions,
  type ChannelCredentials,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  AuthServiceClient,
  CreateTokenRequest,
  ListTokensRequest,
  RevokeTokenRequest,
  WhoAmIRequest,
  type CreateTokenResponse,
  type ListTokensResponse,
  type RevokeTokenResponse,
  type WhoAmIResponse,
} from '../../generated/cfgd/v1/auth_service.js';
import {
  ConfigServiceClient,
  DeleteRequest,
  GetRequest,
  GetSchemaRequest,
  HistoryRequest,
  ListConfigsRequest,
  PatchRequest,
  PutRequest,
  RollbackRequest,
  SetSchemaRequest,
  UndeleteRequest,
  WatchEventType,
  WatchRequest,
  type AuditEntry,
  type Config,
  type DeepPartial,
  type DeleteResponse,
  type GetResponse,
  type GetSchemaResponse,
  type PatchResponse,
  type PutResponse,
  type RollbackResponse,
  type SetSchemaResponse,
  type UndeleteResponse,
  type WatchResponse,
} from '../../generated/cfgd/v1/config_service.js';
import {
  GetStatusRequest,
  StatusServiceClient,
  type GetStatusResponse,
} from '../../generated/cfgd/v1/status_service.js';
import {
  FleetServiceClient,
  ListInstancesRequest,
  ReportInstanceRequest,
  type ListInstancesResponse,
  type ReportInstanceResponse,
} from '../../generated/cfgd/v1/fleet_service.js';
import { CfgdClientError, toClientError } from './errors.js';
import { sleep } from './sleep.js';

/** TLS to cfgd: the CA that signed its certificate, and a client certificate for mTLS. PEM bytes. */
export interface ClientTls {
  readonly ca?: Buffer | undefined;
  readonly cert?: Buffer | undefined;
  readonly key?: Buffer | undefined;
}

export interface CfgdClientOptions {
  /**
   * `host:port` of cfgd's gRPC listener; several for failover: calls go to
   * the one that answered last, and move on to the next when it is UNAVAILABLE.
   */
  readonly addresses: readonly string[];
  /** A bearer token (`cfgd_…`) or a JWT, sent as `authorization: Bearer …`. */
  readonly token?: string | undefined;
  /** TLS; plaintext without. */
  readonly tls?: ClientTls | undefined;
  /** Deadline of each attempt of a unary call. Default 10 s. */
  readonly deadlineMs?: number | undefined;
  /** Attempts of a call that fails in a way worth retrying (UNAVAILABLE, DEADLINE_EXCEEDED). Default 5. */
  readonly attempts?: number | undefined;
  /**
   * Interval of keepalive pings while a call (a watch) is open; a connection whose ping goes
   * unanswered for `keepaliveTimeoutMs` is dropped, so that a watch on a server that went silent
   * (a network partition) reconnects elsewhere. Default 10 s and 5 s.
   */
  readonly keepaliveMs?: number | undefined;
  readonly keepaliveTimeoutMs?: number | undefined;
  /** Backoff between attempts and between watch reconnections: from `initialMs`, doubling up to `maxMs`, with jitter. */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number } | undefined;
}

/** A config: who owns it and its name. */
export interface ConfigKey {
  readonly userId: string;
  readonly configName: string;
}

/** What a watch follows: one config, or (without `configName`) every config of a user. */
export interface WatchTarget {
  readonly userId: string;
  readonly configName?: string | undefined;
}

export interface WatchOptions {
  /** A config watch starts after this version (the last one the caller has); unset: with the current version. */
  readonly startVersion?: number | undefined;
  /** A user watch: the version the caller has of each config, by name; those start after it. */
  readonly knownVersions?: Readonly<Record<string, number>> | undefined;
  /** Ends the watch (the iterator returns) when it aborts. */
  readonly signal?: AbortSignal | undefined;
  /** Called when the stream broke and the watch is about to reconnect (for logs and health). */
  readonly onReconnect?: ((error: CfgdClientError, delayMs: number) => void) | undefined;
  /**
   * Called each time a stream opens: the server accepted the watch (authorized, validated) and
   * will send every later version; with the address it opened on. Before the first event.
   */
  readonly onOpen?: ((address: string) => void) | undefined;
}

/** Codes after which a read, an idempotent write or a watch is tried again. */
const RETRYABLE = new Set<number>([GrpcStatus.UNAVAILABLE, GrpcStatus.DEADLINE_EXCEEDED]);
/**
 * Codes after which a watch reconnects (and resumes): besides the above, a stream the server ended
 * for a slow reader (RESOURCE_EXHAUSTED), or for a fault of its own (INTERNAL, UNKNOWN, ABORTED).
 */
const WATCH_RETRYABLE = new Set<number>([
  ...RETRYABLE,
  GrpcStatus.RESOURCE_EXHAUSTED,
  GrpcStatus.INTERNAL,
  GrpcStatus.UNKNOWN,
  GrpcStatus.ABORTED,
  GrpcStatus.CANCELLED,
]);

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => unknown;

interface Endpoint {
  readonly address: string;
  readonly config: ConfigServiceClient;
  readonly auth: AuthServiceClient;
  readonly status: StatusServiceClient;
  readonly fleet: FleetServiceClient;
}

/**
 * A client of cfgd for TypeScript services, over the generated gRPC clients:
 * typed calls, credentials and TLS, failover over several addresses, retries
 * of reads and of writes (each write carries a request id, the same on every
 * attempt, so a retried write is applied once), and `watch`, an async
 * iterator that reconnects with backoff and resumes from the last version it
 * yielded: no gap and no duplicate across server restarts, streams ended for
 * a slow reader and failover.
 */
export class CfgdClient {
  private readonly endpoints: readonly Endpoint[];
  /** The endpoint that answered last; calls start there. */
  private current = 0;
  private closed = false;
  /** Aborted by `close`: ends the backoff of calls being retried. */
  private readonly closing = new AbortController();
  /** Watch streams open now, ended by `close`. */
  private readonly streams = new Set<ClientReadableStream<WatchResponse>>();
  private readonly deadlineMs: number;
  private readonly attempts: number;
  private readonly backoff: { readonly initialMs: number; readonly maxMs: number };

  constructor(private readonly options: CfgdClientOptions) {
    if (options.addresses.length === 0) throw new Error('CfgdClient needs at least one address');
    const channel = channelCredentials(options.tls);
    // One channel per address, owned by this client (not shared with other clients of the address).
    const channelOptions = {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.keepalive_time_ms': options.keepaliveMs ?? 10_000,
      'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs ?? 5_000,
    };
    this.endpoints = options.addresses.map((address) => ({
      address,
      config: new ConfigServiceClient(address, channel, channelOptions),
      auth: new AuthServiceClient(address, channel, channelOptions),
      status: new StatusServiceClient(address, channel, channelOptions),
      fleet: new FleetServiceClient(address, channel, channelOptions),
    }));
    this.deadlineMs = options.deadlineMs ?? 10_000;
    this.attempts = Math.max(1, options.attempts ?? 5);
    this.backoff = options.backoff ?? { initialMs: 100, maxMs: 5000 };
  }

  /** The address calls go to first (the one that answered last). */
  get address(): string {
    return this.endpoints[this.current]!.address;
  }

  // ConfigService: reads.

  get(key: ConfigKey, version = 0): Promise<GetResponse> {
    return this.call((e) => e.config.get.bind(e.config), GetRequest.fromPartial({ ...key, version }), 'retry');
  }

  /** Every audit entry from `startVersion` (default: the first kept) on, page after page. */
  async *history(key: ConfigKey, startVersion = 0, pageSize = 100): AsyncGenerator<AuditEntry> {
    let pageToken = '';
    do {
      const page = await this.call(
        (e) => e.config.history.bind(e.config),
        HistoryRequest.fromPartial({ ...key, startVersion, pageSize, pageToken }),
        'retry',
      );
      yield* page.entries;
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
  }

  /** Every config of a user, page after page (`request` narrows: `namePrefix`, `showDeleted`, `view`). */
  async *list(userId: string, request: DeepPartial<ListConfigsRequest> = {}): AsyncGenerator<Config> {
    let pageToken = '';
    do {
      const page = await this.call(
        (e) => e.config.listConfigs.bind(e.config),
        ListConfigsRequest.fromPartial({ ...request, userId, pageToken }),
        'retry',
      );
      yield* page.configs;
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
  }

  getSchema(key: ConfigKey, schemaVersion = 0): Promise<GetSchemaResponse> {
    return this.call(
      (e) => e.config.getSchema.bind(e.config),
      GetSchemaRequest.fromPartial({ ...key, schemaVersion }),
      'retry',
    );
  }

  // ConfigService: writes. Each has a request id (given, or made here) that every attempt carries.

  put(request: DeepPartial<PutRequest> & ConfigKey): Promise<PutResponse> {
    return this.call((e) => e.config.put.bind(e.config), PutRequest.fromPartial(withRequestId(request)), 'retry');
  }

  patch(request: DeepPartial<PatchRequest> & ConfigKey): Promise<PatchResponse> {
    return this.call((e) => e.config.patch.bind(e.config), PatchRequest.fromPartial(withRequestId(request)), 'retry');
  }

  rollback(request: DeepPartial<RollbackRequest> & ConfigKey & { toVersion: number }): Promise<RollbackResponse> {
    return this.call(
      (e) => e.config.rollback.bind(e.config),
      RollbackRequest.fromPartial(withRequestId(request)),
      'retry',
    );
  }

  delete(request: DeepPartial<DeleteRequest> & ConfigKey): Promise<DeleteResponse> {
    return this.call((e) => e.config.delete.bind(e.config), DeleteRequest.fromPartial(withRequestId(request)), 'retry');
  }

  undelete(request: DeepPartial<UndeleteRequest> & ConfigKey): Promise<UndeleteResponse> {
    return this.call(
      (e) => e.config.undelete.bind(e.config),
      UndeleteRequest.fromPartial(withRequestId(request)),
      'retry',
    );
  }

  setSchema(request: DeepPartial<SetSchemaRequest> & ConfigKey): Promise<SetSchemaResponse> {
    return this.call(
      (e) => e.config.setSchema.bind(e.config),
      SetSchemaRequest.fromPartial(withRequestId(request)),
      'retry',
    );
  }

  // AuthService and StatusService.

  whoAmI(): Promise<WhoAmIResponse> {
    return this.call((e) => e.auth.whoAmI.bind(e.auth), WhoAmIRequest.fromPartial({}), 'retry');
  }

  /** Not retried: a token created twice would be two tokens. */
  createToken(request: DeepPartial<CreateTokenRequest>): Promise<CreateTokenResponse> {
    return this.call((e) => e.auth.createToken.bind(e.auth), CreateTokenRequest.fromPartial(request), 'once');
  }

  listTokens(): Promise<ListTokensResponse> {
    return this.call((e) => e.auth.listTokens.bind(e.auth), ListTokensRequest.fromPartial({}), 'retry');
  }

  /** Revoking is idempotent: retried. */
  revokeToken(id: string): Promise<RevokeTokenResponse> {
    return this.call((e) => e.auth.revokeToken.bind(e.auth), RevokeTokenRequest.fromPartial({ id }), 'retry');
  }

  status(): Promise<GetStatusResponse> {
    return this.call((e) => e.status.getStatus.bind(e.status), GetStatusRequest.fromPartial({}), 'retry');
  }

  // FleetService.

  /** An instance's report on a config; it replaces the previous one, so it is retried. */
  reportInstance(
    request: DeepPartial<ReportInstanceRequest> & ConfigKey & { instanceId: string },
  ): Promise<ReportInstanceResponse> {
    return this.call((e) => e.fleet.reportInstance.bind(e.fleet), ReportInstanceRequest.fromPartial(request), 'retry');
  }

  /** Which instances run which version of a config. */
  listInstances(key: ConfigKey): Promise<ListInstancesResponse> {
    return this.call((e) => e.fleet.listInstances.bind(e.fleet), ListInstancesRequest.fromPartial(key), 'retry');
  }

  /**
   * The versions of a config (or of every config of a user) as they are
   * written: an async iterator of VERSION, SCHEMA, DELETED and RESYNC events
   * (and, for a user watch, one INITIAL_STATE_COMPLETE after the initial
   * state; PROGRESS is not passed on). When the stream breaks (the server
   * restarts or fails over, or ends the stream for a slow reader), it
   * reconnects with backoff, to the next address when the last one is
   * UNAVAILABLE, and resumes after the last version it yielded of each
   * config, so that each version comes once and in order. It ends when
   * `signal` aborts or the caller stops iterating, and throws a
   * `CfgdClientError` when the server refuses the watch itself
   * (INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED …).
   */
  async *watch(target: WatchTarget, options: WatchOptions = {}): AsyncGenerator<WatchResponse> {
    const { signal } = options;
    const configName = target.configName ?? '';
    const userWatch = configName === '';
    let last = options.startVersion;
    const known = new Map(Object.entries(options.knownVersions ?? {}));
    let initialStateSeen = false;
    let failures = 0;
    while (!isAborted(signal) && !this.closed) {
      const endpoint = this.endpoints[this.current]!;
      const request = WatchRequest.fromPartial({
        userId: target.userId,
        configName,
        ...(userWatch ? { knownVersions: Object.fromEntries(known) } : { startVersion: last }),
      });
      const stream: ClientReadableStream<WatchResponse> = endpoint.config.watch(request, this.metadata());
      this.streams.add(stream);
      const cancel = (): void => stream.cancel();
      signal?.addEventListener('abort', cancel, { once: true });
      // The server sends its headers once the watch is accepted, before any event.
      if (options.onOpen !== undefined) stream.once('metadata', () => options.onOpen?.(endpoint.address));
      let failure: CfgdClientError | undefined;
      try {
        for await (const message of stream as AsyncIterable<WatchResponse>) {
          failures = 0;
          if (message.type === WatchEventType.WATCH_EVENT_TYPE_PROGRESS) continue;
          if (message.type === WatchEventType.WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE) {
            // A reconnected user watch sends its initial state again: only the versions after those
            // the caller has, and then the marker, which the caller has already seen.
            if (initialStateSeen) continue;
            initialStateSeen = true;
            yield message;
            continue;
          }
          const version = message.config?.version ?? message.auditEntry?.version;
          if (version === undefined) {
            yield message;
            continue;
          }
          const resync = message.type === WatchEventType.WATCH_EVENT_TYPE_RESYNC;
          if (userWatch) {
            const name = message.config?.configName ?? '';
            const had = known.get(name);
            // Never a version twice, nor one older than what the caller has (a RESYNC replaces the state).
            if (had !== undefined && version <= had && !resync) continue;
            known.set(name, version);
          } else {
            if (last !== undefined && version <= last && !resync) continue;
            last = version;
          }
          yield message;
        }
      } catch (error: unknown) {
        failure = toClientError(error);
      } finally {
        signal?.removeEventListener('abort', cancel);
        this.streams.delete(stream);
        stream.cancel();
      }
      if (isAborted(signal) || this.closed) return;
      if (failure !== undefined && !WATCH_RETRYABLE.has(failure.code)) throw failure;
      if (failure !== undefined && RETRYABLE.has(failure.code)) this.failOver(endpoint);
      const delay = this.delay(failures++);
      options.onReconnect?.(
        failure ?? new CfgdClientError(GrpcStatus.UNAVAILABLE, 'the watch stream ended', undefined, {}, []),
        delay,
      );
      await sleep(delay, signal);
    }
  }

  /** Ends every watch (their iterators return) and closes every channel. */
  close(): void {
    this.closed = true;
    this.closing.abort();
    for (const stream of this.streams) stream.cancel();
    this.streams.clear();
    for (const endpoint of this.endpoints) {
      endpoint.config.close();
      endpoint.auth.close();
      endpoint.status.close();
      endpoint.fleet.close();
    }
  }

  /**
   * One unary call, with failover and, for `retry`, up to `attempts` attempts
   * on UNAVAILABLE or DEADLINE_EXCEEDED (the same request each time: writes
   * carry their request id). `once` is tried on the next address only when
   * the call certainly never reached a server (no connection).
   */
  private async call<Req, Res>(
    method: (endpoint: Endpoint) => Unary<Req, Res>,
    request: Req,
    policy: 'retry' | 'once',
  ): Promise<Res> {
    for (let attempt = 1; ; attempt++) {
      const endpoint = this.endpoints[this.current]!;
      try {
        return await new Promise<Res>((resolve, reject) => {
          method(endpoint)(request, this.metadata(), { deadline: Date.now() + this.deadlineMs }, (error, response) =>
            error === null ? resolve(response) : reject(error),
          );
        });
      } catch (error: unknown) {
        const failure = toClientError(error);
        // A server that does not answer in time may be cut off from this client: try another.
        if (RETRYABLE.has(failure.code)) this.failOver(endpoint);
        const again = policy === 'retry' ? RETRYABLE.has(failure.code) : neverSent(failure);
        // A closed client tries no more: its last failure is the answer.
        if (!again || attempt >= this.attempts || this.closed) throw failure;
        // Straight to the next address after a failover; back off once every address has been tried.
        if (attempt % this.endpoints.length === 0) {
          await sleep(this.delay(attempt / this.endpoints.length - 1), this.closing.signal);
          if (this.closed) throw failure;
        }
      }
    }
  }

  private failOver(from: Endpoint): void {
    if (this.endpoints[this.current] === from) this.current = (this.current + 1) % this.endpoints.length;
  }

  /** The `n`-th backoff delay (from 0): exponential, capped, with up to 50 % jitter. */
  private delay(n: number): number {
    const base = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.min(n, 20));
    return Math.round(base / 2 + (Math.random() * base) / 2);
  }

  private metadata(): Metadata {
    const metadata = new Metadata();
    if (this.options.token !== undefined) metadata.set('authorization', `Bearer ${this.options.token}`);
    return metadata;
  }
}

function channelCredentials(tls: ClientTls | undefined): ChannelCredentials {
  if (tls === undefined) return credentials.createInsecure();
  return credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null);
}

/** `request` with a request id: its own, or a new UUID that every attempt of the call will carry. */
function withRequestId<T extends { requestId?: string | undefined }>(request: T): T {
  return request.requestId === undefined ? { ...request, requestId: randomUUID() } : request;
}

/** Whether a call failed before any server could have acted on it (no connection could be made). */
function neverSent(error: CfgdClientError): boolean {
  return error.code === GrpcStatus.UNAVAILABLE && /No connection established|ECONNREFUSED/.test(error.message);
}

/** Read through a call, so that the compiler does not narrow it across awaits. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}
