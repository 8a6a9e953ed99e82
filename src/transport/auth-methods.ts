import type { AuthApp } from '../app/auth/auth-app.js';
import type { BindingRecord, Grant, TokenRecord } from '../domain/index.js';
import type {
  Binding,
  CreateTokenRequest,
  CreateTokenResponse,
  Grant as GrantMessage,
  ListBindingsRequest,
  ListBindingsResponse,
  ListTokensRequest,
  ListTokensResponse,
  RemoveBindingRequest,
  RemoveBindingResponse,
  RevokeTokenRequest,
  RevokeTokenResponse,
  SetBindingRequest,
  SetBindingResponse,
  Token,
  WhoAmIRequest,
  WhoAmIResponse,
} from '../../generated/cfgd/v1/auth_service.js';
import type { UnaryMethod } from './methods.js';

/** The RPCs of `cfgd.v1.AuthService`, keyed by their proto names. */
export interface AuthServiceMethods {
  readonly CreateToken: UnaryMethod<CreateTokenRequest, CreateTokenResponse>;
  readonly ListTokens: UnaryMethod<ListTokensRequest, ListTokensResponse>;
  readonly RevokeToken: UnaryMethod<RevokeTokenRequest, RevokeTokenResponse>;
  readonly SetBinding: UnaryMethod<SetBindingRequest, SetBindingResponse>;
  readonly ListBindings: UnaryMethod<ListBindingsRequest, ListBindingsResponse>;
  readonly RemoveBinding: UnaryMethod<RemoveBindingRequest, RemoveBindingResponse>;
  readonly WhoAmI: UnaryMethod<WhoAmIRequest, WhoAmIResponse>;
}

/** AuthService once, for both transports: messages in, app calls, messages out. */
export function authServiceMethods(app: AuthApp): AuthServiceMethods {
  return {
    CreateToken: {
      kind: 'unary',
      async call(req, ctx) {
        const ttl = req.ttl;
        const { token, secret } = await app.createToken(ctx, {
          name: req.name,
          grants: req.grants,
          expireTime: req.expireTime,
          ttlMs: ttl === undefined ? undefined : ttl.seconds * 1000 + ttl.nanos / 1e6,
        });
        return { token: toTokenMessage(token), secret };
      },
    },
    ListTokens: {
      kind: 'unary',
      async call(_req, ctx) {
        return { tokens: (await app.listTokens(ctx)).map(toTokenMessage) };
      },
    },
    RevokeToken: {
      kind: 'unary',
      async call(req, ctx) {
        return { token: toTokenMessage(await app.revokeToken(ctx, req.id)) };
      },
    },
    SetBinding: {
      kind: 'unary',
      async call(req, ctx) {
        return { binding: toBindingMessage(await app.setBinding(ctx, req.principal, req.grants)) };
      },
    },
    ListBindings: {
      kind: 'unary',
      async call(_req, ctx) {
        return { bindings: (await app.listBindings(ctx)).map(toBindingMessage) };
      },
    },
    RemoveBinding: {
      kind: 'unary',
      async call(req, ctx) {
        await app.removeBinding(ctx, req.principal);
        return {};
      },
    },
    WhoAmI: {
      kind: 'unary',
      async call(_req, ctx) {
        const { principal, tokenId } = app.whoAmI(ctx);
        return {
          principal: principal.id,
          kind: principal.kind,
          grants: principal.grants.map(toGrantMessage),
          expireTime: principal.expiresAt === undefined ? undefined : new Date(principal.expiresAt),
          tokenId: tokenId ?? '',
        };
      },
    },
  };
}

function toGrantMessage(grant: Grant): GrantMessage {
  return { verb: grant.verb, resource: grant.resource };
}

function toTokenMessage(token: TokenRecord): Token {
  return {
    id: token.id,
    name: token.name,
    grants: token.grants.map(toGrantMessage),
    createTime: token.createdAt,
    creator: token.createdBy,
    expireTime: token.expiresAt,
    revokeTime: token.revokedAt,
    revoker: token.revokedBy ?? '',
  };
}

function toBindingMessage(binding: BindingRecord): Binding {
  return {
    principal: binding.principal,
    grants: binding.grants.map(toGrantMessage),
    updateTime: binding.updatedAt,
    updater: binding.updatedBy,
  };
}
