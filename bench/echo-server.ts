/**
 * The ceiling of any single grpc-js process here: ConfigService's method paths
 * answered by handlers that return the request bytes untouched (no decoding,
 * no work). Prints its port on stdout.
 */
import { Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';

const identity = (bytes: Buffer): Buffer => bytes;
const method = (name: string, responseStream: boolean) => ({
  path: `/cfgd.v1.ConfigService/${name}`,
  requestStream: false,
  responseStream,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
});
const definition = { Put: method('Put', false), Get: method('Get', false) } as unknown as ServiceDefinition;

const server = new Server();
server.addService(definition, {
  Put: (call: { request: Buffer }, callback: (e: null, r: Buffer) => void) => callback(null, call.request),
  Get: (call: { request: Buffer }, callback: (e: null, r: Buffer) => void) => callback(null, call.request),
});
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  console.log(port);
});
process.on('SIGTERM', () => server.forceShutdown());
