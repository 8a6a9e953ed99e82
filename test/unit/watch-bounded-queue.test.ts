import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BoundedQueue } from '../../src/app/watch/bounded-queue.js';

function drain<T>(queue: BoundedQueue<T>): T[] {
  const out: T[] = [];
  for (let item = queue.shift(); item !== undefined; item = queue.shift()) out.push(item);
  return out;
}

describe('BoundedQueue', () => {
  it('hands items out first in, first out', () => {
    const queue = new BoundedQueue<number>(10);
    for (const n of [1, 2, 3]) expect(queue.push(n)).toBe(true);
    expect(queue.size).toBe(3);
    expect(queue.shift()).toBe(1);
    queue.push(4);
    expect(drain(queue)).toEqual([2, 3, 4]);
    expect(queue.size).toBe(0);
    expect(queue.shift()).toBeUndefined();
  });

  it('holds at most `limit` items: the push that would exceed it is refused and the queue is unchanged', () => {
    const queue = new BoundedQueue<string>(3);
    expect(['a', 'b', 'c'].map((s) => queue.push(s))).toEqual([true, true, true]);
    expect(queue.push('overflow')).toBe(false);
    expect(queue.size).toBe(3);
    expect(drain(queue)).toEqual(['a', 'b', 'c']);
  });

  it('takes items again once the reader has made room', () => {
    const queue = new BoundedQueue<number>(2);
    queue.push(1);
    queue.push(2);
    expect(queue.push(3)).toBe(false);
    queue.shift();
    expect(queue.push(3)).toBe(true);
    expect(drain(queue)).toEqual([2, 3]);
  });

  it('a limit of 1 holds one item', () => {
    const queue = new BoundedQueue<number>(1);
    expect(queue.push(1)).toBe(true);
    expect(queue.push(2)).toBe(false);
  });

  it('rejects a limit below 1', () => {
    for (const limit of [0, -1, Number.NaN]) expect(() => new BoundedQueue(limit)).toThrow(RangeError);
  });

  it('in the steady state (one in, one out) keeps one small array: no allocation per item', () => {
    const queue = new BoundedQueue<number>(1000);
    queue.push(0);
    queue.shift();
    const capacity = queue.capacity;
    expect(capacity).toBeGreaterThan(0);
    expect(capacity).toBeLessThanOrEqual(8);
    for (let n = 1; n <= 10_000; n++) {
      queue.push(n);
      expect(queue.shift()).toBe(n);
    }
    expect(queue.capacity).toBe(capacity);
  });

  it('grows while a burst waits, and gives the memory back (compacts) once the burst is drained', () => {
    const queue = new BoundedQueue<number>(1000);
    for (let n = 0; n < 1000; n++) queue.push(n);
    expect(queue.capacity).toBeGreaterThanOrEqual(1000);
    // Never more than the next power of two above the limit.
    expect(queue.capacity).toBeLessThanOrEqual(1024);
    expect(drain(queue)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(queue.capacity).toBe(0);
    // Usable again afterwards.
    queue.push(7);
    expect(queue.shift()).toBe(7);
  });

  it('clear drops the items and their memory', () => {
    const queue = new BoundedQueue<number>(100);
    for (let n = 0; n < 50; n++) queue.push(n);
    queue.clear();
    expect(queue.size).toBe(0);
    expect(queue.capacity).toBe(0);
    expect(queue.shift()).toBeUndefined();
  });

  it('behaves as a bounded array, whatever the order of pushes and shifts (wrap-around, growth, compaction)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.array(fc.oneof(fc.constant<'shift'>('shift'), fc.integer({ min: 1, max: 1_000_000 })), { maxLength: 600 }),
        (limit, operations) => {
          const queue = new BoundedQueue<number>(limit);
          const model: number[] = [];
          for (const operation of operations) {
            if (operation === 'shift') {
              expect(queue.shift()).toBe(model.shift());
            } else {
              const fits = model.length < limit;
              expect(queue.push(operation)).toBe(fits);
              if (fits) model.push(operation);
            }
            expect(queue.size).toBe(model.length);
          }
          expect(drain(queue)).toEqual(model);
        },
      ),
    );
  });
});
