import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { RequestContext } from '../../app/context.js';
import { CfgdError, findLoneSurrogate } from '../../domain/index.js';
import { ERROR_DOMAIN, HttpStatusError, toWireError } from '../status.js';
import type { PathTemplate } from './path-template.js';

/** One HTTP request on its way through a route. */
export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  /** Path variables by field path, decoded. */
  readonly params: Record<string, string>;
  readonly ctx: RequestContext;
  /** The request body parsed as JSON; undefined when it is empty. Enforces Content-Type and size. */
  readJsonBody(): Promise<unknown>;
}

export interface Route {
  readonly method: string;
  readonly template: PathTemplate;
  /**
   * The operation it serves, as the request pipeline names it: the RPC's full name
   * (`cfgd.v1.ConfigService/Put`) for routes derived from the protos, or the legacy route.
   */
  readonly name: string;
  /** True when it answers with a stream (SSE). */
  readonly streaming: boolean;
  /**
   * Answers without authentication (probes, the OpenAPI document): what it
   * serves says nothing about any config. Its calls run with no grant.
   */
  readonly open?: boolean;
  handle(exchange: Exchange): Promise<void>;
}

/** Reads the body as JSON: `application/json` (or `+json`) in UTF-8, at most `maxBytes`. */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (declared > maxBytes) throw bodyTooLarge(maxBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) throw bodyTooLarge(maxBytes);
      chunks.push(chunk as Buffer);
    }
  } catch (error: unknown) {
    if (error instanceof CfgdError) throw error;
    // The body stream fails only with its connection: the client hung up before the body was
    // complete, or sent bytes that are not HTTP (the server's clientError handler has answered
    // those on the socket). A client event, not a server fault, so it must not be logged as one.
    throw new CfgdError(
      'cancelled',
      'REQUEST_BODY_INCOMPLETE',
      'the connection ended before the request body was complete',
      { cause: error },
    );
  }
  const text = utf8Text(Buffer.concat(chunks));
  const type = req.headers['content-type'];
  const blank = text.trim() === '';
  if (blank && type === undefined) return undefined;
  checkContentType(type);
  if (blank) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text) as unknown;
  } catch (error: unknown) {
    const why = error instanceof Error ? error.message : String(error);
    throw new HttpStatusError(400, 'invalid-argument', 'MALFORMED_JSON', `the request body is not valid JSON: ${why}`);
  }
  // Checked here, before the body becomes protobuf (whose UTF-8 would turn it into U+FFFD unseen).
  if (findLoneSurrogate(parsed) !== undefined) {
    throw new HttpStatusError(
      400,
      'invalid-argument',
      'VALUES_NOT_UNICODE',
      'the request body holds a lone UTF-16 surrogate (an escape such as \\ud800 without its pair), which is not text',
    );
  }
  return parsed;
}

// Fatal: bytes that are not UTF-8 would otherwise become U+FFFD and be stored as if sent so.
const UTF8 = new TextDecoder('utf-8', { fatal: true });

function utf8Text(bytes: Buffer): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new HttpStatusError(400, 'invalid-argument', 'MALFORMED_JSON', 'the request body is not valid UTF-8');
  }
}

function checkContentType(header: string | undefined): void {
  if (header === undefined) {
    throw new HttpStatusError(
      415,
      'invalid-argument',
      'CONTENT_TYPE_MISSING',
      'a request body needs the header Content-Type: application/json',
    );
  }
  const [media = '', ...params] = header.split(';').map((part) => part.trim().toLowerCase());
  const isJson = media === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(media);
  const charset = params
    .find((p) => p.startsWith('charset='))
    ?.slice('charset='.length)
    .replace(/"/g, '');
  if (!isJson || (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8')) {
    throw new HttpStatusError(
      415,
      'invalid-argument',
      'CONTENT_TYPE_UNSUPPORTED',
      `the request body must be Content-Type: application/json (UTF-8), got "${header}"`,
    );
  }
}

function bodyTooLarge(maxBytes: number): HttpStatusError {
  return new HttpStatusError(
    413,
    'resource-exhausted',
    'BODY_TOO_LARGE',
    `the request body exceeds the limit of ${maxBytes} bytes`,
    { connection: 'close' },
  );
}

/** The JSON body of every REST error: `{"error": {code, status, message, details}}`. */
export function errorBody(
  error: unknown,
  onUnexpected: (error: unknown) => void,
): { status: number; body: unknown; headers: Record<string, string> } {
  const wire = toWireError(error, onUnexpected);
  const details: Record<string, unknown>[] = [
    {
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
      reason: wire.reason,
      domain: ERROR_DOMAIN,
      metadata: wire.metadata,
    },
  ];
  if (wire.fieldViolations.length > 0) {
    details.push({
      '@type': 'type.googleapis.com/google.rpc.BadRequest',
      field_violations: wire.fieldViolations.map((v) => ({ field: v.field, description: v.description })),
    });
  }
  const headers = error instanceof HttpStatusError ? error.headers : {};
  return {
    status: wire.httpStatus,
    body: { error: { code: wire.httpStatus, status: wire.grpcName, message: wire.message, details } },
    headers: wire.httpStatus === 401 ? { ...headers, 'www-authenticate': bearerChallenge(wire.reason) } : headers,
  };
}

/**
 * The challenge of a 401 (RFC 6750 §3): what scheme to send, and, when the
 * credentials sent were refused, that they were.
 */
function bearerChallenge(reason: string): string {
  if (reason === 'TOKEN_MISSING') return 'Bearer realm="cfgd"';
  const error = reason === 'AUTHORIZATION_MALFORMED' ? 'invalid_request' : 'invalid_token';
  return `Bearer realm="cfgd", error="${error}"`;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = jsonText(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/**
 * A complete HTTP/1.1 response carrying a JSON body, as bytes for a bare socket: for answers
 * given where Node offers no ServerResponse (a request its parser refused, a CONNECT). It
 * closes the connection, since the parser cannot go on after such a request.
 */
export function rawJsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): string {
  const text = jsonText(body);
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(text)}`,
    ...Object.entries(headers)
      .filter(([name]) => name.toLowerCase() !== 'connection')
      .map(([name, value]) => `${name}: ${value}`),
    'connection: close',
  ];
  return `${lines.join('\r\n')}\r\n\r\n${text}`;
}

function jsonText(body: unknown): string {
  return `${JSON.stringify(body, null, 2)}\n`;
}

/** The ETag of a config version. */
export function etagOf(version: number): string {
  return `"${version}"`;
}

/** The version named by an `If-Match` header, or undefined when there is none. */
export function ifMatchVersion(req: IncomingMessage): number | undefined {
  const header = req.headers['if-match'];
  if (header === undefined) return undefined;
  const match = /^\s*(?:W\/)?"(\d+)"\s*$/.exec(header);
  if (match === null) {
    throw new HttpStatusError(
      400,
      'invalid-argument',
      'IF_MATCH_INVALID',
      `If-Match must be one ETag returned by cfgd, such as "3", got ${header}`,
    );
  }
  return Number(match[1]);
}

/**
 * The request id named by an `Idempotency-Key` header (the IETF httpapi draft's header, as Stripe
 * and others use it), or undefined when there is none. Its form (a UUID) is checked with the
 * request's `request_id`.
 */
export function idempotencyKey(req: IncomingMessage): string | undefined {
  const header = req.headers['idempotency-key'];
  // Node joins repeated custom headers with ", ": such a value is no UUID, and request_id says so.
  const value = Array.isArray(header) ? header.join(', ') : header;
  if (value === undefined || value === '') return undefined;
  return value.trim();
}

/** True when `If-None-Match` names `etag` (or is `*`). */
export function noneMatch(req: IncomingMessage, etag: string): boolean {
  const header = req.headers['if-none-match'];
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}
