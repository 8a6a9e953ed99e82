/**
 * The client's abortable wait, which the watch's backoff and the agent's
 * wait after a refused watch use again and again on one long-lived signal.
 */
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { sleep } from '../../src/client/sleep.js';

describe('sleep', () => {
  it('leaves no abort listener behind when its time runs out, however often it waits on one signal', async () => {
    const controller = new AbortController();
    for (let i = 0; i < 20; i++) await sleep(1, controller.signal);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  // Each wait would outlast the test's timeout: only the abort ends them.
  it('ends early when the signal aborts, and at once when it already has', async () => {
    const controller = new AbortController();
    const waiting = sleep(60_000, controller.signal);
    controller.abort();
    await waiting;
    await sleep(60_000, controller.signal);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
