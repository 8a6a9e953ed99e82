/**
 * A client of the standard gRPC health service (`grpc.health.v1.Health`),
 * built the way any other tool would build it: from the health proto that
 * grpc-health-check ships, with proto-loader, and nothing of cfgd's.
 */
import {
  Channel,
  credentials,
  loadPackageDefinition,
  status as GrpcStatus,
  type CallOptions,
  type Client,
  type ClientReadableStream,
  type ClientUnaryCall,
  type GrpcObject,
  type Metadata,
  type ServiceClientConstructor,
  type ServiceError,
  type StatusObject,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath } from 'grpc-health-check';
import { authMetadata } from './auth.js';

/** `HealthCheckResponse.ServingStatus`, by name. */
export type HealthStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

interface HealthCheckResponse {
  readonly status: HealthStatus;
}

/** The health service's client as proto-loader builds it (grpc-js types a loaded client's methods loosely). */
interface RawHealthClient extends Client {
  Check(
    request: { service: string },
    metadata: Metadata,
    options: CallOptions,
    callback: (error: ServiceError | null, response?: HealthCheckResponse) => void,
  ): ClientUnaryCall;
  Watch(
    request: { service: string },
    metadata: Metadata,
    options: CallOptions,
  ): ClientReadableStream<HealthCheckResponse>;
}

/** The deadline of a Check: a server that does not answer fails the test, it does not hang it. */
const CHECK_MS = 5000;
/** The deadline of a Watch: longer than any test waits on one, shorter than the test's own timeout. */
const WATCH_MS = 45_000;

const definition = loadSync(protoPath, { keepCase: true, enums: String, longs: String, defaults: true });

/** The full name's client constructor in a loaded package (`grpc.health.v1.Health` …). */
export function clientConstructor(loaded: GrpcObject, fullName: string): ServiceClientConstructor {
  let node: unknown = loaded;
  for (const part of fullName.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  if (typeof node !== 'function' || !('service' in node)) throw new Error(`${fullName} is not a service`);
  return node as ServiceClientConstructor;
}

const HealthClientConstructor = clientConstructor(loadPackageDefinition(definition), 'grpc.health.v1.Health');

let channels = 0;

/** A health client on a connection of its own (no other channel shares it), to 127.0.0.1:`port`. */
export class HealthClient {
  private readonly raw: RawHealthClient;
  private readonly watches = new Set<HealthWatch>();

  constructor(port: number) {
    const target = `127.0.0.1:${port}`;
    const channel = new Channel(target, credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'cfgd-test.health-channel': ++channels,
    });
    this.raw = new HealthClientConstructor(target, credentials.createInsecure(), {
      channelOverride: channel,
    }) as unknown as RawHealthClient;
  }

  /** `Check(service)`, with `authorization` if given; resolves with the status, rejects with the call's error. */
  check(service: string, authorization?: string): Promise<HealthStatus> {
    return new Promise((resolve, reject) => {
      this.raw.Check(
        { service },
        authMetadata(authorization),
        { deadline: Date.now() + CHECK_MS },
        (error, response) => (error ? reject(error) : resolve(response!.status)),
      );
    });
  }

  /** Opens `Watch(service)`, with `authorization` if given. */
  watch(service: string, authorization?: string): HealthWatch {
    const watch = new HealthWatch(
      this.raw.Watch({ service }, authMetadata(authorization), { deadline: Date.now() + WATCH_MS }),
    );
    this.watches.add(watch);
    return watch;
  }

  /** Cancels every watch still open and closes the connection. */
  close(): void {
    for (const watch of this.watches) watch.cancel();
    this.raw.close();
  }
}

/** How a Watch stream ended: its final status, and every status it had delivered by then. */
export interface WatchEnd {
  readonly code: GrpcStatus;
  readonly details: string;
  readonly statuses: readonly HealthStatus[];
}

/** A Watch stream: the statuses it delivered so far, in order, and its end. */
export class HealthWatch {
  readonly statuses: HealthStatus[] = [];
  /** Resolves once the stream has ended (status and end of data both seen), with what it delivered before. */
  readonly ended: Promise<WatchEnd>;

  constructor(private readonly stream: ClientReadableStream<HealthCheckResponse>) {
    stream.on('data', (response: HealthCheckResponse) => this.statuses.push(response.status));
    const status = new Promise<StatusObject>((resolve) => stream.once('status', resolve));
    // An OK end comes as `end` after the last message; an error as `error` (after which `end` need not come).
    const drained = new Promise<void>((resolve) => {
      stream.once('end', resolve);
      stream.on('error', () => resolve());
    });
    this.ended = Promise.all([status, drained]).then(([{ code, details }]) => ({
      code,
      details,
      statuses: [...this.statuses],
    }));
  }

  cancel(): void {
    this.stream.cancel();
  }
}

/** `statuses` without repeats of the one before: the changes a watcher saw. */
export function changes(statuses: readonly HealthStatus[]): HealthStatus[] {
  return statuses.filter((status, i) => i === 0 || status !== statuses[i - 1]);
}
