import type { LifecycleApp } from '../app/lifecycle-app.js';
import {
  ChainProblem,
  type BlameRequest,
  type BlameResponse,
  type SetRetentionRequest,
  type SetRetentionResponse,
  ConfigView,
  type DeleteRequest,
  type DeleteResponse,
  type ListConfigsRequest,
  type ListConfigsResponse,
  type PatchRequest,
  type PatchResponse,
  type RollbackRequest,
  type RollbackResponse,
  type UndeleteRequest,
  type UndeleteResponse,
  type VerifyHistoryRequest,
  type VerifyHistoryResponse,
} from '../../generated/cfgd/v1/config_service.js';
import type { ConfigVersion } from '../domain/index.js';
import { toAuditEntryMessage, toConfigMessage } from './convert.js';
import { withRequestId, type UnaryMethod } from './methods.js';

/** The lifecycle RPCs of `cfgd.v1.ConfigService`. */
export interface LifecycleMethods {
  readonly ListConfigs: UnaryMethod<ListConfigsRequest, ListConfigsResponse>;
  readonly Patch: UnaryMethod<PatchRequest, PatchResponse>;
  readonly Rollback: UnaryMethod<RollbackRequest, RollbackResponse>;
  readonly Delete: UnaryMethod<DeleteRequest, DeleteResponse>;
  readonly Undelete: UnaryMethod<UndeleteRequest, UndeleteResponse>;
  readonly VerifyHistory: UnaryMethod<VerifyHistoryRequest, VerifyHistoryResponse>;
  readonly Blame: UnaryMethod<BlameRequest, BlameResponse>;
  readonly SetRetention: UnaryMethod<SetRetentionRequest, SetRetentionResponse>;
}

const PROBLEMS = {
  content: ChainProblem.CHAIN_PROBLEM_CONTENT,
  link: ChainProblem.CHAIN_PROBLEM_LINK,
  unsealed: ChainProblem.CHAIN_PROBLEM_UNSEALED,
} as const;

/** A write's answer: the config at the version it left, that version's audit entry, and whether it wrote one. */
function written({ config, changed }: { config: ConfigVersion; changed: boolean }) {
  return { config: toConfigMessage(config), auditEntry: toAuditEntryMessage(config.audit), changed };
}

/** The lifecycle RPCs once, for both transports: messages in, app calls, messages out. */
export function lifecycleMethods(app: LifecycleApp): LifecycleMethods {
  const ifMatch = <Req extends { expectedVersion?: number | undefined }>(req: Req, version: number): Req => ({
    ...req,
    expectedVersion: version,
  });
  return {
    ListConfigs: {
      kind: 'unary',
      async call(req, ctx) {
        const page = await app.list(ctx, req);
        const full = req.view === ConfigView.CONFIG_VIEW_FULL;
        return { configs: page.configs.map((c) => toConfigMessage(c, full)), nextPageToken: page.nextPageToken };
      },
    },
    Patch: {
      kind: 'unary',
      http: { ifMatch, etag: (res) => res.config?.version, idempotencyKey: withRequestId },
      async call(req, ctx) {
        return written(await app.patch(ctx, req));
      },
    },
    Rollback: {
      kind: 'unary',
      http: { ifMatch, etag: (res) => res.config?.version, idempotencyKey: withRequestId },
      async call(req, ctx) {
        return written(await app.rollback(ctx, req));
      },
    },
    Delete: {
      kind: 'unary',
      http: { ifMatch, etag: (res) => res.config?.version, idempotencyKey: withRequestId },
      async call(req, ctx) {
        return written(await app.delete(ctx, req));
      },
    },
    SetRetention: {
      kind: 'unary',
      async call(req, ctx) {
        const result = await app.setRetention(ctx, req);
        return {
          maxVersions: result.maxVersions,
          effectiveMaxVersions: result.effectiveMaxVersions,
          firstKeptVersion: result.firstKept,
          latestVersion: result.latest,
        };
      },
    },
    Blame: {
      kind: 'unary',
      async call(req, ctx) {
        const result = await app.blame(ctx, req);
        return {
          version: result.version,
          keys: result.keys.map((entry) => ({
            key: entry.key,
            version: entry.version,
            author: entry.author,
            updateTime: entry.at,
          })),
        };
      },
    },
    VerifyHistory: {
      kind: 'unary',
      async call(req, ctx) {
        const result = await app.verifyHistory(ctx, req);
        return {
          intact: result.intact,
          firstBadVersion: result.firstBad?.version ?? 0,
          problem:
            result.firstBad === undefined ? ChainProblem.CHAIN_PROBLEM_UNSPECIFIED : PROBLEMS[result.firstBad.problem],
          firstCheckedVersion: result.firstChecked,
          latestVersion: result.latest,
        };
      },
    },
    Undelete: {
      kind: 'unary',
      http: { ifMatch, etag: (res) => res.config?.version, idempotencyKey: withRequestId },
      async call(req, ctx) {
        return written(await app.undelete(ctx, req));
      },
    },
  };
}
