import { pino, type Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { ANONYMOUS, type Principal, type RequestContext } from '../../src/app/context.js';
import { CfgdError } from '../../src/domain/index.js';
import { RequestPipeline, type CallInfo, type Interceptor } from '../../src/transport/pipeline.js';

const info: CallInfo = {
  method: 'cfgd.v1.ConfigService/Get',
  transport: 'grpc',
  streaming: false,
  requestId: 'r1',
  peer: '127.0.0.1:1',
  deadline: undefined,
  authorization: 'Bearer t',
  clientCertificate: undefined,
  principal: undefined,
};
const signal = new AbortController().signal;

/** A logger that keeps its lines. */
function recordingLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log: Logger = pino(
    { level: 'debug' },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { log, lines };
}

describe('the request pipeline', () => {
  it('runs the interceptors in order around the call, and returns what the call returned', async () => {
    const trace: string[] = [];
    const named =
      (name: string): Interceptor =>
      async (_call, next) => {
        trace.push(`${name} in`);
        try {
          return await next();
        } finally {
          trace.push(`${name} out`);
        }
      };
    const pipeline = new RequestPipeline([named('a'), named('b')], pino({ level: 'silent' }));
    const result = await pipeline.run(info, signal, async () => {
      trace.push('call');
      return 42;
    });
    expect(result).toBe(42);
    expect(trace).toEqual(['a in', 'b in', 'call', 'b out', 'a out']);
  });

  it("hands the call the principal an interceptor set, with the call's signal", async () => {
    const alice: Principal = { id: 'token:alice', kind: 'token', grants: [], source: { kind: 'token', tokenId: 't1' } };
    const authenticate: Interceptor = async (call, next) => {
      expect(call.info.authorization).toBe('Bearer t');
      expect(call.principal).toBe(ANONYMOUS);
      call.principal = alice;
      return next();
    };
    let seen: RequestContext | undefined;
    await new RequestPipeline([authenticate], pino({ level: 'silent' })).run(info, signal, async (ctx) => {
      seen = ctx;
    });
    expect(seen).toEqual({ principal: alice, signal });
  });

  it('an interceptor that throws refuses the call: it never runs, and the error reaches the transport as it is', async () => {
    const refusal = new CfgdError('unavailable', 'SERVER_SHUTTING_DOWN', 'refused');
    let ran = false;
    const pipeline = new RequestPipeline([async () => Promise.reject(refusal)], pino({ level: 'silent' }));
    await expect(pipeline.run(info, signal, async () => void (ran = true))).rejects.toBe(refusal);
    expect(ran).toBe(false);
  });

  it('turns an unexpected error into a generic INTERNAL, logged once with the method and request id', async () => {
    const { log, lines } = recordingLog();
    const bug = new TypeError('x is not a function');
    const seenByInterceptor: unknown[] = [];
    const observe: Interceptor = async (_call, next) => {
      try {
        return await next();
      } catch (error: unknown) {
        seenByInterceptor.push(error);
        throw error;
      }
    };
    const error = await new RequestPipeline([observe], log)
      .run(info, signal, async () => Promise.reject(bug))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CfgdError);
    expect(error).toMatchObject({ kind: 'internal', reason: 'INTERNAL', message: 'internal error', cause: bug });
    expect(seenByInterceptor).toEqual([bug]);
    expect(lines.filter((line) => line.level === 50)).toEqual([
      expect.objectContaining({ msg: 'unexpected error in a request', method: info.method, requestId: 'r1' }),
    ]);
    // A CfgdError is the client's answer, not a fault: passed on, not logged.
    const notFound = new CfgdError('not-found', 'CONFIG_NOT_FOUND', 'gone');
    await expect(new RequestPipeline([], log).run(info, signal, async () => Promise.reject(notFound))).rejects.toBe(
      notFound,
    );
    expect(lines.filter((line) => line.level === 50)).toHaveLength(1);
  });
});
