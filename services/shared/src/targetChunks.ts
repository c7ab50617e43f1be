// How a deployment's targets are written when they do not fit in its
// deployment.created event (DEPLOY_EVENTS takes 256 KiB a message: about
// 3,000 targets offline at creation, 15,000 live ones of 11-character ids).
// The spec goes in the created event without its target list; the targets
// (and which of them were offline at creation, or already current) go in deployment.targets
// chunks, each cut to fit the event budget by its encoded bytes, written
// before the created event, which lists their sequences (fold.ts
// assembleSpec puts them back together).
import { MAX_CHUNK_TARGETS, MAX_TARGET_CHUNKS, encode, makeEvent, type DeploymentSpec, type EventBody } from "./schemas.js";

export type TargetsChunk = Extract<EventBody, { type: "deployment.targets" }>;

export interface SplitSpec {
  /** What deployment.created holds: the whole spec, or (chunked) the spec without targets, offlineTargets and currentTargets, with targetCount. */
  created: DeploymentSpec;
  /** Empty when the targets are in the created event. */
  chunks: TargetsChunk[];
}

/** The largest sequence a created event may list for a chunk: sizes are checked with it, before the real ones are known. */
const LONGEST_SEQ = Number.MAX_SAFE_INTEGER;

/** Bytes of the created event of `spec`, with `chunks` chunk sequences at their longest. */
export function createdEventBytes(spec: DeploymentSpec, chunks: number): number {
  const withSeqs = chunks === 0 ? spec : { ...spec, targetChunks: new Array<number>(chunks).fill(LONGEST_SEQ) };
  return encode(makeEvent(spec.id, { type: "deployment.created", spec: withSeqs })).length;
}

/**
 * The spec as written: whole when its created event fits in `budget` bytes
 * (every deployment of a few thousand targets: one event, as before
 * chunking), else chunked, each chunk at most `budget` bytes as an event.
 * Does not check the created event of a chunked spec against the budget
 * (checkSplitFits does).
 */
export function splitSpec(spec: DeploymentSpec, budget: number): SplitSpec {
  if (createdEventBytes(spec, 0) <= budget) return { created: spec, chunks: [] };
  const { offlineTargets, currentTargets, targets, ...rest } = spec;
  const created: DeploymentSpec = { ...rest, targets: [], targetCount: targets.length };
  // An empty chunk's event, for the bytes every chunk takes besides its ids
  // (schema, deployment id, time, type: ~150 bytes).
  const fixed = encode(makeEvent(spec.id, { type: "deployment.targets", agentIds: [], offline: {}, current: {} })).length;
  const chunks: TargetsChunk[] = [];
  let ids: string[] = [];
  let offline: Record<string, string> = {};
  let current: Record<string, string> = {};
  let offlineCount = 0;
  let currentCount = 0;
  let bytes = fixed;
  const flush = (): void => {
    chunks.push({ type: "deployment.targets", agentIds: ids, ...(offlineCount > 0 ? { offline } : {}), ...(currentCount > 0 ? { current } : {}) });
    ids = [];
    offline = {};
    current = {};
    offlineCount = 0;
    currentCount = 0;
    bytes = fixed;
  };
  // Agent ids are subject tokens: JSON writes them as they are, in quotes,
  // after a comma; an offline or current one once more as a key with its value.
  const entry = (id: string, v: string | undefined): number => (v === undefined ? 0 : id.length + 3 + JSON.stringify(v).length + 1);
  for (const id of targets) {
    const hb = offlineTargets?.[id];
    const release = currentTargets?.[id];
    const cost = id.length + 3 + entry(id, hb) + entry(id, release);
    if (ids.length > 0 && (bytes + cost > budget || ids.length >= MAX_CHUNK_TARGETS)) flush();
    ids.push(id);
    if (hb !== undefined) {
      offline[id] = hb;
      offlineCount++;
    }
    if (release !== undefined) {
      current[id] = release;
      currentCount++;
    }
    bytes += cost;
  }
  if (ids.length > 0) flush();
  return { created, chunks };
}

/** Why the split spec cannot be written within `budget` bytes an event, or undefined. Checked before anything is written. */
export function splitProblem(split: SplitSpec, budget: number): string | undefined {
  if (split.chunks.length > MAX_TARGET_CHUNKS) return `its targets take ${split.chunks.length} deployment.targets events, over the ${MAX_TARGET_CHUNKS} a deployment may have`;
  const created = createdEventBytes(split.created, split.chunks.length);
  if (created > budget) return `its deployment.created event would be ${created} bytes (without its target list), over the ${budget} bytes an event may take`;
  for (const [i, c] of split.chunks.entries()) {
    const bytes = encode(makeEvent(split.created.id, c)).length;
    if (bytes > budget) return `its target chunk ${i} would be ${bytes} bytes, over the ${budget} bytes an event may take`;
  }
  return undefined;
}
