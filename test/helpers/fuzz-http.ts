import { connect, type Socket } from 'node:net';

/** One HTTP/1.1 response as read off the wire. */
export interface RawResponse {
  readonly status: number;
  /** Lower-cased names; a repeated header keeps its last value. */
  readonly headers: Record<string, string>;
  readonly body: string;
  /** An event stream: its headers were read, its endless body was not (the connection is then closed). */
  readonly streaming: boolean;
}

/**
 * A keep-alive HTTP/1.1 connection over a bare socket: any bytes go out
 * (malformed request lines, bad chunking, truncated bodies), and responses are
 * read one at a time, so a test can check that a connection is still usable
 * after a bad request. node:http's client refuses to send most of these.
 */
export class RawHttpConnection {
  private buffer = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.wake?.();
    });
    const end = (): void => {
      this.ended = true;
      this.wake?.();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  static open(port: number): Promise<RawHttpConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawHttpConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** True once the server closed the connection (or it failed). */
  get closed(): boolean {
    return this.ended;
  }

  /** Sends bytes without waiting for an answer (a request in parts, or one never finished). */
  write(bytes: string | Buffer): void {
    if (!this.ended) this.socket.write(bytes);
  }

  /** Half-closes: the server sees the end of the request stream, as when a client is done sending. */
  finish(): void {
    if (!this.ended) this.socket.end();
  }

  /**
   * Reads the next response: resolves with it, or with undefined when the
   * server closed the connection before a complete one arrived. Rejects
   * after `timeoutMs` with no complete response (the server left the client hanging).
   * `head`: the request was HEAD, so the response has no body whatever its headers say.
   */
  async read(options: { head?: boolean; timeoutMs?: number } = {}): Promise<RawResponse | undefined> {
    const deadline = Date.now() + (options.timeoutMs ?? 5000);
    for (;;) {
      const parsed = parseResponse(this.buffer, options.head === true, this.ended);
      if (parsed !== undefined) {
        this.buffer = this.buffer.subarray(parsed.consumed);
        if (parsed.response.streaming) this.close();
        return parsed.response;
      }
      if (this.ended) return undefined;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no complete response within ${options.timeoutMs ?? 5000} ms; got ${JSON.stringify(this.buffer.toString('latin1').slice(0, 300))}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          this.wake = undefined;
          resolve();
        };
      });
    }
  }

  /** Sends a request and reads its response. */
  async exchange(
    bytes: string | Buffer,
    options: { head?: boolean; timeoutMs?: number } = {},
  ): Promise<RawResponse | undefined> {
    this.write(bytes);
    return this.read(options);
  }

  close(): void {
    this.socket.destroy();
    this.ended = true;
  }
}

/** Parses one response from the front of `buffer`; undefined while it is incomplete. */
function parseResponse(
  buffer: Buffer,
  head: boolean,
  ended: boolean,
): { response: RawResponse; consumed: number } | undefined {
  let offset = 0;
  for (;;) {
    const end = buffer.indexOf('\r\n\r\n', offset);
    if (end === -1) return undefined;
    const [statusLine = '', ...lines] = buffer.subarray(offset, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? Number.NaN);
    if (Number.isNaN(status)) throw new Error(`not an HTTP response: ${JSON.stringify(statusLine)}`);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const bodyStart = end + 4;
    // An interim response (100 Continue) precedes the real one.
    if (status >= 100 && status < 200) {
      offset = bodyStart;
      continue;
    }
    const done = (bodyEnd: number, body: Buffer, streaming = false) => ({
      response: { status, headers, body: body.toString('utf8'), streaming },
      consumed: bodyEnd,
    });
    if (head || status === 204 || status === 304) return done(bodyStart, Buffer.alloc(0));
    if ((headers['content-type'] ?? '').startsWith('text/event-stream')) {
      return done(buffer.length, buffer.subarray(bodyStart), true);
    }
    if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (buffer.length < bodyStart + length) return undefined;
      return done(bodyStart + length, buffer.subarray(bodyStart, bodyStart + length));
    }
    if ((headers['transfer-encoding'] ?? '').toLowerCase() === 'chunked') {
      const chunks: Buffer[] = [];
      let at = bodyStart;
      for (;;) {
        const lineEnd = buffer.indexOf('\r\n', at);
        if (lineEnd === -1) return undefined;
        const size = Number.parseInt(buffer.subarray(at, lineEnd).toString('latin1'), 16);
        if (size === 0) {
          const trailerEnd = buffer.indexOf('\r\n\r\n', lineEnd);
          if (trailerEnd === -1) return undefined;
          return done(trailerEnd + 4, Buffer.concat(chunks));
        }
        if (buffer.length < lineEnd + 2 + size + 2) return undefined;
        chunks.push(buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
    }
    // Neither length nor chunking: the body runs to the end of the connection.
    return ended ? done(buffer.length, buffer.subarray(bodyStart)) : undefined;
  }
}
