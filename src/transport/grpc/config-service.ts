import { Metadata, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ANONYMOUS, type RequestContext } from '../../app/context.js';
import { CfgdError } from '../../domain/index.js';
import type { ConfigServiceServer } from '../../../generated/cfgd/v1/config_service.js';
import type { ConfigServiceMethods, ServerStreamMethod, UnaryMethod } from '../methods.js';
import { toServiceError } from './errors.js';
import { throwIfUndecodable } from './undecodable.js';
import { drained } from '../drained.js';

export interface GrpcHandlerDeps {
  readonly methods: ConfigServiceMethods;
  readonly log: Logger;
  /** Aborted when the server shuts down; its reason ends open streams. */
  readonly shutdown: AbortSignal;
}

/** grpc-js handlers for ConfigService: contexts, cancellation, backpressure and error mapping. */
export function configServiceHandlers({ methods, log, shutdown }: GrpcHandlerDeps): ConfigServiceServer {
  const onUnexpected = (error: unknown): void => log.error({ err: error }, 'unexpected error in a request');

  /**
   * A context whose signal aborts when the client cancels (or the deadline passes) and, for
   * streams, when the server stops. Unary calls do not follow shutdown: it waits for them.
   */
  function contextFor(call: CancellableCall, stream: boolean): { ctx: RequestContext; done: () => void } {
    const controller = new AbortController();
    const onCancelled = (): void => controller.abort(cancelled());
    call.once('cancelled', onCancelled);
    const signal = stream ? AbortSignal.any([controller.signal, shutdown]) : controller.signal;
    // Once the call is answered, a late 'cancelled' (a client's stream reset) has nothing to stop.
    return { ctx: { principal: ANONYMOUS, signal }, done: () => call.off('cancelled', onCancelled) };
  }

  function unary<Req, Res>(method: UnaryMethod<Req, Res>) {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      const { ctx, done } = contextFor(call, false);
      Promise.resolve()
        .then(() => {
          throwIfUndecodable(call.request);
          return method.call(call.request, ctx);
        })
        .then(
          (response) => {
            done();
            callback(null, response);
          },
          (error: unknown) => {
            done();
            callback(toServiceError(error, onUnexpected));
          },
        );
    };
  }

  function serverStream<Req, Res>(method: ServerStreamMethod<Req, Res>) {
    return (call: ServerWritableStream<Req, Res>): void => {
      const { ctx, done } = contextFor(call, true);
      void (async () => {
        let stream;
        try {
          throwIfUndecodable(call.request);
          stream = await method.open(call.request, ctx);
          // Send headers at once, so the client sees the stream open before any event.
          call.sendMetadata(new Metadata());
          for await (const message of stream) {
            if (!call.write(message)) await drained(call, ctx.signal);
          }
        } catch (error: unknown) {
          if (call.cancelled) return; // The client is gone; there is nobody to tell.
          call.emit('error', toServiceError(error, onUnexpected));
        } finally {
          done();
          stream?.close();
        }
      })();
    };
  }

  return {
    put: unary(methods.Put),
    get: unary(methods.Get),
    history: unary(methods.History),
    watch: serverStream(methods.Watch),
  };
}

interface CancellableCall {
  once(event: 'cancelled', listener: () => void): unknown;
  off(event: 'cancelled', listener: () => void): unknown;
}

function cancelled(): CfgdError {
  return new CfgdError('cancelled', 'CANCELLED', 'the client cancelled the call');
}
