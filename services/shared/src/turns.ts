/**
 * Turns for `n` holders at a time, first come first served: `take()`
 * resolves when the caller holds one, with the function that gives it back
 * (once; later calls do nothing). What waits for a turn waits here, where
 * no timeout of the work it guards has started yet.
 */
export function turns(n: number): () => Promise<() => void> {
  let free = n;
  const waiting: (() => void)[] = [];
  const release = (): void => {
    // Passed straight to the next waiter, or given back.
    const next = waiting.shift();
    if (next) next();
    else free++;
  };
  return async () => {
    if (free > 0) free--;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    let done = false;
    return () => {
      if (done) return;
      done = true;
      release();
    };
  };
}
