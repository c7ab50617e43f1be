// A bundle's default limits, in a module of their own: the agent's config
// reads them at start, and importing them from inspect.ts loaded tar-stream
// and yaml into every agent (and its RSS) before it had anything to unpack.

/** The default maxFiles: entries a bundle may hold. */
export const DEFAULT_MAX_ENTRIES = 100_000;
/** The coordinator's default artifacts.maxExpansionRatio. */
export const DEFAULT_MAX_EXPANSION_RATIO = 50;
/** 2 GiB: far above any application release we ship, far below a full disk. */
export const DEFAULT_MAX_UNPACKED_BYTES = 2 * 1024 ** 3;
