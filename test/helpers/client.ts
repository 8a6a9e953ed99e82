import {
  credentials,
  Metadata,
  type ChannelCredentials,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  ConfigServiceClient,
  type GetRequest,
  type GetResponse,
  type HistoryRequest,
  type HistoryResponse,
  type PutRequest,
  type PutResponse,
  type WatchRequest,
  type WatchResponse,
  WatchEventType,
} from '../../generated/cfgd/v1/config_service.js';
import { StatusServiceClient, type GetStatusResponse } from '../../generated/cfgd/v1/status_service.js';
import { BadRequest, ErrorInfo } from '../../generated/google/rpc/error_details.js';
import { Status } from '../../generated/google/rpc/status.js';

/** The generated grpc-js client with promise-returning unary calls. */
export class TestClient {
  readonly raw: ConfigServiceClient;
  private readonly statusClient: StatusServiceClient;

  /**
   * `ownConnection`: a connection of its own instead of the one shared by clients of the same address.
   * `credentials`: e.g. `credentials.createSsl(ca)` for a TLS port; plaintext without.
   */
  constructor(port: number, options: { ownConnection?: boolean; credentials?: ChannelCredentials } = {}) {
    const channelOptions = options.ownConnection === true ? { 'grpc.use_local_subchannel_pool': 1 } : {};
    const channelCredentials = options.credentials ?? credentials.createInsecure();
    this.raw = new ConfigServiceClient(`127.0.0.1:${port}`, channelCredentials, channelOptions);
    this.statusClient = new StatusServiceClient(`127.0.0.1:${port}`, channelCredentials, channelOptions);
  }

  status(): Promise<GetStatusResponse> {
    return new Promise((resolve, reject) =>
      this.statusClient.getStatus({}, (error, response) => (error ? reject(error) : resolve(response))),
    );
  }

  put(request: Partial<PutRequest>): Promise<PutResponse> {
    return new Promise((resolve, reject) =>
      this.raw.put({ values: undefined, validateOnly: false, ...withDefaults(request) }, (error, response) =>
        error ? reject(error) : resolve(response),
      ),
    );
  }

  get(request: Partial<GetRequest>): Promise<GetResponse> {
    return new Promise((resolve, reject) =>
      this.raw.get({ version: 0, ...withDefaults(request) }, (error, response) =>
        error ? reject(error) : resolve(response),
      ),
    );
  }

  history(request: Partial<HistoryRequest>): Promise<HistoryResponse> {
    return new Promise((resolve, reject) =>
      this.raw.history({ startVersion: 0, pageSize: 0, pageToken: '', ...withDefaults(request) }, (error, response) =>
        error ? reject(error) : resolve(response),
      ),
    );
  }

  watch(request: Partial<WatchRequest>): ClientReadableStream<WatchResponse> {
    return this.raw.watch({ knownVersions: {}, ...withDefaults(request) });
  }

  close(): void {
    this.raw.close();
    this.statusClient.close();
  }
}

function withDefaults<T extends { userId?: string; configName?: string }>(
  request: T,
): T & { userId: string; configName: string } {
  return { ...request, userId: request.userId ?? '', configName: request.configName ?? '' };
}

/** A unary call of a generated grpc-js client method (bound to its client) as a promise. */
export function call<Req, Res>(
  method: (request: Req, callback: (error: ServiceError | null, response: Res) => void) => unknown,
  request: Req,
): Promise<Res> {
  return new Promise((resolve, reject) =>
    method(request, (error, response) => (error ? reject(error) : resolve(response))),
  );
}

/** The rich error details cfgd sends in the `grpc-status-details-bin` trailer. */
export function statusDetails(error: ServiceError): {
  status: Status;
  errorInfo: ErrorInfo | undefined;
  badRequest: BadRequest | undefined;
} {
  const raw = error.metadata?.get('grpc-status-details-bin')[0];
  if (!(raw instanceof Buffer)) throw new Error('no grpc-status-details-bin trailer');
  const status = Status.decode(raw);
  const find = (type: string) => status.details.find((d) => d.typeUrl === `type.googleapis.com/${type}`)?.value;
  const info = find('google.rpc.ErrorInfo');
  const bad = find('google.rpc.BadRequest');
  return {
    status,
    errorInfo: info && ErrorInfo.decode(info),
    badRequest: bad && BadRequest.decode(bad),
  };
}

/** Resolves with the error a promise rejects with; fails if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (error: unknown) {
    return error as ServiceError;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/**
 * Collects watch events until `until` says stop (then cancels the stream), or
 * until the stream ends; resolves with the events and how the stream ended.
 * PROGRESS messages are counted, not collected.
 */
export function collect(
  stream: ClientReadableStream<WatchResponse>,
  until: (events: WatchResponse[]) => boolean,
): Promise<{ events: WatchResponse[]; error: ServiceError | undefined; progress: number }> {
  const events: WatchResponse[] = [];
  let progress = 0;
  return new Promise((resolve) => {
    let done = false;
    const finish = (error: ServiceError | undefined): void => {
      if (done) return;
      done = true;
      resolve({ events, error, progress });
    };
    stream.on('data', (event: WatchResponse) => {
      if (event.type === WatchEventType.WATCH_EVENT_TYPE_PROGRESS) progress++;
      else events.push(event);
      if (!done && until(events)) {
        finish(undefined);
        stream.cancel();
      }
    });
    stream.on('error', (error: ServiceError) => finish(error));
    stream.on('end', () => finish(undefined));
  });
}

/** Resolves when the stream has received its response headers. */
export function opened(stream: ClientReadableStream<unknown>): Promise<Metadata> {
  return new Promise((resolve, reject) => {
    stream.once('metadata', resolve);
    stream.once('error', reject);
  });
}
