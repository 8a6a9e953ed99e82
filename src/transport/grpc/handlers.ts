import {
  Metadata,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ANONYMOUS, type RequestContext } from '../../app/context.js';
import { CfgdError } from '../../domain/index.js';
import type { AnyMethod, ServerStreamMethod, UnaryMethod } from '../methods.js';
import { toServiceError } from './errors.js';
import { throwIfUndecodable } from './undecodable.js';
import { CallSignals } from '../call-signals.js';
import { drained } from '../drained.js';

export interface GrpcHandlerDeps {
  /** A service's methods, keyed by their proto names. */
  readonly methods: Readonly<Record<string, AnyMethod>>;
  readonly log: Logger;
  /** Aborted when the server shuts down; its reason ends open streams. */
  readonly shutdown: AbortSignal;
}

/**
 * grpc-js handlers for a service's methods (keyed as grpc-js expects, lower
 * camel case): contexts, cancellation, backpressure and error mapping.
 */
export function grpcHandlers({ methods, log, shutdown }: GrpcHandlerDeps): UntypedServiceImplementation {
  const onUnexpected = (error: unknown): void => log.error({ err: error }, 'unexpected error in a request');

  const streams = new CallSignals(shutdown);

  /**
   * A context whose signal aborts when the client cancels (or the deadline passes) and, for
   * streams, when the server stops. Unary calls do not follow shutdown: it waits for them.
   */
  function contextFor(call: CancellableCall, stream: boolean): { ctx: RequestContext; done: () => void } {
    const opened = stream ? streams.open() : { controller: new AbortController(), release: NOTHING_TO_RELEASE };
    const { controller } = opened;
    const onCancelled = (): void => controller.abort(CANCELLED);
    call.once('cancelled', onCancelled);
    // Once the call is answered, a late 'cancelled' (a client's stream reset) has nothing to stop.
    const done = (): void => {
      call.off('cancelled', onCancelled);
      opened.release();
    };
    return { ctx: { principal: ANONYMOUS, signal: controller.signal }, done };
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
            // While the client does not read, the stream may end on the server's side (its queue overflowed).
            if (!call.write(message)) await drained(call, ctx.signal, stream.ended);
          }
          // A stream that finishes ends the call with OK (after what is buffered has been sent).
          call.end();
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

  const handlers: UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(methods)) {
    const handlerName = name.charAt(0).toLowerCase() + name.slice(1);
    handlers[handlerName] = method.kind === 'unary' ? unary(method) : serverStream(method);
  }
  return handlers;
}

interface CancellableCall {
  once(event: 'cancelled', listener: () => void): unknown;
  off(event: 'cancelled', listener: () => void): unknown;
}

/** One instance for every cancelled call: nobody is left to read it, and building an error is not free. */
const CANCELLED = new CfgdError('cancelled', 'CANCELLED', 'the client cancelled the call');

const NOTHING_TO_RELEASE = (): void => {};
