import { CfgdError, type ConfigKey, type InstanceReport, type KindAndReason } from '../../domain/index.js';
import type { Unsubscribe } from '../store.js';
import type { PreparedWrite } from './prepared-write.js';

/**
 * One end of the message channel between the writer process and a worker
 * process of one embedded store (a cluster worker's `process`, or the
 * primary's handle on that worker). Messages keep their order; values are
 * copied with the structured-clone algorithm, so dates stay dates.
 */
export interface WriterLink {
  send(message: WriterMessage): void;
  onMessage(listener: (message: unknown) => void): Unsubscribe;
  /** Calls `listener` once the other end is gone. */
  onClose(listener: () => void): Unsubscribe;
}

/** The credential writes a worker hands to the writer (reads it does on its own connection). */
export const CREDENTIAL_WRITES = ['createToken', 'putToken', 'revokeToken', 'setBinding', 'removeBinding'] as const;
export type CredentialWrite = (typeof CREDENTIAL_WRITES)[number];

export type WriterCall =
  | { readonly op: 'commit'; readonly prepared: PreparedWrite }
  | { readonly op: 'setMaxVersions'; readonly key: ConfigKey; readonly maxVersions: number | undefined }
  | { readonly op: 'prune'; readonly key: ConfigKey; readonly floor: number }
  | { readonly op: 'credentials'; readonly method: CredentialWrite; readonly args: readonly unknown[] }
  | { readonly op: 'putReport'; readonly key: ConfigKey; readonly report: InstanceReport }
  | { readonly op: 'expireReports'; readonly before: Date };

/** An error as it crosses the link: a `CfgdError` keeps its kind, reason and details. */
export interface LinkedError {
  readonly message: string;
  /** A `CfgdError`'s kind and reason. */
  readonly pair?: KindAndReason;
  readonly metadata?: Record<string, string>;
  readonly fieldViolations?: { field: string; description: string }[];
}

export type WriterMessage =
  | { readonly cfgd: 'writer'; readonly id: number; readonly call: WriterCall }
  | { readonly cfgd: 'writer'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly cfgd: 'writer'; readonly id: number; readonly ok: false; readonly error: LinkedError }
  /** After each group commit: the configs it created versions of, in commit order. */
  | { readonly cfgd: 'writer'; readonly committed: readonly (readonly [userId: string, configName: string])[] }
  /** After a token or binding changed. */
  | { readonly cfgd: 'writer'; readonly credentialsChanged: true }
  /** Several of the above, in order (see `batching`). */
  | { readonly cfgd: 'writer'; readonly batch: readonly WriterMessage[] };

export function isWriterMessage(message: unknown): message is WriterMessage {
  return typeof message === 'object' && message !== null && (message as { cfgd?: unknown }).cfgd === 'writer';
}

/** The messages in what arrived on a link: none when it is not ours, the batch's when it is a batch. */
export function received(message: unknown): readonly WriterMessage[] {
  if (!isWriterMessage(message)) return [];
  return 'batch' in message ? message.batch : [message];
}

/**
 * A link that sends what is sent through it in one batch per `schedule`
 * (the writer: after the group commit's replies, one microtask later; a
 * worker: what its calls of one event-loop turn send), so that a message on
 * the channel (a system call and a copy on each side) carries many writes.
 * With `leading`, a message sent while nothing waits goes at once (a lone
 * write does not wait for the batch), and those sent after it, until the
 * scheduled flush, go together. Order is kept. A batch that cannot be sent
 * is dropped: the channel is closed, and its `onClose` answers the calls
 * waiting for it.
 */
export function batching(
  link: WriterLink,
  schedule: (flush: () => void) => void,
  options: { readonly leading?: boolean } = {},
): WriterLink {
  let queue: WriterMessage[] = [];
  let scheduled = false;
  const send = (message: WriterMessage): void => {
    try {
      link.send(message);
    } catch {
      // Closed: see above.
    }
  };
  const flush = (): void => {
    scheduled = false;
    const messages = queue;
    queue = [];
    if (messages.length > 0) send(messages.length === 1 ? messages[0]! : { cfgd: 'writer', batch: messages });
  };
  return {
    send(message) {
      if (!scheduled) {
        scheduled = true;
        schedule(flush);
        if (options.leading === true) return send(message);
      }
      queue.push(message);
    },
    onMessage: (listener) => link.onMessage(listener),
    onClose: (listener) => link.onClose(listener),
  };
}

export function toLinkedError(error: unknown): LinkedError {
  if (error instanceof CfgdError) {
    return {
      message: error.message,
      pair: [error.kind, error.reason] as KindAndReason,
      metadata: error.metadata,
      fieldViolations: error.fieldViolations,
    };
  }
  return { message: error instanceof Error ? error.message : String(error) };
}

export function fromLinkedError(error: LinkedError): Error {
  if (error.pair === undefined) return new Error(error.message);
  return new CfgdError(...error.pair, error.message, {
    metadata: error.metadata ?? {},
    fieldViolations: error.fieldViolations ?? [],
  });
}
