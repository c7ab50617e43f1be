// Creates or updates the streams, buckets and the coordinators' consumer,
// idempotently, at every start. Agents never create any of them.
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import { Kvm, type KvOptions } from "@nats-io/kv";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  AGENTS_BUCKET,
  COMMANDS_STREAM,
  COORDINATOR_CONSUMER,
  DEPLOYMENTS_BUCKET,
  EVENTS_STREAM,
  EVENTS_MAX_MSG_SIZE,
  RELEASES_BUCKET,
  COORDINATORS_BUCKET,
  CORDONS_BUCKET,
  FREEZES_BUCKET,
  POLICIES_BUCKET,
  LEGACY_ARTIFACTS_BUCKET,
  kvStreamName,
} from "../../shared/src/index.js";
import { RELEASE_HISTORY } from "./releases/releaseBook.js";

const nanos = (ms: number): number => ms * 1_000_000;

/**
 * What each stream and bucket holds, in one line: the Description column of
 * `nats stream ls` and `nats kv ls`, where an operator meets them first.
 */
export const DESCRIPTIONS: Readonly<Record<string, string>> = {
  [COMMANDS_STREAM]: "nats-deploy commands, one per target: deploy.cmd.<agent>.queue",
  [EVENTS_STREAM]: "nats-deploy events, the source of truth: deploy.evt.<deployment>.<source>",
  [DEPLOYMENTS_BUCKET]: "nats-deploy deployments (folded from DEPLOY_EVENTS), request ids, locks",
  [AGENTS_BUCKET]: "nats-deploy agents: each agent's entry, written by the agent",
  [RELEASES_BUCKET]: "nats-deploy desired release of each <app>.<environment>",
  [CORDONS_BUCKET]: "nats-deploy cordoned agents, by agent id",
  [FREEZES_BUCKET]: "nats-deploy environment freezes, by environment",
  [POLICIES_BUCKET]: "nats-deploy environment policies, by environment",
  [COORDINATORS_BUCKET]: "nats-deploy coordinators' membership heartbeats",
};

/**
 * A KV bucket, made with its description or bound as it is (Kvm.create),
 * then given its description if an earlier version made it without: one
 * stream info per bucket at a coordinator's start. The description is
 * cosmetic: a refused update is said, and the start goes on.
 */
async function ensureBucket(kvm: Kvm, jsm: JetStreamManager, bucket: string, opts: Partial<KvOptions>, warn: (message: string) => void): Promise<void> {
  const description = DESCRIPTIONS[bucket] ?? "";
  await kvm.create(bucket, { ...opts, description });
  const name = kvStreamName(bucket);
  const info = await jsm.streams.info(name);
  if (info.config.description === description) return;
  await jsm.streams.update(name, { ...info.config, description }).catch((err: unknown) => warn(`${name}: its description was not set: ${(err as Error).message}`));
}

export interface InfrastructureOptions {
  replicas: number;
  commandsMaxAgeMs: number;
  /** DEPLOY_EVENTS retention (streams.events* in the coordinator config); absent: kept for ever, no limits. */
  eventsMaxAgeMs?: number;
  eventsMaxBytes?: number;
  eventsMaxMsgsPerSubject?: number;
}

export function commandsStreamConfig(o: InfrastructureOptions): Partial<StreamConfig> & { name: string } {
  return {
    name: COMMANDS_STREAM,
    description: DESCRIPTIONS[COMMANDS_STREAM],
    subjects: ["deploy.cmd.>"],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: o.replicas,
    // No limit per subject: an agent's queue (names.ts agentCommandQueue)
    // holds each of its commands. Earlier versions kept one message per
    // subject with discard-new per subject, which refused a repeated command
    // for as long as the first was kept; set explicitly, so a stream made by
    // them is updated at this start. A repeat stored after the duplicate
    // window is answered by the agent's journal (publishCommand.ts).
    max_msgs_per_subject: -1,
    discard: DiscardPolicy.New,
    discard_new_per_subject: false,
    max_age: nanos(o.commandsMaxAgeMs),
    // The server refuses a duplicate window longer than max_age.
    duplicate_window: nanos(Math.min(120_000, o.commandsMaxAgeMs)),
    // One durable consumer per agent. nats-server 2.15 gives a stream that
    // sets no limit of its own (-1 counts as none) its default_max_consumers,
    // 1,000: agent 1,001 was refused for ever (found by the 10,000-agent bench).
    max_consumers: MAX_AGENT_CONSUMERS,
  };
}

/** DEPLOY_COMMANDS' consumer limit: the most agents one fleet may have. */
export const MAX_AGENT_CONSUMERS = 1_000_000;

/** DEPLOY_EVENTS' consumer limit: far above what the coordinators make (their watches are bounded by watches.max each). */
export const MAX_EVENT_CONSUMERS = 100_000;

/**
 * An artifact bucket's consumer limit. Agents read chunks by direct gets now
 * and hold none (agent/src/artifactCache.ts), but an agent from before, or
 * one whose credentials are from before, holds one per download: a rollout
 * of 10,000 of them at max_concurrency 10,000 needs 10,000 at once. With
 * none of its own a stream gets the server's default_max_consumers (1,000
 * on 2.15), and the 1,001st concurrent download failed its target.
 */
export const MAX_ARTIFACT_CONSUMERS = 1_000_000;

/**
 * Raises the consumer limit of artifact buckets made before it was set
 * (ArtifactStore sets it on the ones it makes). Best effort: a bucket whose
 * update is refused (a server before 2.12 cannot change the limit) keeps
 * its limit, and `warn` says which; the coordinator starts all the same.
 */
async function raiseArtifactConsumerLimits(jsm: JetStreamManager, warn: (message: string) => void): Promise<void> {
  for await (const si of jsm.streams.list()) {
    const name = si.config.name;
    if (!name.startsWith(`OBJ_${LEGACY_ARTIFACTS_BUCKET}`) || si.config.max_consumers === MAX_ARTIFACT_CONSUMERS) continue;
    try {
      const raised: Partial<StreamConfig> = { max_consumers: MAX_ARTIFACT_CONSUMERS };
      await jsm.streams.update(name, { ...si.config, ...raised });
    } catch (err) {
      warn(`${name} keeps its consumer limit (${si.config.max_consumers}; -1: the server's default_max_consumers): ${(err as Error).message}; more agents than that downloading one of its bundles at once fail`);
    }
  }
}

export function eventsStreamConfig(o: InfrastructureOptions): Partial<StreamConfig> & { name: string } {
  return {
    name: EVENTS_STREAM,
    description: DESCRIPTIONS[EVENTS_STREAM],
    subjects: ["deploy.evt.>"],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: o.replicas,
    // The audit log: kept for eventsMaxAgeMs (0: for ever). Limits refuse
    // new events (discard new) instead of dropping acknowledged ones: a full
    // stream stops deployments with a clear error, it never loses history.
    max_age: nanos(o.eventsMaxAgeMs ?? 0),
    max_bytes: o.eventsMaxBytes ?? -1,
    max_msgs_per_subject: o.eventsMaxMsgsPerSubject ?? -1,
    discard: DiscardPolicy.New,
    discard_new_per_subject: (o.eventsMaxMsgsPerSubject ?? -1) > 0,
    duplicate_window: nanos(Math.min(120_000, o.eventsMaxAgeMs || 120_000)),
    // Each event is small; a bound keeps a misbehaving publisher from filling the disk with one message.
    max_msg_size: EVENTS_MAX_MSG_SIZE,
    // The coordinators' wake-up and notifier consumers, their catch-up reads
    // of long histories and every watch (bounded per coordinator by
    // watches.max) each hold a consumer here. Without a limit of its own
    // the stream gets the server's default_max_consumers (1,000 on 2.15),
    // and the thousandth watch would make the coordinators' own reads fail.
    max_consumers: MAX_EVENT_CONSUMERS,
    // Agents read the last coordinator event of their deployment with a
    // direct get, which their permissions can limit by subject
    // (deploy.evt.*.coordinator): no agent reads another's output.
    allow_direct: true,
  };
}

async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  const name = config.name;
  try {
    const info = await jsm.streams.info(name);
    try {
      await jsm.streams.update(name, { ...info.config, ...config });
    } catch (err) {
      // A server before 2.12 cannot change a stream's max_consumers: keep it.
      if (config.max_consumers === undefined || config.max_consumers === info.config.max_consumers || !/consumers/i.test((err as Error).message)) throw err;
      const keep: Partial<StreamConfig> = { ...info.config, ...config, max_consumers: info.config.max_consumers };
      await jsm.streams.update(name, keep);
    }
  } catch (err) {
    if ((err as { name?: string }).name !== "StreamNotFoundError") throw err;
    await jsm.streams.add(config);
  }
}

export async function ensureInfrastructure(nc: NatsConnection, jsm: JetStreamManager, o: InfrastructureOptions, warn: (message: string) => void = () => undefined): Promise<void> {
  await ensureStream(jsm, commandsStreamConfig(o));
  await ensureStream(jsm, eventsStreamConfig(o));
  const kvm = new Kvm(jetstream(nc));
  for (const [bucket, history] of [
    [DEPLOYMENTS_BUCKET, 5],
    [AGENTS_BUCKET, 1],
  ] as const) {
    await ensureBucket(kvm, jsm, bucket, { history, storage: StorageType.File, replicas: o.replicas }, warn);
  }
  // No claims bucket any more: a target's race is decided on its own event
  // subject (js/raceForTarget.ts). One left by an older version is unused.
  // The desired release of each (app, environment): one small key per pair,
  // kept for ever (it must outlive DEPLOY_EVENTS' retention: convergence
  // reads it, not the events that made it), its last 64 revisions (the KV
  // maximum) the release history GetRelease shows.
  await ensureBucket(kvm, jsm, RELEASES_BUCKET, { history: RELEASE_HISTORY, storage: StorageType.File, replicas: o.replicas }, warn);
  // Cordoned agents (CordonAgent): one small key per agent ever cordoned,
  // kept for ever; its last 16 revisions say who cordoned and uncordoned it.
  await ensureBucket(kvm, jsm, CORDONS_BUCKET, { history: 16, storage: StorageType.File, replicas: o.replicas }, warn);
  // Frozen environments (FreezeEnvironment): one small key per environment
  // ever frozen, kept for ever; its last 16 revisions say who froze and
  // unfroze it, when, why and until when.
  await ensureBucket(kvm, jsm, FREEZES_BUCKET, { history: 16, storage: StorageType.File, replicas: o.replicas }, warn);
  // Environment policies (SetEnvironmentPolicy): one small key per
  // environment ever given one, kept for ever; its last 16 revisions say who
  // set or cleared which rules, when and why.
  await ensureBucket(kvm, jsm, POLICIES_BUCKET, { history: 16, storage: StorageType.File, replicas: o.replicas }, warn);
  // Coordinators' heartbeats: a key left by one that died expires after an hour.
  await ensureBucket(kvm, jsm, COORDINATORS_BUCKET, { history: 1, storage: StorageType.Memory, replicas: o.replicas, ttl: 3600_000 }, warn);
  // Artifacts: one object store bucket per app (deploy_artifacts_<app>),
  // made by the first upload for the app (artifacts/artifactStore.ts). The
  // shared deploy_artifacts of earlier versions is no longer made.
  await raiseArtifactConsumerLimits(jsm, warn);

  // The coordinators' wake-up consumer acknowledges nothing (ack none): an
  // event only wakes a reconcile, the stream keeps it, and the sweep
  // reconciles every active deployment each interval, so a wake lost with a
  // coordinator (or a failed reconcile) costs a sweep interval, not an
  // event. An ack per event was a message per event to the server, for
  // redeliveries that were already the sweep's job.
  const consumer = {
    durable_name: COORDINATOR_CONSUMER,
    filter_subject: "deploy.evt.>",
    ack_policy: AckPolicy.None,
    // Only events from now on wake a new consumer: the sweep covers every
    // active deployment anyway.
    deliver_policy: DeliverPolicy.New,
  };
  try {
    const info = await jsm.consumers.info(EVENTS_STREAM, COORDINATOR_CONSUMER);
    // An older version's consumer acknowledged every event; a consumer's ack
    // policy cannot be changed, so it is replaced (an older coordinator still
    // consuming it only loses its wake-ups until it is upgraded: it sweeps).
    if (info.config.ack_policy !== AckPolicy.None) {
      await jsm.consumers.delete(EVENTS_STREAM, COORDINATOR_CONSUMER);
      await jsm.consumers.add(EVENTS_STREAM, consumer);
    }
  } catch (err) {
    if ((err as { name?: string }).name !== "ConsumerNotFoundError") throw err;
    await jsm.consumers.add(EVENTS_STREAM, consumer);
  }
}
