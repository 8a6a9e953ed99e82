import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { ServingSource } from '../app/health.js';
import type { NodeStatus } from '../app/node-status.js';
import type { ConfigStore, StoreEvents } from '../store/store.js';
import type { CallObserver } from '../transport/observer.js';
import type { MetricsScrape } from '../transport/rest/operational-routes.js';
import { callMetrics } from './call-metrics.js';
import { InstrumentedStore, storeEvents } from './store-metrics.js';

/** One process's metrics as `Registry.getMetricsAsJSON` gives them: what workers send for aggregation. */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/**
 * The Prometheus metrics of one process (prom-client): the process itself
 * (CPU, memory, event loop, GC), every call of both transports, the store's
 * operations and commits, the watch streams and whether the node serves.
 * With `--workers N` each process has its own, and a scrape sums them (see
 * `aggregateScrape`).
 */
export class CfgdMetrics {
  readonly registry = new Registry();
  private calls: CallObserver | undefined;
  private events: StoreEvents | undefined;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** The observer of every call (made once: its series belong to this registry). */
  callObserver(): CallObserver {
    return (this.calls ??= callMetrics(this.registry));
  }

  /** What the store backend tells of its commits, connection and changefeeds. */
  storeEvents(): StoreEvents {
    return (this.events ??= storeEvents(this.registry));
  }

  /** `store`, with each operation timed. */
  instrument(store: ConfigStore): ConfigStore {
    return new InstrumentedStore(store, this.registry);
  }

  /** Gauges read at each scrape: the node's watch streams and store subscriptions, and whether it serves. */
  follow(node: { nodeStatus(): NodeStatus }, serving: ServingSource): void {
    const registers = [this.registry];
    const gauge = (name: string, help: string, read: (status: NodeStatus) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read(node.nodeStatus()));
        },
      });
    };
    gauge('cfgd_watch_streams', 'Open watch streams (gRPC and SSE).', (s) => s.watches);
    gauge('cfgd_watch_channels', 'Shared watch channels, each holding one store subscription.', (s) => s.channels);
    gauge(
      'cfgd_watch_queued_events',
      'Events waiting for their readers, over all watch streams.',
      (s) => s.queuedEvents,
    );
    gauge('cfgd_store_subscriptions', 'Live store subscriptions.', (s) => s.store.subscriptions);
    gauge(
      'cfgd_store_changefeeds',
      'Changefeeds (or similar database subscriptions) open.',
      (s) => s.store.changefeeds,
    );
    new Counter({
      name: 'cfgd_watch_overflows_total',
      help: 'Watch streams ended with RESOURCE_EXHAUSTED because their reader did not keep up.',
      registers,
      collect() {
        this.reset();
        this.inc(node.nodeStatus().overflowed);
      },
    });
    new Gauge({
      name: 'cfgd_serving',
      help: '1 while the node serves (its store answers and it is not shutting down), else 0; over workers, the least.',
      registers,
      aggregator: 'min',
      collect() {
        this.set(serving.status === 'SERVING' ? 1 : 0);
      },
    });
  }

  /** This process's metrics as JSON, for a scrape that sums the workers. */
  json(): Promise<MetricsJson> {
    return this.registry.getMetricsAsJSON();
  }

  /** A scrape of this process alone. */
  async scrape(): Promise<MetricsScrape> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}

/** A scrape of several processes' metrics, summed (or as each metric's aggregator says) by prom-client. */
export async function aggregateScrape(parts: readonly MetricsJson[]): Promise<MetricsScrape> {
  const registry = AggregatorRegistry.aggregate([...parts]);
  return { contentType: registry.contentType, text: await registry.metrics() };
}
