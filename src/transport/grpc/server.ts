import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { TlsMaterial } from '../tls.js';
import { sharedResponseEncoding } from './shared-encoding.js';
import { tolerantDecoding, tolerantService } from './undecodable.js';
import { toServiceError } from './errors.js';

export interface GrpcService {
  readonly definition: ServiceDefinition;
  readonly handlers: UntypedServiceImplementation;
}

export interface GrpcServerOptions {
  /** `host:port`; port 0 picks a free port. */
  readonly address: string;
  readonly services: readonly GrpcService[];
  /** Largest request message accepted, in bytes. */
  readonly maxReceiveMessageBytes: number;
  /** Interval of keepalive pings on each connection; a client that does not answer is dropped. */
  readonly keepaliveMs: number;
  /** How long a keepalive ping may go unanswered. */
  readonly keepaliveTimeoutMs: number;
  /** Services of libraries (health, reflection) that add themselves, as they are. */
  readonly addOns?: readonly { addToServer(server: Pick<Server, 'addService'>): void }[];
  /** Serve over TLS with this material (and require client certificates when it has a client CA); plaintext without. */
  readonly tls?: TlsMaterial | undefined;
}

export interface RunningGrpcServer {
  readonly port: number;
  /** Stops taking calls; waits up to `graceMs` for running calls, then cuts them. */
  shutdown(graceMs: number): Promise<void>;
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const server = new Server({
    'grpc.max_receive_message_length': options.maxReceiveMessageBytes,
    // Watch streams stay open for hours: ping idle connections so that a client that vanished
    // (a killed sidecar, a dropped network path) releases its streams within keepalive + timeout.
    'grpc.keepalive_time_ms': options.keepaliveMs,
    'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs,
  });
  for (const service of options.services) {
    server.addService(sharedResponseEncoding(tolerantDecoding(service.definition)), service.handlers);
  }
  // Libraries' services answer an undecodable request as cfgd's do (INVALID_ARGUMENT, not INTERNAL).
  const tolerant: Pick<Server, 'addService'> = {
    addService(definition, handlers) {
      const service = tolerantService(definition, handlers, (error) => toServiceError(error, () => {}));
      server.addService(service.definition as unknown as ServiceDefinition, service.handlers);
    },
  };
  for (const addOn of options.addOns ?? []) addOn.addToServer(tolerant);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(options.address, serverCredentials(options.tls), (error, boundPort) =>
      error ? reject(error) : resolve(boundPort),
    );
  });
  return {
    port,
    shutdown: (graceMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.forceShutdown(), graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

/**
 * TLS credentials for `tls`, or plaintext without it. With a client CA, a client must present a
 * certificate that CA signed, or its handshake fails; without one, no certificate is asked for.
 */
function serverCredentials(tls: TlsMaterial | undefined): ServerCredentials {
  if (tls === undefined) return ServerCredentials.createInsecure();
  const { cert, key, clientCa } = tls;
  return ServerCredentials.createSsl(
    clientCa ?? null,
    [{ cert_chain: cert, private_key: key }],
    clientCa !== undefined,
  );
}
