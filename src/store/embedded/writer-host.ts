import type { Unsubscribe } from '../store.js';
import {
  batching,
  CREDENTIAL_WRITES,
  received,
  toLinkedError,
  type WriterCall,
  type WriterLink,
} from './writer-link.js';
import type { EmbeddedStore } from './sqlite-store.js';

/**
 * The writer's side of `--workers N` on the embedded store: serves the
 * `WorkerStore` of each worker process over its link (writes join the
 * store's group commit) and tells every worker, after each group commit,
 * which configs changed, and after each token or binding change that
 * credentials changed. Reports go out before the replies to the writes that
 * caused them, on the same ordered link, so a worker has woken its watches
 * by the time it acknowledges a write.
 */
export class WriterHost {
  private readonly links = new Set<WriterLink>();
  private readonly stops: Unsubscribe[] = [];

  private constructor(private readonly store: EmbeddedStore) {}

  static async start(store: EmbeddedStore): Promise<WriterHost> {
    const host = new WriterHost(store);
    host.stops.push(
      store.onCommit((keys) =>
        host.broadcast({ cfgd: 'writer', committed: keys.map((key) => [key.userId, key.configName] as const) }),
      ),
      await store.credentials.subscribeCredentials(() => host.broadcast({ cfgd: 'writer', credentialsChanged: true })),
    );
    return host;
  }

  /** Serves one worker until its link closes or `close`. */
  attach(channel: WriterLink): Unsubscribe {
    // A group commit's replies (and its report) to one worker travel together.
    const link = batching(channel, queueMicrotask);
    this.links.add(link);
    const stopMessages = link.onMessage((arrived) => {
      for (const message of received(arrived)) {
        if (!('call' in message)) continue;
        const { id, call } = message;
        this.run(call).then(
          (value) => this.reply(link, { cfgd: 'writer', id, ok: true, value }),
          (error: unknown) => this.reply(link, { cfgd: 'writer', id, ok: false, error: toLinkedError(error) }),
        );
      }
    });
    const detach = (): void => {
      this.links.delete(link);
      stopMessages();
      stopClose();
    };
    const stopClose = link.onClose(detach);
    return detach;
  }

  close(): void {
    for (const stop of this.stops) stop();
    this.links.clear();
  }

  private run(call: WriterCall): Promise<unknown> {
    switch (call.op) {
      case 'commit':
        return this.store.commitPrepared(call.prepared);
      case 'setMaxVersions':
        return this.store.setMaxVersions(call.key, call.maxVersions);
      case 'prune':
        return this.store.prune(call.key, call.floor);
      case 'putReport':
        return this.store.instances.putReport(call.key, call.report);
      case 'expireReports':
        return this.store.instances.expireReports(call.before);
      case 'credentials': {
        if (!CREDENTIAL_WRITES.includes(call.method)) return Promise.reject(new Error(`unknown call ${call.method}`));
        const credentials = this.store.credentials as unknown as Record<
          string,
          (...args: unknown[]) => Promise<unknown>
        >;
        return credentials[call.method]!.apply(this.store.credentials, [...call.args]);
      }
    }
  }

  private reply(link: WriterLink, message: Parameters<WriterLink['send']>[0]): void {
    if (!this.links.has(link)) return;
    try {
      link.send(message);
    } catch {
      // The worker is gone; its callers were answered with an unknown outcome.
    }
  }

  private broadcast(message: Parameters<WriterLink['send']>[0]): void {
    for (const link of this.links) this.reply(link, message);
  }
}
