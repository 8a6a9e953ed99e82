import type { Server, ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { ServingSource, ServingStatus } from '../../app/health.js';

/**
 * The standard `grpc.health.v1.Health` service (grpc-health-check's), for the
 * whole server (`""`) and each of `services`, all following `source`. It
 * adds what the library leaves out: at shutdown its Watch streams hear
 * NOT_SERVING and then end, so that they do not hold the server's drain for
 * its whole grace period.
 */
export class GrpcHealth {
  private readonly health: HealthImplementation;
  private readonly watches = new Set<ServerWritableStream<unknown, unknown>>();
  private readonly unfollow: () => void;
  private current: ServingStatus;

  constructor(
    private readonly source: ServingSource,
    private readonly services: readonly string[],
  ) {
    this.health = new HealthImplementation(Object.fromEntries(['', ...services].map((name) => [name, source.status])));
    this.current = source.status;
    this.unfollow = source.onChange((status) => this.set(status));
  }

  /** Every RPC of the service, by full name. */
  static readonly rpcs = ['grpc.health.v1.Health/Check', 'grpc.health.v1.Health/Watch', 'grpc.health.v1.Health/List'];

  addToServer(server: Pick<Server, 'addService'>): void {
    this.health.addToServer({
      addService: (definition, implementation: UntypedServiceImplementation) => {
        const watch = implementation.watch as (call: ServerWritableStream<unknown, unknown>) => void;
        server.addService(definition, {
          ...implementation,
          watch: (call: ServerWritableStream<unknown, unknown>) => {
            this.watches.add(call);
            call.once('cancelled', () => this.watches.delete(call));
            watch(call);
          },
        });
      },
    });
  }

  /** NOT_SERVING for every service, said to every Watch stream, which then ends. */
  shutdown(): void {
    this.unfollow();
    this.set('NOT_SERVING');
    for (const call of this.watches) call.end();
    this.watches.clear();
  }

  private set(status: ServingStatus): void {
    // The library tells its watchers of every call; the protocol speaks of changes only.
    if (status === this.current) return;
    this.current = status;
    for (const name of ['', ...this.services]) this.health.setStatus(name, status);
  }
}
