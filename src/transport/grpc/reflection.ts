import type { Server } from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { FILE_DESCRIPTOR_SET_BASE64 } from '../../../generated/descriptors.js';

/** Every RPC of the reflection services, by full name (grpcurl speaks v1alpha, newer tools v1). */
export const REFLECTION_RPCS = [
  'grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
  'grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo',
];

/**
 * gRPC server reflection (`@grpc/reflection`) over every service the server
 * serves: cfgd's, the health service's and reflection's own, all compiled by
 * `npm run generate` into the embedded descriptor set (the gRPC protos are
 * vendored under proto/grpc for that), so no proto file is read at run time.
 * `grpcurl -plaintext HOST:PORT list` and `describe` then work without protos.
 *
 * The library indexes the `fileDescriptorProtos` of a proto-loader package
 * definition. It is handed the compiler's own descriptors instead of
 * proto-loader's: those merge every file of a package into one, under the
 * name of one of them, and drop each file's imports, which clients that
 * resolve files by name and import (grpcurl, buf curl) cannot use.
 */
export function reflectionService(): { addToServer(server: Pick<Server, 'addService'>): void } {
  const set = fromBinary(FileDescriptorSetSchema, Buffer.from(FILE_DESCRIPTOR_SET_BASE64, 'base64'));
  const fileDescriptorProtos = set.file.map((file) => Buffer.from(toBinary(FileDescriptorProtoSchema, file)));
  // The one entry the library reads: what proto-loader would put on each of a definition's types.
  const definition = { descriptors: { fileDescriptorProtos } } as unknown as PackageDefinition;
  return new ReflectionService(definition);
}
