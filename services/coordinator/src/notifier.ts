// Deployment notifications: a POST to a webhook (notify.url) for each event
// of the types notify.events names: a deployment's end, a halted rollout, a
// canary wave waiting for its promote. Operators hear of what nobody
// watches: a convergence or an automatic revert that failed, a pipeline's
// deployment after its job gave up following it.
//
// At least once, durably: the coordinators share one durable pull consumer
// on DEPLOY_EVENTS (NOTIFIER_CONSUMER, the coordinators' own events only),
// and a notification is acknowledged after the webhook answered 2xx. One the
// webhook did not take is delivered again after a wait that doubles
// (notify.retryMs up to 5 minutes), by whichever coordinator pulls it,
// until notify.maxAttempts, then given up (an error log and a metric). A
// coordinator that dies mid-POST leaves it to the others after the ack
// wait. So a receiver may see one twice: Deploy-Delivery (the event's
// stream sequence) is the same each time. Events of other types are acked
// as they come (one ack each, only while notifications are on).
//
// Freezes (environment.frozen, environment.unfrozen) are KV entries, not
// events: a second durable consumer of the same name on the bucket's
// stream (KV_deploy_freezes) delivers each freeze and unfreeze written, with
// the same at-least-once handling; Deploy-Delivery is "freeze.<its
// sequence>" there, so it never equals a deployment event's. Policies
// (environment.policy_changed: SetEnvironmentPolicy, a policy set or
// cleared) the same, on KV_deploy_policies, as "policy.<its sequence>": a
// policy cleared to get a hotfix through is heard of when it happens.
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { AckPolicy, DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import {
  AUTO_REVERT,
  COORDINATOR_SOURCE,
  EVENTS_STREAM,
  FREEZES_BUCKET,
  POLICIES_BUCKET,
  parsePolicyRecord,
  policyHasRules,
  policyName,
  policyRulesText,
  type PolicyRecord,
  freezeText,
  kvKeySubject,
  kvStreamName,
  parseFreezeRecord,
  type FreezeRecord,
  HDR_EVENT_TYPE,
  NOTIFIER_CONSUMER,
  countTargets,
  errorMessage,
  loadDeployment,
  parseEvent,
  parseEventSubject,
  requesterOf,
  type DeployEvent,
  type DeploymentRecord,
  type JsContext,
  type Logger,
} from "../../shared/src/index.js";
import type { CoordinatorConfig } from "./config.js";
import { isEdgeKey, parseFreezeEdge, type EdgeKind, type FreezeEdge } from "./freezeEdges.js";
import { soakText } from "./releases/promote.js";

const MAX_RETRY_MS = 5 * 60_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The JSON body of a notification: about a deployment, a freeze, or a policy. */
export type Notification = DeploymentNotification | FreezeNotification | PolicyNotification;

export interface PolicyNotification {
  text: string;
  event: "environment.policy_changed";
  /** policy.<the KV stream's sequence of the write>: the same on every delivery of this notification. */
  delivery: string;
  time: string;
  deployment?: undefined;
  freeze?: undefined;
  edge?: undefined;
  /** The policy as written (cleared: no rules, who cleared it and why). */
  policy: PolicyRecord;
}

export interface FreezeNotification {
  text: string;
  event: "environment.frozen" | "environment.unfrozen";
  /** freeze.<the KV stream's sequence of the write>: the same on every delivery of this notification. */
  delivery: string;
  time: string;
  deployment?: undefined;
  /** The freeze as written (for an unfreeze: who lifted it, and when). */
  freeze: FreezeRecord;
  /** Present when nothing was written: a window of the freeze opened or closed, or a timed freeze ended (freezeEdges.ts). */
  edge?: EdgeKind;
  policy?: undefined;
}

export interface DeploymentNotification {
  /** One line for people (Slack and Mattermost incoming webhooks show it as it is). */
  text: string;
  event: string;
  /** The event's stream sequence: the same on every delivery of this notification. */
  delivery: string;
  time: string;
  freeze?: undefined;
  edge?: undefined;
  policy?: undefined;
  deployment: {
    id: string;
    app: string;
    environment: string;
    version: string;
    artifact?: { name: string; digest: string };
    /** Its state when the notification was made (for deployment.finished: the final one). */
    state: string;
    message: string;
    requestedBy: string;
    /** Target counts by state, when the notification was made. */
    counts: Record<string, number>;
    /** What made it, when not an operator's deployment: a convergence, an automatic revert (auto_revert, a cancel with revert), a revert asked afterwards, a rollback. */
    kind: "deployment" | "convergence" | "automatic revert" | "revert" | "rollback";
    /** Created with promote_from: the other environment's desired release it deploys. */
    promotedFrom?: { environment: string; deploymentId: string; release: string };
  };
}

function kindOf(rec: DeploymentRecord): DeploymentNotification["deployment"]["kind"] {
  if (rec.spec.convergesTo) return "convergence";
  if (rec.spec.reverts) return rec.spec.requestedBy === AUTO_REVERT.name ? "automatic revert" : "revert";
  if (rec.spec.restores) return "rollback";
  return "deployment";
}

/** The notification of `e` (appended to `rec`'s stream at `seq`). */
export function notificationOf(e: DeployEvent, seq: number, rec: DeploymentRecord): DeploymentNotification {
  const { spec } = rec;
  const counts = Object.fromEntries(Object.entries(countTargets(rec)).filter(([, n]) => n > 0));
  const kind = kindOf(rec);
  const p = spec.promotedFrom;
  const what = `${kind === "deployment" ? "" : `${kind}: `}${spec.app} ${spec.changeset.version} to ${spec.environment} (${spec.id}${p ? `, promoted from ${p.environment}` : ""})`;
  let line: string;
  switch (e.type) {
    case "deployment.created": {
      const { identity, note } = requesterOf(spec);
      const total = Object.values(countTargets(rec)).reduce((a, b) => a + b, 0);
      const st = spec.strategy;
      line =
        `started by ${identity || note || "?"}${identity && note ? ` (${note})` : ""}: ${total} target(s), ${st.maxConcurrency} at a time` +
        `${st.canary ? `, a canary wave of ${st.canary} first` : ""}${spec.freezeOverride ? `, overriding a freeze: ${spec.freezeOverride.reason}` : ""}`;
      break;
    }
    case "deployment.finished":
      line = `${e.state}: ${e.message}`;
      break;
    case "deployment.halted":
      line = `rollout halted: ${e.message}`;
      break;
    case "deployment.canary_done":
      line = e.message;
      break;
    case "deployment.paused":
      line = `paused by ${e.by}${e.reason ? `: ${e.reason}` : ""}`;
      break;
    case "deployment.cancel_requested":
      line = `cancel requested${e.by ? ` by ${e.by}` : ""}${e.reason ? `: ${e.reason}` : ""}`;
      break;
    default:
      line = e.type;
  }
  const a = spec.changeset.artifact;
  return {
    text: `${what}: ${line}`,
    event: e.type,
    delivery: String(seq),
    time: e.time,
    deployment: {
      id: spec.id,
      app: spec.app,
      environment: spec.environment,
      version: spec.changeset.version,
      ...(a ? { artifact: { name: a.name, digest: a.digest } } : {}),
      state: e.type === "deployment.finished" ? e.state : rec.state,
      message: e.type === "deployment.finished" ? e.message : rec.message,
      requestedBy: requesterOf(spec).identity,
      counts,
      kind,
      ...(p ? { promotedFrom: { environment: p.environment, deploymentId: p.deploymentId, release: p.release } } : {}),
    },
  };
}

/** The notification of a freeze or unfreeze written to deploy_freezes at `seq`. */
export function freezeNotificationOf(f: FreezeRecord, seq: number): FreezeNotification {
  const which = `environment ${f.environment}${f.name ? ` ("${f.name}")` : ""}`;
  return {
    text: f.frozen ? `${which} is ${freezeText(f)}` : `${which} unfrozen by ${f.by.name} at ${f.at}${f.reason ? `: ${f.reason}` : ""}`,
    event: f.frozen ? "environment.frozen" : "environment.unfrozen",
    delivery: `freeze.${seq}`,
    time: f.at,
    freeze: f,
  };
}

/** The notification of a policy written at `seq` (set, or cleared: no rules). */
export function policyNotificationOf(p: PolicyRecord, seq: number): PolicyNotification {
  const why = p.reason ? `: ${p.reason}` : "";
  return {
    text: policyHasRules(p)
      ? `${policyName(p)} set by ${p.by.name} at ${p.at}${why}; it accepts ${policyRulesText(p, soakText)}`
      : `${policyName(p)} cleared by ${p.by.name} at ${p.at}${why}; ${p.app === undefined ? "every deployment to it is accepted" : `deployments of ${p.app} to ${p.environment} answer to the environment's policy alone`}`,
    event: "environment.policy_changed",
    delivery: `policy.${seq}`,
    time: p.at,
    policy: p,
  };
}

/** The notification of a freeze's edge (freezeEdges.ts), its marker stored at `seq`. */
export function freezeEdgeNotificationOf(e: FreezeEdge, seq: number): FreezeNotification {
  const f = e.freeze;
  const which = `environment ${f.environment}${f.name ? ` ("${f.name}")` : ""}`;
  const text =
    e.edge === "window_opened"
      ? `${which} is frozen from ${e.at}: a freeze window opened (${freezeText(f)})`
      : e.edge === "window_closed"
        ? `${which}: a freeze window closed at ${e.at}; the freeze waits for its next window (${freezeText(f)})`
        : `${which} unfrozen at ${e.at}: the freeze ended by itself (${freezeText(f)})`;
  return { text, event: e.edge === "window_opened" ? "environment.frozen" : "environment.unfrozen", delivery: `freeze.${seq}`, time: e.at, freeze: f, edge: e.edge };
}

/** Deploy-Signature of `body`: sha256=<HMAC-SHA256 with the secret, hex> (as GitHub signs its webhooks). */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** The secret of notify.secretFile (its content, trimmed); throws naming the file, never the content. */
export function readNotifySecret(file: string): string {
  let secret: string;
  try {
    secret = readFileSync(file, "utf8").trim();
  } catch (err) {
    throw new Error(`notify.secretFile: ${errorMessage(err)}`);
  }
  if (secret.length < 16) throw new Error(`notify.secretFile: ${file} holds fewer than 16 characters`);
  return secret;
}

export interface NotifierDeps {
  ctx: JsContext;
  log: Logger;
  /** Counts each notification's outcome: delivered, retried, given_up. */
  onOutcome?: (outcome: "delivered" | "retried" | "given_up") => void;
}

/** Makes a shared durable consumer when it is not there (every coordinator with notifications on asks). */
async function ensureConsumer(ctx: JsContext, stream: string, filter: string, ackWaitMs: number): Promise<void> {
  try {
    await ctx.jsm.consumers.info(stream, NOTIFIER_CONSUMER);
    return;
  } catch (err) {
    if ((err as { name?: string }).name !== "ConsumerNotFoundError") throw err;
  }
  await ctx.jsm.consumers.add(stream, {
    durable_name: NOTIFIER_CONSUMER,
    filter_subject: filter,
    ack_policy: AckPolicy.Explicit,
    ack_wait: ackWaitMs * 1_000_000,
    // From the moment notifications are first turned on: not every event the stream keeps.
    deliver_policy: DeliverPolicy.New,
    max_deliver: -1,
    max_ack_pending: 1000,
  });
}

/** Starts pulling notifications; stop() ends the loop after the batch in hand. */
export function startNotifier(config: CoordinatorConfig["notify"], deps: NotifierDeps): { stop: () => Promise<void> } {
  const { ctx, log } = deps;
  const secret = config.secretFile ? readNotifySecret(config.secretFile) : undefined;
  const wanted = new Set(config.events);
  const environments = config.environments.length > 0 ? new Set(config.environments) : undefined;
  const apps = config.apps.length > 0 ? new Set(config.apps) : undefined;
  const ackWaitMs = config.timeoutMs + 30_000;
  let stopped = false;

  const post = async (n: Notification): Promise<string | undefined> => {
    const body = JSON.stringify(n);
    try {
      const res = await fetch(config.url, {
        method: "POST",
        body,
        // A redirect would send the body elsewhere than configured.
        redirect: "error",
        signal: AbortSignal.timeout(config.timeoutMs),
        headers: {
          "content-type": "application/json",
          "user-agent": "nats-deploy-coordinator",
          "deploy-event": n.event,
          "deploy-delivery": n.delivery,
          ...(secret ? { "deploy-signature": signature(secret, body) } : {}),
        },
      });
      await res.body?.cancel().catch(() => undefined);
      return res.ok ? undefined : `HTTP ${res.status}`;
    } catch (err) {
      return errorMessage(err);
    }
  };

  /** Acknowledges a notification the webhook took, or has it delivered again later, or gives it up. */
  const settle = (m: JsMsg, why: string | undefined, mlog: Record<string, unknown>, text: string | undefined): void => {
    const attempt = m.info.deliveryCount;
    if (why === undefined) {
      m.ack();
      deps.onOutcome?.("delivered");
      log.info({ ...mlog, attempt }, "notification delivered");
    } else if (attempt >= config.maxAttempts) {
      m.term(`notification given up: ${why}`.slice(0, 256));
      deps.onOutcome?.("given_up");
      log.error({ ...mlog, attempt, err: why, text }, `notification given up after ${attempt} attempts`);
    } else {
      const delay = Math.min(config.retryMs * 2 ** (attempt - 1), MAX_RETRY_MS);
      m.nak(delay);
      deps.onOutcome?.("retried");
      log.warn({ ...mlog, attempt, err: why, retryInMs: delay }, "notification not taken by the webhook; retrying");
    }
  };

  /** A write to deploy_freezes: a freeze or an unfreeze (a delete or purge, which nothing here makes, says nothing). */
  const handleFreeze = async (m: JsMsg): Promise<void> => {
    const key = m.subject.slice(kvKeySubject(FREEZES_BUCKET, "").length);
    const op = m.headers?.get("KV-Operation") ?? "";
    let n: FreezeNotification;
    try {
      if (op === "DEL" || op === "PURGE") throw new Error(`a ${op}`);
      n = isEdgeKey(key) ? freezeEdgeNotificationOf(parseFreezeEdge(m.data, key), m.seq) : freezeNotificationOf(parseFreezeRecord(m.data, key), m.seq);
    } catch (err) {
      m.term("not a freeze");
      if (op === "") log.warn({ key, seq: m.seq, err: errorMessage(err) }, "freeze notification dropped: the entry is unreadable");
      return;
    }
    const f = n.freeze;
    if (!wanted.has(n.event) || (environments && !environments.has(f.environment))) {
      m.ack();
      return;
    }
    settle(m, await post(n), { environment: f.environment, event: n.event, delivery: n.delivery }, n.text);
  };

  /** A write to deploy_policies: a policy set or cleared (a delete or purge, which nothing here makes, says nothing). */
  const handlePolicy = async (m: JsMsg): Promise<void> => {
    const key = m.subject.slice(kvKeySubject(POLICIES_BUCKET, "").length);
    const op = m.headers?.get("KV-Operation") ?? "";
    let n: PolicyNotification;
    try {
      if (op === "DEL" || op === "PURGE") throw new Error(`a ${op}`);
      n = policyNotificationOf(parsePolicyRecord(m.data, key), m.seq);
    } catch (err) {
      m.term("not a policy");
      if (op === "") log.warn({ key, seq: m.seq, err: errorMessage(err) }, "policy notification dropped: the entry is unreadable");
      return;
    }
    if (environments && !environments.has(n.policy.environment)) {
      m.ack();
      return;
    }
    settle(m, await post(n), { environment: n.policy.environment, event: n.event, delivery: n.delivery }, n.text);
  };

  const handle = async (m: JsMsg): Promise<void> => {
    const type = m.headers?.get(HDR_EVENT_TYPE) ?? "";
    // Events of other types (dispatches, timeouts) only pass by, told by
    // their header without being parsed (a dispatch names up to 1,000
    // targets). An event without the header (from an older coordinator) is
    // read to know. An unreadable one is skipped, as the fold skips it: never
    // retried (DESIGN.md invariant 7).
    if (type !== "" && !wanted.has(type)) {
      m.ack();
      return;
    }
    let event: DeployEvent;
    try {
      event = parseEvent(m.data);
    } catch (err) {
      if (type !== "") log.warn({ subject: m.subject, seq: m.seq, err: errorMessage(err) }, "notification dropped: its event is unreadable");
      m.term("unreadable event");
      return;
    }
    if (!wanted.has(event.type)) {
      m.ack();
      return;
    }
    const parsed = parseEventSubject(m.subject);
    let why: string | undefined;
    let n: Notification | undefined;
    try {
      const loaded = parsed ? await loadDeployment(ctx, parsed.deploymentId) : undefined;
      if (!loaded) {
        // Expired, or never readable: nothing to say it about.
        log.warn({ subject: m.subject, seq: m.seq }, "notification dropped: its deployment cannot be read");
        m.term("deployment not readable");
        return;
      }
      if ((environments && !environments.has(loaded.record.spec.environment)) || (apps && !apps.has(loaded.record.spec.app))) {
        m.ack();
        return;
      }
      n = notificationOf(event, m.seq, loaded.record);
      why = await post(n);
    } catch (err) {
      why = errorMessage(err);
    }
    settle(m, why, { deploymentId: parsed?.deploymentId, event: event.type, delivery: m.seq }, n?.text);
  };

  const pulling = new Set<{ stop: () => void }>();
  const pull = async (stream: string, filter: string, onMessage: (m: JsMsg) => Promise<void>): Promise<void> => {
    let failures = 0;
    while (!stopped) {
      try {
        await ensureConsumer(ctx, stream, filter, ackWaitMs);
        const consumer = await ctx.js.consumers.get(stream, NOTIFIER_CONSUMER);
        while (!stopped) {
          // Bounded pulls: a stream leader that moves is found at the next one.
          const batch = await consumer.fetch({ max_messages: 64, expires: 5000 });
          pulling.add(batch);
          if (stopped) batch.stop();
          const handling: Promise<void>[] = [];
          for await (const m of batch) handling.push(onMessage(m));
          pulling.delete(batch);
          await Promise.all(handling);
          failures = 0;
        }
      } catch (err) {
        if (stopped) break;
        failures++;
        log.warn({ err: errorMessage(err), failures, stream }, "pulling notifications failed; retrying");
        await sleep(Math.min(500 * 2 ** Math.min(failures, 4), 5000));
      }
    }
  };
  const loops = [pull(EVENTS_STREAM, `deploy.evt.*.${COORDINATOR_SOURCE}`, handle)];
  if (FREEZE_EVENTS.some((e) => wanted.has(e))) loops.push(pull(kvStreamName(FREEZES_BUCKET), kvKeySubject(FREEZES_BUCKET, ">"), handleFreeze));
  if (wanted.has("environment.policy_changed")) loops.push(pull(kvStreamName(POLICIES_BUCKET), kvKeySubject(POLICIES_BUCKET, ">"), handlePolicy));
  log.info({ url: new URL(config.url).origin, events: config.events, signed: secret !== undefined }, "notifications on");
  return {
    stop: async () => {
      stopped = true;
      for (const p of pulling) p.stop();
      await Promise.all(loops);
    },
  };
}

/** The notification types about freezes (notify.events), told from the deployments' events. */
export const FREEZE_EVENTS = ["environment.frozen", "environment.unfrozen"] as const;
