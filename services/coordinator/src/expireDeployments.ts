// Finished deployments expire from deploy_deployments (Nomad's deployment
// GC): without it every deployment's projection, shards, list index entry
// and request mapping were kept for ever, and a ListDeployments without an
// app and environment lists every index key ever written. A deployment that
// finished more than streams.deploymentsMaxAgeMs ago loses them, purged (no
// delete marker left behind), unless
//   - a release of its (app, environment) names it, the desired one or one
//     of the history: a rollback to it reads its targets;
//   - it is a convergence to the pair's desired release: its request mapping
//     is what keeps convergence once per (agent, desired release).
// Its events expire from DEPLOY_EVENTS by the stream's own max_age. The
// list index entry goes last, so an expiry cut short is finished by the
// next one. Each coordinator expires the deployments it sweeps
// (rollout/membership.ts), so two never work on the same one.
import {
  DEPLOYMENTS_BUCKET,
  errorMessage,
  isTerminalDeployment,
  kvKeySubject,
  kvStreamName,
  loadDeployment,
  type JsContext,
  type Logger,
} from "../../shared/src/index.js";
import { deploymentOfRequest } from "./createDeployment.js";
import type { ReleaseBook } from "./releases/releaseBook.js";
import { requestKeyOf } from "./requests.js";

export interface ExpiryOptions {
  /** Finished longer ago than this: expired. 0: never. */
  maxAgeMs: number;
  intervalMs: number;
  /** Which deployments this coordinator sweeps (rollout/membership.ts); absent: all. */
  owner?: () => (deploymentId: string) => boolean;
  /** Called with each deployment purged (metrics). */
  onExpired?: () => void;
}

/**
 * The age past which a finished deployment's records go: never before its
 * events (a deployment purged from KV but still in DEPLOY_EVENTS would be
 * found by GetDeployment, folded from the stream, and listed by nothing), so
 * never while events are kept for ever (eventsMaxAgeMs 0). 0: never.
 */
export function expiryAgeMs(s: { deploymentsMaxAgeMs: number; eventsMaxAgeMs: number }): number {
  if (s.deploymentsMaxAgeMs === 0 || s.eventsMaxAgeMs === 0) return 0;
  return Math.max(s.deploymentsMaxAgeMs, s.eventsMaxAgeMs);
}

/** When a deployment id (d-<ms base36>-<random>) was made; undefined for another shape. */
export function deploymentIdTime(id: string): number | undefined {
  const m = /^d-([0-9a-z]{9,11})-[0-9a-f]+$/.exec(id);
  return m ? parseInt(m[1]!, 36) : undefined;
}

const purge = (ctx: JsContext, key: string): Promise<unknown> => ctx.jsm.streams.purge(kvStreamName(DEPLOYMENTS_BUCKET), { filter: kvKeySubject(DEPLOYMENTS_BUCKET, key) });

/** One pass: purges the records of every expired deployment this coordinator sweeps; returns their ids. */
export async function expireDeployments(ctx: JsContext, releases: ReleaseBook, opts: ExpiryOptions, log: Logger, now = Date.now()): Promise<string[]> {
  if (opts.maxAgeMs <= 0) return [];
  const cutoff = now - opts.maxAgeMs;
  const mine = opts.owner?.();
  const keys: string[] = [];
  for await (const k of await ctx.deployments.keys("idx.>")) keys.push(k);
  /** Per pair: the deployments its releases name. */
  const named = new Map<string, Set<string>>();
  const expired: string[] = [];
  for (const key of keys) {
    const [, app, environment, id, extra] = key.split(".");
    if (!app || !environment || !id || extra !== undefined) continue;
    // Made after the cutoff: finished after it too. No read at all.
    const made = deploymentIdTime(id);
    if (made === undefined || made > cutoff) continue;
    if (mine && !mine(id)) continue;
    const pair = `${app}.${environment}`;
    let keep = named.get(pair);
    if (!keep) {
      keep = new Set((await releases.history(app, environment)).map((r) => r.deploymentId));
      named.set(pair, keep);
    }
    if (keep.has(id)) continue;
    const loaded = await loadDeployment(ctx, id);
    const rec = loaded?.record;
    if (rec) {
      if (!isTerminalDeployment(rec.state)) continue;
      if (Date.parse(rec.finishedAt ?? rec.updatedAt) > cutoff) continue;
      if (rec.spec.convergesTo !== undefined && rec.spec.convergesTo === releases.get(app, environment)?.deploymentId) continue;
    }
    // No record (neither a projection nor events left): the index entry, and any shards, still go.
    const mapping = rec && (await deploymentOfRequest(ctx, rec.spec.requestId)) === id ? [requestKeyOf(rec.spec.requestId)] : [];
    for (const k of [`shard.${id}.*`, ...mapping, id, key]) await purge(ctx, k);
    expired.push(id);
    opts.onExpired?.();
  }
  if (expired.length > 0) log.info({ expired: expired.length, first: expired[0], maxAgeMs: opts.maxAgeMs }, "expired finished deployments purged from deploy_deployments");
  return expired;
}

/** Runs expireDeployments every intervalMs (the first a tenth of it after start); stop() ends it. */
export function startExpiry(ctx: JsContext, releases: ReleaseBook, opts: ExpiryOptions, log: Logger): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const run = async (): Promise<void> => {
    try {
      await expireDeployments(ctx, releases, opts, log);
    } catch (err) {
      log.warn({ err: errorMessage(err) }, "expiring finished deployments failed; trying again at the next interval");
    }
    if (!stopped) timer = setTimeout(() => void run(), opts.intervalMs).unref();
  };
  if (opts.maxAgeMs > 0) timer = setTimeout(() => void run(), Math.max(100, Math.floor(opts.intervalMs / 10))).unref();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
