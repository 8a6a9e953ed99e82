import type { Worker } from 'node:cluster';
import type { WriterLink } from '../store/embedded/writer-link.js';

/** A worker's link to the primary: its own IPC channel. */
export function primaryLink(): WriterLink {
  return {
    send(message) {
      process.send!(message);
    },
    onMessage(listener) {
      process.on('message', listener);
      return () => process.off('message', listener);
    },
    onClose(listener) {
      process.on('disconnect', listener);
      return () => process.off('disconnect', listener);
    },
  };
}

/** The primary's link to one worker. */
export function workerLink(worker: Worker): WriterLink {
  return {
    send(message) {
      if (worker.isConnected()) worker.send(message);
    },
    onMessage(listener) {
      worker.on('message', listener);
      return () => worker.off('message', listener);
    },
    onClose(listener) {
      worker.on('exit', listener);
      return () => worker.off('exit', listener);
    },
  };
}
