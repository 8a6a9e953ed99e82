/**
 * Response messages that a method hands out again and again, unchanged (the
 * Get response of a hot config's latest version, kept for as long as that
 * version is the latest). A transport may keep the wire encoding of such a
 * message by its identity instead of encoding it for every call.
 */
const reused = new WeakSet<object>();

/** Marks `message` as reused; it must never be changed afterwards. */
export function markReused<T extends object>(message: T): T {
  reused.add(message);
  return message;
}

export function isReused(message: object): boolean {
  return reused.has(message);
}
