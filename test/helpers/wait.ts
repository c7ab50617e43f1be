// Waiting "until" something holds, for tests that must not assume timings:
// polls `fn` (a failed call counts as not yet) until it gives a value, or
// fails after `timeoutMs` naming what it waited for.
export async function until<T>(what: string, fn: () => Promise<T | undefined | false | null>, timeoutMs = 60_000, pollMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== false && v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
