/** Anything that writes a config's values: the test client, the client library. */
export interface VersionWriter {
  put(request: { userId: string; configName: string; values: Record<string, unknown> }): Promise<unknown>;
}

/**
 * Puts `count` versions of one config from `concurrency` callers (each write distinct, so each is
 * a version); resolves when all are acknowledged.
 */
export async function writeVersions(
  client: VersionWriter,
  key: { readonly userId: string; readonly configName: string },
  count: number,
  concurrency: number,
  pad = '',
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const n = ++next;
        await client.put({ ...key, values: { n, pad } });
      }
    }),
  );
}
