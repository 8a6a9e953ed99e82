import { Metadata, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ConfigApp } from '../../app/config-app.js';
import { ANONYMOUS, type RequestContext } from '../../app/context.js';
import { CfgdError } from '../../domain/index.js';
import type {
  ConfigServiceServer,
  WatchRequest,
  WatchResponse,
} from '../../../generated/cfgd/v1/config_service.js';
import { toAuditEntryMessage, toConfigMessage } from './convert.js';
import { toServiceError } from './errors.js';
import { throwIfUndecodable } from './undecodable.js';

export interface GrpcHandlerDeps {
  readonly app: ConfigApp;
  readonly log: Logger;
  /** Aborted when the server shuts down; its reason ends open streams. */
  readonly shutdown: AbortSignal;
}

/** Thin handlers: map the request, call the app, map the result or the error. */
export function configServiceHandlers({ app, log, shutdown }: GrpcHandlerDeps): ConfigServiceServer {
  const onUnexpected = (error: unknown): void => log.error({ err: error }, 'unexpected error in a request');

  function unary<Req, Res>(
    method: string,
    handle: (request: Req, ctx: RequestContext) => Promise<Res>,
  ): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
    return (call, callback) => {
      const controller = new AbortController();
      call.once('cancelled', () => controller.abort(cancelled()));
      const ctx = { principal: ANONYMOUS, signal: controller.signal };
      Promise.resolve()
        .then(() => {
          throwIfUndecodable(call.request);
          return handle(call.request, ctx);
        })
        .then(
        (response) => callback(null, response),
        (error: unknown) => {
          log.debug({ method, err: error }, 'request failed');
          callback(toServiceError(error, onUnexpected));
        },
      );
    };
  }

  return {
    put: unary('Put', async (req, ctx) => {
      const { config, changed } = await app.put(ctx, {
        userId: req.userId,
        configName: req.configName,
        values: req.values,
        expectedVersion: req.expectedVersion,
      });
      return { config: toConfigMessage(config), auditEntry: toAuditEntryMessage(config.audit), changed };
    }),

    get: unary('Get', async (req, ctx) => {
      const { config, latestVersion } = await app.get(ctx, req);
      return { config: toConfigMessage(config), latestVersion };
    }),

    history: unary('History', async (req, ctx) => {
      const page = await app.history(ctx, req);
      return {
        entries: page.entries.map(toAuditEntryMessage),
        nextPageToken: page.nextPageToken,
        latestVersion: page.latestVersion,
      };
    }),

    watch: (call: ServerWritableStream<WatchRequest, WatchResponse>) => {
      const controller = new AbortController();
      const onCancelled = (): void => controller.abort(cancelled());
      call.once('cancelled', onCancelled);
      const signal = AbortSignal.any([controller.signal, shutdown]);
      // Send headers at once, so the client sees the stream open before any event.
      call.sendMetadata(new Metadata());
      void (async () => {
        try {
          throwIfUndecodable(call.request);
          const events = app.watch({ principal: ANONYMOUS, signal }, call.request);
          for await (const version of events) {
            const message = { config: toConfigMessage(version), auditEntry: toAuditEntryMessage(version.audit) };
            if (!call.write(message)) await drained(call, signal);
          }
        } catch (error: unknown) {
          if (call.cancelled) return; // The client is gone; there is nobody to tell.
          call.emit('error', toServiceError(error, onUnexpected));
        } finally {
          call.off('cancelled', onCancelled);
        }
      })();
    },
  };
}

function cancelled(): CfgdError {
  return new CfgdError('cancelled', 'CANCELLED', 'the client cancelled the call');
}

/** Resolves when the stream can take more messages; rejects when `signal` aborts. */
function drained(call: ServerWritableStream<unknown, unknown>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      call.off('drain', onDrain);
      signal.removeEventListener('abort', onAbort);
    };
    const onDrain = (): void => {
      done();
      resolve();
    };
    const onAbort = (): void => {
      done();
      reject(signal.reason);
    };
    if (signal.aborted) return onAbort();
    call.on('drain', onDrain);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
