import {
  credentials as grpcCredentials,
  Metadata,
  type CallOptions,
  type ClientReadableStream,
  status as GrpcStatus,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  AuthServiceClient,
  type CreateTokenRequest,
  type CreateTokenResponse,
  type Grant,
} from '../../generated/cfgd/v1/auth_service.js';
import { ConfigServiceClient, type WatchResponse } from '../../generated/cfgd/v1/config_service.js';
import { statusDetails } from './client.js';

/** An admin token long enough for `--admin-token`; tests use it to set things up. */
export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdefghijkl';

/** gRPC metadata carrying `authorization` (nothing when it is undefined). */
export function authMetadata(authorization: string | undefined): Metadata {
  const metadata = new Metadata();
  if (authorization !== undefined) metadata.set('authorization', authorization);
  return metadata;
}

export function bearer(secret: string): string {
  return `Bearer ${secret}`;
}

/** Grants of `verbs` on every config of `userId`. */
export function grantsOn(userId: string, ...verbs: string[]): Grant[] {
  return verbs.map((verb) => ({ verb, resource: `users/${userId}/configs/*` }));
}

/** How a call ended, the same shape for gRPC and REST: `OK` or the gRPC status name, and the ErrorInfo reason. */
export interface CallOutcome {
  readonly code: string;
  readonly reason?: string | undefined;
  readonly message?: string | undefined;
  /** Everything the caller got back, to search for what it must not see. */
  readonly text: string;
}

export function grpcOutcome(error: ServiceError): CallOutcome {
  let reason: string | undefined;
  try {
    reason = statusDetails(error).errorInfo?.reason;
  } catch {
    reason = undefined;
  }
  return {
    code: GrpcStatus[error.code] ?? String(error.code),
    reason,
    message: error.details,
    text: `${error.details} ${JSON.stringify(error.metadata?.getMap() ?? {})}`,
  };
}

/** Promise wrapper of a unary grpc-js client method with metadata. */
export function unary<Req, Res>(
  call: (request: Req, metadata: Metadata, callback: (error: ServiceError | null, response: Res) => void) => unknown,
  request: Req,
  authorization: string | undefined,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    call(request, authMetadata(authorization), (error, response) => (error ? reject(error) : resolve(response)));
  });
}

/**
 * A unary call of a generated client method (bound to its client) as a promise, as `authorization`
 * (none: no header), with a deadline, so that a server that never answers fails the test instead of
 * hanging it.
 */
export function unaryWithin<Req, Res>(
  method: (
    request: Req,
    metadata: Metadata,
    options: Partial<CallOptions>,
    callback: (error: ServiceError | null, response: Res) => void,
  ) => unknown,
  request: Req,
  authorization: string | undefined,
  deadlineMs: number,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(request, authMetadata(authorization), { deadline: Date.now() + deadlineMs }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

/** The AuthService as an admin (or any caller) sees it, with promises. */
export class AuthClient {
  readonly raw: AuthServiceClient;

  constructor(
    port: number,
    private readonly authorization: string | undefined,
  ) {
    this.raw = new AuthServiceClient(`127.0.0.1:${port}`, grpcCredentials.createInsecure());
  }

  /** Creates a token and returns its id and secret. */
  async createToken(request: Partial<CreateTokenRequest> & { name: string }): Promise<{ id: string; secret: string }> {
    const response = await unary<CreateTokenRequest, CreateTokenResponse>(
      this.raw.createToken.bind(this.raw),
      { grants: [], expireTime: undefined, ttl: undefined, ...request },
      this.authorization,
    );
    return { id: response.token?.id ?? '', secret: response.secret };
  }

  async revokeToken(id: string): Promise<void> {
    await unary(this.raw.revokeToken.bind(this.raw), { id }, this.authorization);
  }

  async setBinding(principal: string, grants: Grant[]): Promise<void> {
    await unary(this.raw.setBinding.bind(this.raw), { principal, grants }, this.authorization);
  }

  async removeBinding(principal: string): Promise<void> {
    await unary(this.raw.removeBinding.bind(this.raw), { principal }, this.authorization);
  }

  close(): void {
    this.raw.close();
  }
}

/** How a watch stream ended, and when (ms after `since`). */
export interface StreamEnd {
  readonly code: string;
  readonly reason: string | undefined;
  readonly message: string;
  readonly afterMs: number;
}

/**
 * A gRPC watch opened with `authorization`: `first` resolves on its first
 * message; `ended(since)` resolves with its status once it ends.
 */
export function grpcWatchWith(
  port: number,
  authorization: string | undefined,
  userId: string,
  configName: string,
): {
  stream: ClientReadableStream<WatchResponse>;
  first: Promise<void>;
  ended: (since: number) => Promise<StreamEnd>;
  cancel: () => void;
} {
  const client = new ConfigServiceClient(`127.0.0.1:${port}`, grpcCredentials.createInsecure());
  const stream = client.watch({ userId, configName, knownVersions: {} }, authMetadata(authorization));
  const first = new Promise<void>((resolve, reject) => {
    stream.once('data', () => resolve());
    stream.once('error', reject);
  });
  const end = new Promise<{ error: ServiceError; at: number }>((resolve) => {
    stream.on('data', () => {});
    stream.once('error', (error: ServiceError) => resolve({ error, at: Date.now() }));
  });
  return {
    stream,
    first,
    ended: async (since) => {
      const { error, at } = await end;
      const outcome = grpcOutcome(error);
      client.close();
      return { code: outcome.code, reason: outcome.reason, message: error.details, afterMs: at - since };
    },
    cancel: () => {
      stream.cancel();
      client.close();
    },
  };
}
