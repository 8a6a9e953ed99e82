import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { HealthMonitor, type ServingStatus } from '../../src/app/health.js';
import { eventually } from '../helpers/wait.js';

const log = pino({ level: 'silent' });

/** A store whose probe answers or fails as the test says, counting the probes. */
function probedStore(): { store: { ping(): Promise<void> }; answer(yes: boolean): void; probes(): number } {
  let answers = true;
  let probes = 0;
  return {
    store: {
      async ping() {
        probes++;
        if (!answers) throw new Error('unreachable');
      },
    },
    answer: (yes) => {
      answers = yes;
    },
    probes: () => probes,
  };
}

describe('HealthMonitor', () => {
  it('starts with the first probe answered: SERVING, or NOT_SERVING when the store does not answer', async () => {
    const up = probedStore();
    const serving = new HealthMonitor({ store: up.store, intervalMs: 60_000, log });
    await serving.start();
    expect(serving.status).toBe('SERVING');
    serving.stop();

    const down = probedStore();
    down.answer(false);
    const notServing = new HealthMonitor({ store: down.store, intervalMs: 60_000, log });
    await notServing.start();
    expect(notServing.status).toBe('NOT_SERVING');
    notServing.stop();
  });

  it('follows the probe, telling listeners of each change once', async () => {
    const probe = probedStore();
    const monitor = new HealthMonitor({ store: probe.store, intervalMs: 5, log });
    await monitor.start();
    const heard: ServingStatus[] = [];
    monitor.onChange((status) => heard.push(status));
    const probes = probe.probes();
    await eventually(() => expect(probe.probes()).toBeGreaterThan(probes + 3));
    // Probes that answer as before change nothing.
    expect(heard).toEqual([]);

    probe.answer(false);
    await eventually(() => expect(monitor.status).toBe('NOT_SERVING'));
    const failed = probe.probes();
    await eventually(() => expect(probe.probes()).toBeGreaterThan(failed + 3));
    probe.answer(true);
    await eventually(() => expect(monitor.status).toBe('SERVING'));
    expect(heard).toEqual(['NOT_SERVING', 'SERVING']);
    monitor.stop();
  });

  it('is NOT_SERVING for good once stopped, and probes no more', async () => {
    const probe = probedStore();
    const monitor = new HealthMonitor({ store: probe.store, intervalMs: 5, log });
    await monitor.start();
    const heard: ServingStatus[] = [];
    monitor.onChange((status) => heard.push(status));
    monitor.stop();
    monitor.stop();
    expect(monitor.status).toBe('NOT_SERVING');
    expect(heard).toEqual(['NOT_SERVING']);
    const probes = probe.probes();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(probe.probes()).toBe(probes);
    expect(monitor.status).toBe('NOT_SERVING');
  });

  it('stops telling a listener once it unsubscribed', async () => {
    const probe = probedStore();
    const monitor = new HealthMonitor({ store: probe.store, intervalMs: 5, log });
    await monitor.start();
    const heard: ServingStatus[] = [];
    const unsubscribe = monitor.onChange((status) => heard.push(status));
    unsubscribe();
    probe.answer(false);
    await eventually(() => expect(monitor.status).toBe('NOT_SERVING'));
    expect(heard).toEqual([]);
    monitor.stop();
  });
});
