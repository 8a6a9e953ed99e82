/** Slots of a queue's first array: most streams hold one or two events at a time. */
const INITIAL_CAPACITY = 4;
/** A drained queue keeps an array up to this size; a larger one (left by a burst) is given back. */
const KEPT_CAPACITY = 64;

/**
 * A FIFO queue that holds at most `limit` items: `push` refuses the one that
 * would exceed it, and the owner decides what an overflow means. A ring
 * buffer over a power-of-two array that grows on demand: `push` and `shift`
 * allocate nothing in the steady state (an array that empties stays for the
 * next item), and a queue that drains after a burst gives its memory back.
 */
export class BoundedQueue<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  private count = 0;

  constructor(readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError(`a queue limit must be at least 1, got ${limit}`);
  }

  /** Items waiting. */
  get size(): number {
    return this.count;
  }

  /** Slots allocated (for tests and memory reasoning). */
  get capacity(): number {
    return this.items.length;
  }

  /** Appends `item`; false (and the queue unchanged) when it already holds `limit` items. */
  push(item: T): boolean {
    if (this.count >= this.limit) return false;
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) & (this.items.length - 1)] = item;
    this.count++;
    return true;
  }

  /** Removes and returns the oldest item; undefined when empty. */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.count--;
    if (this.count > 0) {
      this.head = (this.head + 1) & (this.items.length - 1);
    } else {
      this.head = 0;
      if (this.items.length > KEPT_CAPACITY) this.items = [];
    }
    return item;
  }

  /** Drops every item and the memory that held them. */
  clear(): void {
    this.items = [];
    this.head = 0;
    this.count = 0;
  }

  private grow(): void {
    const capacity = this.items.length === 0 ? INITIAL_CAPACITY : this.items.length * 2;
    const mask = this.items.length - 1;
    // Pushed one by one so that the array stays packed (no holes), which V8 handles fastest.
    const items: (T | undefined)[] = [];
    for (let i = 0; i < this.count; i++) items.push(this.items[(this.head + i) & mask]);
    for (let i = this.count; i < capacity; i++) items.push(undefined);
    this.items = items;
    this.head = 0;
  }
}
