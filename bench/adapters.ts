/**
 * One interface per target for the Node-client workloads, and the pre-encoded
 * requests h2load replays. etcd is spoken to through its own gRPC API
 * (etcdserverpb.KV and Watch), encoded here with the few fields used.
 */
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { credentials, Client, Metadata, type ClientDuplexStream } from '@grpc/grpc-js';
import { ConfigServiceClient, GetRequest, PutRequest, WatchRequest } from '../generated/cfgd/v1/config_service.js';
import { KEY_PLACEHOLDER, SEQ_PLACEHOLDER } from './grpc-put.js';

export interface Adapter {
  readonly name: string;
  /** Writes `values` (a new value each call) and resolves when acknowledged. */
  put(key: string, values: Record<string, unknown>): Promise<void>;
  get(key: string): Promise<void>;
  /** Opens `count` watchers of `key` on `channels` connections; `onEvent` gets each delivery's tag. */
  watch(key: string, count: number, channels: number, onEvent: (tag: number) => void): Promise<() => void>;
  /** The gRPC path and framed body h2load replays for a read of `key`. */
  h2Get(key: string): { path: string; body: Buffer };
  /**
   * The gRPC path and framed body template grpc-put-load sends for Puts to configs (keys) named
   * `prefix` + a 4-digit number, each with a new value (see bench/grpc-put.ts for the placeholders).
   */
  grpcPut?(prefix: string): { path: string; body: Buffer };
  /** Sets the JSON Schema every later Put of `key` must satisfy (cfgd only: etcd has no schemas). */
  setSchema?(key: string, schema: Record<string, unknown>): Promise<void>;
  /** The `authorization` header every request to this target carries (cfgd with auth on), if any. */
  readonly authorization?: string | undefined;
  close(): void;
}

/** The values of each Put of the capacity run: a new sequence number per request, and 64 bytes besides. */
const LOAD_VALUES = { n: SEQ_PLACEHOLDER, filler: 'x'.repeat(64) };

/** A gRPC message as it travels: compression flag, 4-byte length, the protobuf bytes. */
export function frame(message: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  Buffer.from(message).copy(out, 5);
  return out;
}

const USER = 'bench';

/**
 * One of the connections that carry the fan-out watchers (the same for every
 * target). Thousands of streams share a few connections here, so the client's
 * HTTP/2 connection window is raised from grpc-js's 64 KiB to 8 MiB: with the
 * default, every target waits on this one busy client process for window
 * updates, and the figure measures the client, not the server.
 */
function watchChannel(port: number, index: number): Client {
  return new Client(`127.0.0.1:${port}`, credentials.createInsecure(), {
    'grpc.channel_id': index,
    'grpc-node.flow_control_window': 8 * 1024 * 1024,
  });
}

/**
 * cfgd through its generated client. With `authorization` (cfgd with auth on), every call and
 * watch stream sends it as metadata; without, none is sent (auth off).
 */
export function cfgdAdapter(name: string, port: number, authorization?: string): Adapter {
  const main = new ConfigServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  const clients: Client[] = [main];
  const metadata = (): Metadata => {
    const m = new Metadata();
    if (authorization !== undefined) m.set('authorization', authorization);
    return m;
  };
  return {
    name,
    authorization,
    put: (key, values) =>
      new Promise((resolve, reject) =>
        main.put(
          { userId: USER, configName: key, values, expectedVersion: undefined, validateOnly: false },
          metadata(),
          (e) => (e ? reject(e) : resolve()),
        ),
      ),
    get: (key) =>
      new Promise((resolve, reject) =>
        main.get({ userId: USER, configName: key, version: 0 }, metadata(), (e) => (e ? reject(e) : resolve())),
      ),
    setSchema: (key, schema) =>
      new Promise((resolve, reject) =>
        main.setSchema(
          { userId: USER, configName: key, schema, migrationValues: undefined, validateOnly: false },
          metadata(),
          (e) => (e ? reject(e) : resolve()),
        ),
      ),
    async watch(key, count, channels, onEvent) {
      // Raw clients that decode only the tag, as the etcd adapter does: the figure is the server's
      // delivery time, not the time a full decode of 10,000 events takes in one client process.
      const pool = Array.from({ length: channels }, (_, i) => watchChannel(port, i));
      clients.push(...pool);
      const request = { userId: USER, configName: key, startVersion: undefined, knownVersions: {} };
      const streams = Array.from({ length: count }, (_, i) => {
        const stream = pool[i % channels]!.makeServerStreamRequest(
          '/cfgd.v1.ConfigService/Watch',
          (message: typeof request) => Buffer.from(WatchRequest.encode(message).finish()),
          (bytes: Buffer) => bytes,
          request,
          metadata(),
        );
        stream.on('data', (bytes: Buffer) => {
          const tag = cfgdWatchTag(bytes);
          if (tag !== undefined) onEvent(tag);
        });
        stream.on('error', () => {});
        return stream;
      });
      await Promise.all(streams.map((s) => new Promise((resolve) => s.once('metadata', resolve))));
      return () => streams.forEach((s) => s.cancel());
    },
    h2Get: (key) => ({
      path: '/cfgd.v1.ConfigService/Get',
      body: frame(GetRequest.encode({ userId: USER, configName: key, version: 0 }).finish()),
    }),
    grpcPut: (prefix) => ({
      path: '/cfgd.v1.ConfigService/Put',
      body: frame(
        PutRequest.encode({
          userId: USER,
          configName: `${prefix}${KEY_PLACEHOLDER}`,
          values: LOAD_VALUES,
          expectedVersion: undefined,
          validateOnly: false,
        }).finish(),
      ),
    }),
    close: () => clients.forEach((c) => c.close()),
  };
}

/** The echo server answers the cfgd paths with the request bytes. */
export function echoAdapter(port: number): Adapter {
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  const call = (method: string, bytes: Uint8Array): Promise<void> =>
    new Promise((resolve, reject) =>
      client.makeUnaryRequest(
        `/cfgd.v1.ConfigService/${method}`,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(bytes),
        (e) => (e ? reject(e) : resolve()),
      ),
    );
  return {
    name: 'echo',
    put: (key, values) =>
      call(
        'Put',
        PutRequest.encode({
          userId: USER,
          configName: key,
          values,
          expectedVersion: undefined,
          validateOnly: false,
        }).finish(),
      ),
    get: (key) => call('Get', GetRequest.encode({ userId: USER, configName: key, version: 0 }).finish()),
    watch: () => Promise.reject(new Error('the echo server has no watch')),
    h2Get: (key) => ({
      path: '/cfgd.v1.ConfigService/Get',
      body: frame(GetRequest.encode({ userId: USER, configName: key, version: 0 }).finish()),
    }),
    close: () => client.close(),
  };
}

// etcdserverpb field numbers (api/etcdserverpb/rpc.proto, api/mvccpb/kv.proto).
const etcdPut = (key: string, value: Uint8Array): Uint8Array =>
  new BinaryWriter().uint32(10).bytes(Buffer.from(key)).uint32(18).bytes(value).finish();
const etcdRange = (key: string): Uint8Array => new BinaryWriter().uint32(10).bytes(Buffer.from(key)).finish();
const etcdWatchCreate = (key: string): Uint8Array => {
  const create = new BinaryWriter().uint32(10).bytes(Buffer.from(key)).finish();
  return new BinaryWriter().uint32(10).bytes(create).finish();
};

/** The length-delimited fields `number` of a protobuf message (submessages, strings, bytes). */
function fields(bytes: Uint8Array, number: number): Uint8Array[] {
  const found: Uint8Array[] = [];
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wire] = reader.tag();
    if (field === number && wire === WireType.LengthDelimited) found.push(reader.bytes());
    else reader.skip(wire);
  }
  return found;
}

/** The double field `number` of a protobuf message, if present. */
function doubleField(bytes: Uint8Array, number: number): number | undefined {
  const reader = new BinaryReader(bytes);
  let value: number | undefined;
  while (reader.pos < reader.len) {
    const [field, wire] = reader.tag();
    if (field === number && wire === WireType.Bit64) value = reader.double();
    else reader.skip(wire);
  }
  return value;
}

/**
 * The number under `tag` in a cfgd WatchResponse's `config.values` (a Struct:
 * entries of key 1 and Value 2, whose number_value is field 2); undefined for
 * messages without a config.
 */
function cfgdWatchTag(bytes: Buffer): number | undefined {
  const config = fields(bytes, 1)[0];
  if (config === undefined) return undefined;
  for (const values of fields(config, 6)) {
    for (const entry of fields(values, 1)) {
      if (Buffer.from(fields(entry, 1)[0] ?? []).toString('utf8') !== 'tag') continue;
      const value = fields(entry, 2)[0];
      return (value && doubleField(value, 2)) ?? -1;
    }
  }
  return -1;
}

/** The `tag` inside the values of each event of an etcd WatchResponse (events 11 → kv 2 → value 5). */
function etcdWatchTags(bytes: Buffer): number[] {
  const tags: number[] = [];
  for (const event of fields(bytes, 11)) {
    for (const kv of fields(event, 2)) {
      for (const value of fields(kv, 5)) {
        tags.push((JSON.parse(Buffer.from(value).toString('utf8')) as { tag?: number }).tag ?? -1);
      }
    }
  }
  return tags;
}

export function etcdAdapter(port: number): Adapter {
  const clients: Client[] = [new Client(`127.0.0.1:${port}`, credentials.createInsecure())];
  const main = clients[0]!;
  const unary = (path: string, bytes: Uint8Array): Promise<void> =>
    new Promise((resolve, reject) =>
      main.makeUnaryRequest(
        path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(bytes),
        (e) => (e ? reject(e) : resolve()),
      ),
    );
  return {
    name: 'etcd',
    put: (key, values) => unary('/etcdserverpb.KV/Put', etcdPut(key, Buffer.from(JSON.stringify(values)))),
    get: (key) => unary('/etcdserverpb.KV/Range', etcdRange(key)),
    async watch(key, count, channels, onEvent) {
      const pool = Array.from({ length: channels }, (_, i) => watchChannel(port, i));
      clients.push(...pool);
      const streams: ClientDuplexStream<Buffer, Buffer>[] = [];
      const created: Promise<unknown>[] = [];
      for (let i = 0; i < count; i++) {
        const stream = pool[i % channels]!.makeBidiStreamRequest(
          '/etcdserverpb.Watch/Watch',
          (b: Buffer) => b,
          (b: Buffer) => b,
          new Metadata(),
        );
        let first = true;
        created.push(
          new Promise((resolve) =>
            stream.on('data', (bytes: Buffer) => {
              if (first) {
                first = false;
                resolve(undefined);
              }
              for (const tag of etcdWatchTags(bytes)) onEvent(tag);
            }),
          ),
        );
        stream.on('error', () => {});
        stream.write(Buffer.from(etcdWatchCreate(key)));
        streams.push(stream);
      }
      await Promise.all(created);
      return () => streams.forEach((s) => s.cancel());
    },
    h2Get: (key) => ({ path: '/etcdserverpb.KV/Range', body: frame(etcdRange(key)) }),
    grpcPut: (prefix) => ({
      path: '/etcdserverpb.KV/Put',
      body: frame(etcdPut(`${prefix}${KEY_PLACEHOLDER}`, Buffer.from(JSON.stringify(LOAD_VALUES)))),
    }),
    close: () => clients.forEach((c) => c.close()),
  };
}
