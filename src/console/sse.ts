// Server-Sent Events read with fetch: EventSource cannot send the Authorization header.
import { type Api, type ApiError, apiUrl, errorFromBody, type Query } from './api.js';

/** One event of a stream. */
export interface SseEvent {
  /** `event:`; `message` when the event names none. */
  readonly event: string;
  readonly data: string;
  /** `id:` of this event, if it has one. */
  readonly id: string | undefined;
}

/**
 * Parses an event stream as the HTML standard does: lines end with CRLF, LF or CR; `data:`
 * lines join with LF; a blank line dispatches; lines starting with `:` are comments. Feed it
 * decoded text in any chunks.
 */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private id: string | undefined;
  private sawCr = false;

  /** The events completed by this chunk. */
  push(chunk: string): SseEvent[] {
    const events: SseEvent[] = [];
    let text = chunk;
    // A CR at the end of the last chunk already ended its line: an LF right after it is its pair.
    if (this.sawCr && text.startsWith('\n')) text = text.slice(1);
    this.sawCr = text.endsWith('\r');
    this.buffer += text;
    const lines = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = lines.pop() ?? '';
    for (const line of lines) {
      const event = this.line(line);
      if (event !== undefined) events.push(event);
    }
    return events;
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') {
      if (this.data.length === 0) {
        this.event = '';
        return undefined;
      }
      const event = { event: this.event || 'message', data: this.data.join('\n'), id: this.id };
      this.data = [];
      this.event = '';
      this.id = undefined;
      return event;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    return undefined;
  }
}

/** What a followed stream reports. */
export interface StreamHandlers {
  /** The stream is open (`true`) or down and being reconnected (`false`). */
  onLive(live: boolean): void;
  /** A data event (not `event: error`), with the JSON of its data. */
  onMessage(data: unknown, id: string | undefined): void;
  /** The stream was refused for good (PERMISSION_DENIED, a bad request): it is not retried. */
  onFailure(error: ApiError): void;
}

/** Options of `followStream`. */
export interface FollowOptions {
  readonly path: string;
  readonly query?: Query;
  /** Resume after this event id (`Last-Event-ID`) from the first connection on. */
  readonly lastEventId?: string;
  /** The first wait before reconnecting; it doubles up to `maxDelayMs`. */
  readonly minDelayMs?: number;
  readonly maxDelayMs?: number;
  /**
   * A stream that brings nothing for this long, not even the server's heartbeat (a PROGRESS
   * event every `--heartbeat-ms`, 5 s by default), is taken for dead (a peer gone without
   * closing the connection) and replaced.
   */
  readonly idleMs?: number;
}

/** Refusals that another attempt would only repeat. */
const FINAL_STATUSES = new Set([400, 403, 404, 405, 415]);

/**
 * Follows an event stream until `close` is called: reconnects with backoff when the stream ends
 * or fails, sending `Last-Event-ID` (the id of the last event received) so that the server
 * resumes after it. A 401 signs the user out through `api`; other refusals go to `onFailure`.
 * Answers `close`, which ends the stream.
 */
export function followStream(api: Api, options: FollowOptions, handlers: StreamHandlers): () => void {
  const controller = new AbortController();
  const minDelay = options.minDelayMs ?? 500;
  const maxDelay = options.maxDelayMs ?? 15_000;
  const idleMs = options.idleMs ?? 45_000;
  let lastEventId = options.lastEventId;
  let delay = minDelay;

  const once = async (): Promise<'retry' | 'stop'> => {
    // This attempt ends with the stream (close), or alone when it goes quiet for too long.
    const attempt = new AbortController();
    const abort = (): void => attempt.abort();
    controller.signal.addEventListener('abort', abort);
    let idle = setTimeout(abort, idleMs);
    const headers = api.headers({ accept: 'text/event-stream' });
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
    try {
      const response = await fetch(apiUrl(options.path, options.query), {
        headers,
        cache: 'no-store',
        credentials: 'omit',
        signal: attempt.signal,
      });
      if (!response.ok || response.body === null) {
        const error = errorFromBody(response.status, await response.text());
        return refused(error);
      }
      handlers.onLive(true);
      return await read(response.body, () => {
        clearTimeout(idle);
        idle = setTimeout(abort, idleMs);
      });
    } finally {
      clearTimeout(idle);
      controller.signal.removeEventListener('abort', abort);
    }
  };

  const read = async (body: NonNullable<Response['body']>, alive: () => void): Promise<'retry' | 'stop'> => {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new SseParser();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return 'retry';
        alive();
        for (const event of parser.push(value)) {
          if (event.id !== undefined && event.id !== '') lastEventId = event.id;
          if (event.event === 'error') return refused(errorFromBody(0, event.data));
          delay = minDelay;
          handlers.onMessage(JSON.parse(event.data), event.id);
        }
      }
    } finally {
      reader.cancel().catch(() => undefined);
    }
  };

  const refused = (error: ApiError): 'retry' | 'stop' => {
    if (error.status === 401 || error.reason.startsWith('TOKEN_') || error.reason === 'UNAUTHENTICATED') {
      api.unauthenticated(error);
      return 'stop';
    }
    if (FINAL_STATUSES.has(error.status) || error.reason === 'PERMISSION_DENIED') {
      handlers.onFailure(error);
      return 'stop';
    }
    return 'retry';
  };

  const run = async (): Promise<void> => {
    while (!controller.signal.aborted) {
      let outcome: 'retry' | 'stop';
      try {
        outcome = await once();
      } catch {
        // Closed (then stop); or else the attempt failed, or was dropped for going quiet: again.
        if (controller.signal.aborted) return;
        outcome = 'retry';
      }
      if (controller.signal.aborted || outcome === 'stop') return;
      handlers.onLive(false);
      await sleep(delay, controller.signal);
      delay = Math.min(delay * 2, maxDelay);
    }
  };

  void run();
  return () => controller.abort();
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}
