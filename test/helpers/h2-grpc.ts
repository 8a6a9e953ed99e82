import { connect as connectHttp2, constants, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { connect as connectTcp, createServer, type Server, type Socket } from 'node:net';

/**
 * gRPC over a bare node:http2 session, for requests the generated client
 * never sends: any bytes, any headers, any length prefix. With it a test
 * sees exactly what the server answers (`:status`, trailers, RST_STREAM).
 */

/** The 5-byte gRPC message prefix (compressed flag, big-endian length) followed by `message`. */
export function grpcFrame(message: Uint8Array, options: { compressed?: boolean; length?: number } = {}): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt8(options.compressed === true ? 1 : 0, 0);
  prefix.writeUInt32BE(options.length ?? message.length, 1);
  return Buffer.concat([prefix, message]);
}

export interface H2Answer {
  /** The HTTP `:status` (0 when the stream was reset before any headers). */
  readonly httpStatus: number;
  /** `grpc-status` from the trailers (or a trailers-only response); undefined when absent. */
  readonly grpcStatus: number | undefined;
  /** `grpc-message`, percent-decoded. */
  readonly grpcMessage: string;
  /** The response messages' bytes, prefixes included. */
  readonly data: Buffer;
  /** The RST_STREAM code the stream closed with (0: NO_ERROR, or closed normally). */
  readonly rstCode: number;
}

/** Opens a session; `maxSessionMemory` (MB) must exceed the largest message this client sends. */
export function h2Session(port: number, maxSessionMemory = 10): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connectHttp2(`http://127.0.0.1:${port}`, { maxSessionMemory });
    session.once('connect', () => {
      session.off('error', reject);
      // A session error after connecting shows as failed calls; it must not crash the test run.
      session.on('error', () => {});
      resolve(session);
    });
    session.once('error', reject);
  });
}

/**
 * One gRPC call: sends `body` (already framed, or any bytes) and collects the answer.
 * `cancelAfterMs`: cancel the call (RST_STREAM CANCEL) once the server opened its response
 * stream, or if it has no status by then, as a client does with a stream it is done with;
 * without it, a call with no answer within `timeoutMs` rejects.
 */
export function h2Call(
  session: ClientHttp2Session,
  path: string,
  body: Buffer,
  headers: Record<string, string> = {},
  timeoutMs = 10_000,
  cancelAfterMs?: number,
): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    let httpStatus = 0;
    let trailers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    const timer =
      cancelAfterMs === undefined
        ? setTimeout(() => {
            stream.close(constants.NGHTTP2_CANCEL);
            reject(new Error(`no answer on ${path} within ${timeoutMs} ms`));
          }, timeoutMs)
        : setTimeout(() => stream.close(constants.NGHTTP2_CANCEL), cancelAfterMs);
    stream.on('response', (head, flags) => {
      httpStatus = Number(head[':status']);
      // A trailers-only answer carries grpc-status in its only HEADERS frame.
      if ((flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0 || head['grpc-status'] !== undefined) trailers = head;
      // Headers without a status: a server stream has opened, and one that is to be cancelled can go now.
      else if (cancelAfterMs !== undefined) setImmediate(() => stream.close(constants.NGHTTP2_CANCEL));
    });
    stream.on('trailers', (head) => {
      trailers = head;
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    // Errors (a reset stream, a write after the server's answer) show in rstCode, not as rejections.
    stream.on('error', () => {});
    stream.on('close', () => {
      clearTimeout(timer);
      const status = trailers['grpc-status'];
      const message = trailers['grpc-message'];
      resolve({
        httpStatus,
        grpcStatus: status === undefined ? undefined : Number(status),
        grpcMessage: typeof message === 'string' ? safeDecode(message) : '',
        data: Buffer.concat(chunks),
        rstCode: stream.rstCode ?? 0,
      });
    });
    stream.end(body);
  });
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** HTTP/2 frame types and the error codes this suite looks for (RFC 9113 §6, §7). */
export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
export const H2_ERROR = { NO_ERROR: 0, CANCEL: 8, ENHANCE_YOUR_CALM: 11 } as const;

export interface H2FrameSeen {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  /** RST_STREAM and GOAWAY: the error code. */
  readonly errorCode: number | undefined;
}

/**
 * A loopback TCP proxy in front of an HTTP/2 server that parses the frames
 * the server sends (the server's side has no preface: frames from the first
 * byte), so a test can prove what the server did rather than what the client
 * library reported: which RST_STREAM and GOAWAY frames it sent, with which codes.
 */
export class H2FrameProxy {
  /** Every frame the server sent, in order, across connections. */
  readonly fromServer: H2FrameSeen[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<H2FrameProxy> {
    let proxy!: H2FrameProxy;
    const server = createServer((client) => {
      const upstream = connectTcp(targetPort, '127.0.0.1');
      const parse = frameParser((frame) => proxy.fromServer.push(frame));
      for (const socket of [client, upstream]) {
        // Without it, Nagle's algorithm and delayed ACKs hold each small frame for ~40 ms.
        socket.setNoDelay(true);
        proxy.sockets.add(socket);
        socket.on('close', () => proxy.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      upstream.on('data', parse);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    proxy = new H2FrameProxy(server, typeof address === 'object' && address !== null ? address.port : 0);
    return proxy;
  }

  /** The frames of one type the server sent. */
  frames(type: number): H2FrameSeen[] {
    return this.fromServer.filter((frame) => frame.type === type);
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Splits a byte stream into HTTP/2 frames as it arrives, whatever the chunking. */
function frameParser(onFrame: (frame: H2FrameSeen) => void): (chunk: Buffer) => void {
  let buffer = Buffer.alloc(0);
  return (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    while (buffer.length >= 9) {
      const length = buffer.readUIntBE(0, 3);
      if (buffer.length < 9 + length) break;
      const type = buffer.readUInt8(3);
      const streamId = buffer.readUInt32BE(5) & 0x7fffffff;
      const payload = buffer.subarray(9, 9 + length);
      let errorCode: number | undefined;
      if (type === FRAME.RST_STREAM && length >= 4) errorCode = payload.readUInt32BE(0);
      if (type === FRAME.GOAWAY && length >= 8) errorCode = payload.readUInt32BE(4);
      onFrame({ type, flags: buffer.readUInt8(4), streamId, errorCode });
      buffer = buffer.subarray(9 + length);
    }
  };
}
