// The console's only way to cfgd: the public REST API, with the signed-in user's token.

/** One bad field of a request, as the server's `google.rpc.BadRequest` lists it. */
export interface FieldViolation {
  field: string;
  description: string;
}

/**
 * A failed call: the HTTP status, the `ErrorInfo` reason (`VERSION_MISMATCH` …), the server's
 * message and its field violations. A call that got no answer has status 0, reason `NETWORK`.
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';

  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly fieldViolations: readonly FieldViolation[] = [],
    readonly metadata: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** True when `error` is an ApiError with this reason. */
export function isReason(error: unknown, reason: string): error is ApiError {
  return error instanceof ApiError && error.reason === reason;
}

/** The message of anything thrown, for people. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** True for the AbortError of a cancelled fetch. */
export function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'AbortError';
}

interface ErrorBody {
  error?: {
    code?: number;
    status?: string;
    message?: string;
    details?: { '@type'?: string; reason?: string; metadata?: Record<string, string>; field_violations?: unknown }[];
  };
}

/**
 * The ApiError of an HTTP status and a cfgd JSON error body
 * (`{"error": {"code", "status", "message", "details": [ErrorInfo, BadRequest]}}`); a body that
 * is not one (a proxy's page) gives the status text.
 */
export function errorFromBody(status: number, text: string): ApiError {
  let body: ErrorBody | undefined;
  try {
    body = JSON.parse(text) as ErrorBody;
  } catch {
    body = undefined;
  }
  const error = body?.error;
  if (error === undefined || typeof error !== 'object') {
    return new ApiError(status, `HTTP_${status}`, text.trim() === '' ? `HTTP ${status}` : text.trim().slice(0, 200));
  }
  let reason = error.status ?? `HTTP_${status}`;
  let metadata: Record<string, string> = {};
  const violations: FieldViolation[] = [];
  for (const detail of error.details ?? []) {
    if (typeof detail.reason === 'string') {
      reason = detail.reason;
      metadata = detail.metadata ?? {};
    }
    if (Array.isArray(detail.field_violations)) {
      for (const each of detail.field_violations as FieldViolation[]) {
        violations.push({ field: String(each.field), description: String(each.description) });
      }
    }
  }
  return new ApiError(status || (error.code ?? 0), reason, error.message ?? `HTTP ${status}`, violations, metadata);
}

/** A query string's parameters; undefined ones are left out. */
export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

/** Options of one call. */
export interface CallOptions {
  readonly method?: 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  readonly query?: Query;
  /** Sent as JSON. */
  readonly body?: unknown;
  readonly signal?: AbortSignal;
}

/**
 * The URL of an API path (`/v1/…`), beside the console: the console is served at `/ui/`, so
 * `../v1/…` reaches the API also behind a proxy that mounts cfgd under a prefix.
 */
export function apiUrl(path: string, query: Query = {}): string {
  const url = new URL(`..${path}`, document.baseURI);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) url.searchParams.set(name, String(value));
  }
  return url.toString();
}

/** The path of a config's resource, its names escaped. */
export function configPath(user: string, config: string): string {
  return `/v1/users/${encodeURIComponent(user)}/configs/${encodeURIComponent(config)}`;
}

/**
 * A client of the REST API for one token. Every answer is JSON; every failure is an ApiError.
 * A 401 (the token expired or was revoked) is also reported to `onUnauthenticated`, which signs
 * the user out.
 */
export class Api {
  constructor(
    readonly token: string,
    private readonly onUnauthenticated: (error: ApiError) => void = () => undefined,
  ) {}

  /** The headers every call carries. */
  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { authorization: `Bearer ${this.token}`, ...extra };
  }

  /** Reports a 401 (from a call or a watch stream) so that the user is signed out. */
  unauthenticated(error: ApiError): void {
    this.onUnauthenticated(error);
  }

  /** Calls `path` and answers its JSON body. */
  async call<T>(path: string, options: CallOptions = {}): Promise<T> {
    const init: RequestInit = {
      method: options.method ?? 'GET',
      headers: this.headers(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      cache: 'no-store',
      credentials: 'omit',
    };
    if (options.body !== undefined) init.body = JSON.stringify(options.body);
    if (options.signal !== undefined) init.signal = options.signal;
    let response: Response;
    try {
      response = await fetch(apiUrl(path, options.query), init);
    } catch (error: unknown) {
      if (isAbort(error)) throw error;
      throw new ApiError(0, 'NETWORK', `cfgd did not answer: ${messageOf(error)}`);
    }
    const text = await response.text();
    if (!response.ok) {
      const error = errorFromBody(response.status, text);
      if (response.status === 401) this.onUnauthenticated(error);
      throw error;
    }
    return (text === '' ? {} : JSON.parse(text)) as T;
  }
}
