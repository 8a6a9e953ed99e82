import { Server, ServerCredentials } from '@grpc/grpc-js';
import { ConfigServiceService, type ConfigServiceServer } from '../../../generated/cfgd/v1/config_service.js';
import { tolerantDecoding } from './undecodable.js';

export interface GrpcServerOptions {
  /** `host:port`; port 0 picks a free port. */
  readonly address: string;
  readonly handlers: ConfigServiceServer;
  /** Largest request message accepted, in bytes. */
  readonly maxReceiveMessageBytes: number;
}

export interface RunningGrpcServer {
  readonly port: number;
  /** Stops taking calls; waits up to `graceMs` for running calls, then cuts them. */
  shutdown(graceMs: number): Promise<void>;
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const server = new Server({ 'grpc.max_receive_message_length': options.maxReceiveMessageBytes });
  server.addService(tolerantDecoding(ConfigServiceService), options.handlers);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(options.address, ServerCredentials.createInsecure(), (error, boundPort) =>
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
