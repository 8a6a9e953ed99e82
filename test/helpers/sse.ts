import { request, type ClientRequest, type IncomingMessage } from 'node:http';

export interface SseEvent {
  readonly id: string | undefined;
  readonly event: string;
  readonly data: string;
}

/** A Server-Sent Events reader over node:http, parsing the stream as it arrives. */
export class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  ended = false;
  private req: ClientRequest | undefined;
  private waiters: (() => void)[] = [];

  private constructor() {}

  static open(
    port: number,
    path: string,
    headers: Record<string, string> = {},
  ): Promise<{ client: SseClient; res: IncomingMessage }> {
    const client = new SseClient();
    return new Promise((resolve, reject) => {
      client.req = request(
        { host: '127.0.0.1', port, path, headers: { accept: 'text/event-stream', ...headers } },
        (res) => {
          let buffer = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buffer += chunk;
            let end: number;
            while ((end = buffer.indexOf('\n\n')) !== -1) {
              client.parse(buffer.slice(0, end));
              buffer = buffer.slice(end + 2);
            }
          });
          const finish = (): void => {
            client.ended = true;
            client.notify();
          };
          res.on('end', finish);
          res.on('close', finish);
          res.on('error', finish);
          resolve({ client, res });
        },
      );
      client.req.on('error', (error) => {
        if (client.ended) return;
        reject(error);
      });
      client.req.end();
    });
  }

  private parse(block: string): void {
    let id: string | undefined;
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
      else if (line.startsWith('id: ')) id = line.slice(4);
      else if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length > 0) this.events.push({ id, event, data: data.join('\n') });
    this.notify();
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  /** Resolves once `condition` holds (checked after every event), or rejects after `timeoutMs`. */
  async until(condition: (client: SseClient) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition(this)) {
      if (this.ended) throw new Error('the stream ended first');
      if (Date.now() > deadline) throw new Error('timed out waiting for SSE events');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** The `data` of each message event but PROGRESS, parsed. */
  messages(): any[] {
    return this.events
      .filter((e) => e.event === 'message')
      .map((e) => JSON.parse(e.data))
      .filter((m) => m.type !== 'WATCH_EVENT_TYPE_PROGRESS');
  }

  /** How many PROGRESS messages arrived. */
  progress(): number {
    return this.events.filter((e) => e.event === 'message' && JSON.parse(e.data).type === 'WATCH_EVENT_TYPE_PROGRESS')
      .length;
  }

  close(): void {
    this.req?.destroy();
  }
}
