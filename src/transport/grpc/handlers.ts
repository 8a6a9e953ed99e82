import { randomUUID } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import {
  Metadata,
  status as GrpcStatus,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { CfgdError } from '../../domain/index.js';
import type { AnyMethod, MessageStream, ServerStreamMethod, UnaryMethod } from '../methods.js';
import type { CallInfo, RequestPipeline } from '../pipeline.js';
import { acceptedRequestId, type CallObserver } from '../observer.js';
import { describeClientCertificate, type ClientCertificate } from '../tls.js';
import { toServiceError } from './errors.js';
import { throwIfUndecodable } from './undecodable.js';
import { CallSignals } from '../call-signals.js';
import { drained } from '../drained.js';

export interface GrpcHandlerDeps {
  /** The service's full name, e.g. `cfgd.v1.ConfigService`. */
  readonly service: string;
  /** Its methods, keyed by their proto names. */
  readonly methods: Readonly<Record<string, AnyMethod>>;
  /** Every call goes through it. */
  readonly pipeline: RequestPipeline;
  /** Aborted when the server shuts down; its reason ends open streams. */
  readonly shutdown: AbortSignal;
  /** Sees every call (metrics, the access log); without it nothing is measured. */
  readonly observer?: CallObserver | undefined;
}

/** What the adapter needs of a grpc-js call of either kind. */
interface GrpcCall {
  readonly metadata: Metadata;
  readonly cancelled: boolean;
  getPeer(): string;
  getDeadline(): Date | number;
  /**
   * grpc-js (1.14) fills `sslPeerCertificate` only on a TLS connection whose client certificate
   * verified (`authorized`), and builds it anew on each call: `getPeerCertificate()` per ask.
   */
  getAuthContext(): { readonly sslPeerCertificate?: PeerCertificate | undefined };
  once(event: 'cancelled', listener: () => void): unknown;
  off(event: 'cancelled', listener: () => void): unknown;
}

/**
 * grpc-js handlers for a service's methods (keyed as grpc-js expects, lower
 * camel case): what each call carries, cancellation, backpressure and the
 * wire form of errors. The call itself runs through the request pipeline.
 */
export function grpcHandlers({
  service,
  methods,
  pipeline,
  shutdown,
  observer,
}: GrpcHandlerDeps): UntypedServiceImplementation {
  const streams = new CallSignals(shutdown);

  /**
   * The call's info, and a signal that aborts when the client cancels (or the deadline passes)
   * and, for streams, when the server stops. Unary calls do not follow shutdown: it waits for them.
   */
  function begin(
    call: GrpcCall,
    method: string,
    stream: boolean,
  ): { info: CallInfo; signal: AbortSignal; done: () => void } {
    const opened = stream ? streams.open() : { controller: new AbortController(), release: NOTHING_TO_RELEASE };
    const { controller } = opened;
    const onCancelled = (): void => controller.abort(CANCELLED);
    call.once('cancelled', onCancelled);
    // Once the call is answered, a late 'cancelled' (a client's stream reset) has nothing to stop.
    const done = (): void => {
      call.off('cancelled', onCancelled);
      opened.release();
    };
    return { info: new GrpcCallInfo(call, method, stream), signal: controller.signal, done };
  }

  function unary<Req, Res>(name: string, method: UnaryMethod<Req, Res>) {
    const observed = observer?.operation({ transport: 'grpc', method: name, route: name, streaming: false });
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      const began = observed === undefined ? 0 : performance.now();
      observed?.started();
      const { info, signal, done } = begin(call, name, false);
      const echo = echoedRequestId(call.metadata);
      pipeline
        .run(info, signal, (ctx) => {
          throwIfUndecodable(call.request);
          return method.call(call.request, ctx);
        })
        .then(
          (response) => {
            done();
            if (echo !== undefined) call.sendMetadata(echo);
            callback(null, response);
            observed?.finished(GrpcStatus.OK, (performance.now() - began) / 1000, info, undefined);
          },
          (error: unknown) => {
            done();
            if (echo !== undefined) call.sendMetadata(echo);
            const failure = toServiceError(error, NOT_REACHED);
            callback(failure);
            observed?.finished(
              failure.code ?? GrpcStatus.UNKNOWN,
              (performance.now() - began) / 1000,
              info,
              asCfgdError(error),
            );
          },
        );
    };
  }

  function serverStream<Req, Res>(name: string, method: ServerStreamMethod<Req, Res>) {
    const observed = observer?.operation({ transport: 'grpc', method: name, route: name, streaming: true });
    return (call: ServerWritableStream<Req, Res>): void => {
      const began = observed === undefined ? 0 : performance.now();
      observed?.started();
      const { info, signal, done } = begin(call, name, true);
      let stream: MessageStream<Res> | undefined;
      let headersSent = false;
      const finish = (): void => {
        done();
        stream?.close();
      };
      pipeline
        .run(info, signal, async (ctx) => {
          throwIfUndecodable(call.request);
          stream = await method.open(call.request, ctx);
          // Send headers at once, so the client sees the stream open before any event.
          call.sendMetadata(echoedRequestId(call.metadata) ?? new Metadata());
          headersSent = true;
          for await (const message of stream) {
            // While the client does not read, the stream may end on the server's side (its queue overflowed).
            if (!call.write(message)) await drained(call, signal, stream.ended);
          }
          // A stream that finishes ends the call with OK (after what is buffered has been sent).
          call.end();
        })
        .then(
          () => {
            finish();
            observed?.finished(GrpcStatus.OK, (performance.now() - began) / 1000, info, undefined);
          },
          (error: unknown) => {
            const failure = toServiceError(error, NOT_REACHED);
            // The client is gone: there is nobody to tell.
            if (!call.cancelled) {
              // A stream refused before it opened echoes the request id as a unary call does.
              const echo = headersSent ? undefined : echoedRequestId(call.metadata);
              if (echo !== undefined) call.sendMetadata(echo);
              call.emit('error', failure);
            }
            finish();
            observed?.finished(
              failure.code ?? GrpcStatus.UNKNOWN,
              (performance.now() - began) / 1000,
              info,
              asCfgdError(error),
            );
          },
        );
    };
  }

  const handlers: UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(methods)) {
    const handlerName = name.charAt(0).toLowerCase() + name.slice(1);
    const fullName = `${service}/${name}`;
    handlers[handlerName] = method.kind === 'unary' ? unary(fullName, method) : serverStream(fullName, method);
  }
  return handlers;
}

/**
 * What a gRPC call carries, read from the call when asked: a watch stream lives for hours, and
 * a copy of its metadata (and a request id nobody asks for) per stream costs memory at scale.
 */
class GrpcCallInfo implements CallInfo {
  readonly transport = 'grpc';
  principal: string | undefined = undefined;
  private id: string | undefined;
  private from: string | undefined;
  /** null: asked, and there is none. */
  private certificate: ClientCertificate | null | undefined;

  constructor(
    private readonly call: GrpcCall,
    readonly method: string,
    readonly streaming: boolean,
  ) {}

  get requestId(): string {
    return (this.id ??= acceptedRequestId(text(this.call.metadata, 'x-request-id')) ?? randomUUID());
  }

  get peer(): string {
    return (this.from ??= this.call.getPeer());
  }

  get deadline(): number | undefined {
    const deadline = this.call.getDeadline();
    return deadline instanceof Date ? deadline.getTime() : Number.isFinite(deadline) ? deadline : undefined;
  }

  get authorization(): string | undefined {
    return text(this.call.metadata, 'authorization');
  }

  get clientCertificate(): ClientCertificate | undefined {
    if (this.certificate === undefined) {
      // Only a verified certificate is reported (see GrpcCall.getAuthContext); `raw` is its DER form.
      const raw = this.call.getAuthContext().sslPeerCertificate?.raw;
      this.certificate = raw === undefined ? null : describeClientCertificate(raw);
    }
    return this.certificate ?? undefined;
  }
}

/** Response metadata echoing the client's `x-request-id`, when it sent one cfgd accepts. */
function echoedRequestId(metadata: Metadata): Metadata | undefined {
  const id = acceptedRequestId(text(metadata, 'x-request-id'));
  if (id === undefined) return undefined;
  const echo = new Metadata();
  echo.set('x-request-id', id);
  return echo;
}

function asCfgdError(error: unknown): CfgdError | undefined {
  return error instanceof CfgdError ? error : undefined;
}

/** A metadata value as text (the first one), if the client sent it. */
function text(metadata: Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === 'string' ? value : undefined;
}

/** One instance for every cancelled call: nobody is left to read it, and building an error is not free. */
const CANCELLED = new CfgdError('cancelled', 'CANCELLED', 'the client cancelled the call');

const NOTHING_TO_RELEASE = (): void => {};

/** The pipeline hands on only `CfgdError`s (it logs and replaces the rest), so nothing is unexpected here. */
const NOT_REACHED = (): void => {};
