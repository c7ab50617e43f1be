// The agent process: starting → running → draining → stopped.
import {
  COMMANDS_STREAM,
  agentCommandQueue,
  agentConsumerName,
  consumerLeaderElectedSubject,
  parseAgentRecord,
  bindContext,
  connectNats,
  createLogger,
  errorMessage,
  readSeedFile,
  type AgentRelease,
  type JsContext,
  type Logger,
} from "../../shared/src/index.js";
import type { ConsumerMessages } from "@nats-io/jetstream";
import { CommandCursor, RECLAIM_ACK_WAIT_MS, RECLAIM_RESTORE_MS, ensureCommandConsumer, setAckWait, type CommandConsumerOptions } from "./commandConsumer.js";
import type { AgentConfig } from "./config.js";
import { handleCommand, interrupted, reportJournaled, storedResult, type HandlerDeps } from "./handleCommand.js";
import { Journal } from "./journal.js";
import { AGENT_PING_INTERVAL_MS, checkLinkOnMissedHeartbeats } from "./linkCheck.js";
import type { AgentMetrics } from "./metrics.js";
import type { MetricsServer } from "../../shared/src/metricsServer.js";
import { goBackAfterCrash, installsInProgress, settleInstall } from "./recovery.js";
import { Registration } from "./registration.js";
import { executableProblem } from "./runner.js";

export type AgentState = "starting" | "running" | "draining" | "stopped";

export interface Agent {
  readonly state: AgentState;
  readonly id: string;
  close(graceMs?: number): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** How long after writing its entry an agent waits before it moves its consumer to the queue (moveToQueue). */
const ENTRY_SEEN_MS = 2000;

/** Whether an entry's bytes say commandQueue (an unreadable one does not). */
function saysQueue(value: Uint8Array): boolean {
  try {
    return parseAgentRecord(value).commandQueue === true;
  } catch {
    return false;
  }
}

export interface StartAgentOptions {
  /**
   * For a process that hosts many agents on a few cores (the bench's scale
   * case: 2,500 in a process), never on a VM: resolves when this agent may
   * take its command past its journal (the journal, the race, the apply,
   * the result), with the function that frees the turn. A redelivery the
   * journal answers does not wait. Thousands of applies run at once on a
   * quarter of two cores each last about as long as the whole rollout, with
   * its stored heartbeats and in-progress acks (scripts/bench/stack.ts).
   */
  admit?: () => Promise<() => void>;
}

/**
 * The command pull. A pull lost at a consumer leader change is replaced at
 * the election (below) and one lost at a reconnect by the client itself; any
 * other loss shows as two missed idle heartbeats (60 s), whatever the
 * expiry. So the expiry is long: an idle agent sends one pull every 5
 * minutes instead of every 30 s. Measured at 10,000 idle agents (2.15,
 * sync_interval always, 50 connections): 30 s pulls cost nats-server 9.3 %
 * of a core, 120 s with a 15 s idle heartbeat 6.3 %, with a 30 s one 5.6 %,
 * 300 s with a 30 s one 4.8 %. A profile of the whole idle fleet (10,000
 * connections) has nats-server's time mostly in writes to the agents'
 * connections, one syscall each, and the consumers' idle heartbeats were
 * 667 of the ~1,100 messages a second it wrote: so the idle heartbeat is
 * 30 s, not 15 s. The same idle heartbeats tell the agent its link is
 * alive, so it sends no PINGs of its own while they come (linkCheck.ts).
 * `bind`: after missed idle heartbeats the client pulls again without first
 * asking for the consumer's info. A busy server delays heartbeats for every
 * agent at once, and those info requests (~340 a second at 10,000 agents as
 * a rollout began) queue in the JetStream API ahead of the rollout's own
 * calls. The cost: a consumer deleted under a running agent is not reported
 * by the client (it keeps pulling, after each two missed heartbeats); the
 * consumer is durable, this agent's own, and made again at its start.
 * `max_messages` 100 with the consumer's max_ack_pending 1: the server still
 * sends one command at a time, the next only after the last one's ack, on
 * the same pull; the client pulls again once 25 were delivered (its refill
 * threshold is 75 %). A pull of 1 costs one pull request per command: 1 of
 * the 7.3 messages per target at fan-out 100.
 */
const PULL = { max_messages: 100, expires: 300_000, idle_heartbeat: 30_000, bind: true } as const;

/**
 * Each agent's pull expires after a time of its own, from 300 to 360 s. A
 * fleet that pulled together (it started together, or reconnected after a
 * nats-server restart) renewed its pulls together every 300 s for ever: at
 * 10,000 idle agents the server went from 6-13 % of a core to 14-23 % each
 * time (docs/performance.md). With periods that differ by up to a minute
 * the renewals spread out over the minute after the first, over the whole
 * period after about five; longer, not shorter, so the fleet sends no more
 * pulls than before.
 */
export function pullOptions(random: () => number = Math.random): Omit<typeof PULL, "expires"> & { expires: number } {
  return { ...PULL, expires: PULL.expires + Math.floor(random() * PULL_EXPIRES_SPREAD_MS) };
}
export const PULL_EXPIRES_SPREAD_MS = 60_000;

export async function startAgent(config: AgentConfig, log: Logger = createLogger("agent", config.logLevel), options: StartAgentOptions = {}): Promise<Agent> {
  let state: AgentState = "starting";
  const alog = log.child({ agentId: config.id });
  if (config.devMode) {
    alog.warn("DEVELOPMENT MODE: unsigned commands are accepted and NATS credentials are not required. Never use it on a fleet (unset DEPLOY_DEV_MODE)");
  }
  const journal = await Journal.open(config.stateDir, {
    onWarning: (message) => alog.warn({ message }, "journal warning"),
    ...(config.journalKeepMs > 0 ? { keepMs: config.journalKeepMs } : {}),
    onCompacted: (o) =>
      "error" in o
        ? alog.warn({ err: errorMessage(o.error) }, o.refusesAppends ? "journal compaction failed after its rename: the journal takes no more records (restart the agent)" : "journal compaction failed; the journal is as it was")
        : alog.info({ dropped: o.dropped, kept: o.kept, bytes: o.bytes }, "journal compacted: dropped deployments finished longer ago than journalKeepMs"),
  });
  const cursor = await CommandCursor.open(config.stateDir, (message) => alog.warn({ message }, "command cursor"));
  // Whether this run's consumer filters the command queue (commandConsumer.ts);
  // one made again keeps what this run's entry says.
  let onQueue = false;
  let previous: Awaited<ReturnType<JsContext["agents"]["get"]>> = null;
  // Commands an earlier run was delivered and never acknowledged (reclaimed below).
  let held = 0;
  const consumerOptions = (): CommandConsumerOptions => ({ ackWaitMs: config.ackWaitMs, storage: config.commandConsumerStorage, startAt: cursor.startAt(), ...(onQueue ? {} : { wildcard: true }) });
  if (config.trustedSigners.length > 0) alog.info({ trustedSigners: config.trustedSigners }, "only signed commands are accepted");
  else alog.warn("command signatures are NOT checked (development mode): anyone who can publish deploy.cmd.> can run code here");
  // Told now rather than at the first deployment; not fatal: the executable may be installed later.
  for (const [app, a] of Object.entries(config.apps)) {
    if (a.deploy === undefined) continue;
    void executableProblem(a.deploy, !a.runAs).then((problem) => {
      if (problem) alog.warn({ app, deploy: a.deploy, problem }, "this app's deploy executable cannot start: its deployments without a bundle fail until it is fixed");
    });
  }
  const nc = await connectNats({
    url: config.nats.url,
    name: `deploy-agent-${config.id}`,
    ...(config.nats.nkeySeedFile ? { nkeySeed: readSeedFile(config.nats.nkeySeedFile) } : {}),
    ...(config.nats.inboxPrefix ? { inboxPrefix: config.nats.inboxPrefix } : {}),
    ...(config.nats.tlsCaFile ? { tlsCaFile: config.nats.tlsCaFile } : {}),
    pingIntervalMs: AGENT_PING_INTERVAL_MS,
  });
  const kill = new AbortController();
  const killWayBack = new AbortController();
  const closing = new AbortController();
  try {
    // The coordinator creates streams and buckets; wait for them rather than
    // create them (an agent may start first on a fresh system).
    let ctx;
    for (let attempt = 0; ; attempt++) {
      try {
        ctx = await bindContext(nc, { apiTimeoutMs: config.nats.apiTimeoutMs, directGets: true });
        previous = await ctx.agents.get(config.id).catch(() => null);
        // An entry without commandQueue (an earlier version's): coordinators
        // may still publish on deployments' subjects, so a consumer made now
        // takes the wildcard, and moves to the queue after this start's entry
        // (below). None: nothing can target this agent before its entry.
        const made = await ensureCommandConsumer(ctx.jsm, config.id, { ...consumerOptions(), wildcard: previous?.operation === "PUT" && !saysQueue(previous.value) });
        onQueue = made.queue;
        held = made.ackPending ?? 0;
        if (made.created) alog.info({ storage: made.storage, startAt: consumerOptions().startAt, filter: made.queue ? "queue" : "wildcard" }, "made the command consumer");
        else if (made.storage !== config.commandConsumerStorage) {
          alog.info({ storage: made.storage, commandConsumerStorage: config.commandConsumerStorage }, "the command consumer keeps its storage until it is deleted (docs/production.md)");
        }
        break;
      } catch (err) {
        if (attempt % 10 === 0) {
          const message = errorMessage(err);
          // The server lets an nkey act only as the agent id it was generated for.
          if (/permissions violation/i.test(message)) alog.error({ err: message }, "NATS refuses this agent's requests: is its nkey the one gen-credentials made for this agent id (DEPLOY_AGENT_ID)? waiting");
          else alog.warn({ err: message }, "JetStream layout not ready (is a coordinator running?); waiting");
        }
        await sleep(1000);
      }
    }
    const jsm = ctx.jsm;
    // A consumer on the wildcard goes on the queue once every coordinator
    // has had a moment to see this start's entry (they follow the bucket:
    // milliseconds), if nothing is left for the wildcard by then; a command
    // published on a deployment's subject before that is pending, and keeps
    // the wildcard until a later start.
    const moveToQueue = async (): Promise<void> => {
      await sleep(ENTRY_SEEN_MS);
      const made = await ensureCommandConsumer(jsm, config.id, { ...consumerOptions(), move: true }).catch((err: unknown) => {
        alog.warn({ err: errorMessage(err) }, "could not move the command consumer to this agent's command queue; it keeps its wildcard filter");
        return undefined;
      });
      onQueue = made?.queue === true;
      if (made?.movedToQueue) alog.info({ queue: agentCommandQueue(config.id) }, "moved the command consumer to this agent's command queue");
      if (made?.keptWildcard) {
        alog.info({ ...made.keptWildcard, queue: agentCommandQueue(config.id) }, "the command consumer still has commands on the older subjects: it keeps its wildcard filter until a start that finds none");
      }
    };
    const registration = new Registration(ctx, config, config.heartbeatIntervalMs, alog, nc);
    // Written with the entry at the start below, before the first pull:
    // coordinators publish this agent's commands on its queue from then on,
    // which a consumer still on the wildcard takes too.
    registration.record.commandQueue = true;
    // Metrics only when they are served: prom-client and its default
    // collectors (an event-loop-delay histogram, GC observers) cost an idle
    // agent ~10 MB of RSS. Bench footprint, with apply.js loaded lazily
    // (handleCommand.ts): idle agent RSS 62-67 MB before, 53-56 MB after.
    let metrics: AgentMetrics | undefined;
    let metricsServer: MetricsServer | undefined;
    if (config.metricsListen) {
      const [{ AgentMetrics }, { startMetricsServer }] = await Promise.all([import("./metrics.js"), import("../../shared/src/metricsServer.js")]);
      const m = new AgentMetrics();
      metrics = m;
      registration.onBeat = () => {
        m.lastHeartbeat = Date.now();
      };
      metricsServer = await startMetricsServer(config.metricsListen, m.registry, alog);
    }
    const deps: HandlerDeps = { ctx, config, journal, registration, metrics, log: alog, kill: kill.signal, killWayBack: killWayBack.signal, closing: closing.signal, ...(options.admit ? { admit: options.admit } : {}) };

    // Recovery: an apply that was started and never finished was cut short by
    // a crash. It is reported FAILED and never run again, unless its result
    // is in the stream (a crash between the result and its journal record);
    // anything finished but not yet acknowledged by JetStream is reported now.
    // What this VM runs survives restarts in its registry entry.
    let currentReleases: Record<string, string> = {};
    let releases: Record<string, AgentRelease> = {};
    try {
      if (previous?.operation === "PUT") ({ currentReleases, releases = {} } = parseAgentRecord(previous.value));
    } catch {
      // an unreadable old entry is simply replaced
    }
    // An install killed after it began to stop the release in place goes
    // back to that release first (recovery.ts), as a failed install does.
    const installs = await installsInProgress(config, alog);
    for (const e of journal.entries()) {
      if (e.status === "started") {
        const stored = await storedResult(deps, e.deploymentId);
        if (stored) {
          alog.warn({ deploymentId: e.deploymentId, outcome: stored.outcome }, "the agent restarted after its result was stored: journaling that result");
          await journal.markFinished(e.deploymentId, stored);
          await journal.markReported(e.deploymentId);
        } else {
          const install = installs.get(e.deploymentId);
          installs.delete(e.deploymentId);
          const back = install ? await goBackAfterCrash(config, install, killWayBack.signal, alog) : undefined;
          alog.warn({ deploymentId: e.deploymentId }, "apply was interrupted by an agent restart; reporting it failed");
          await journal.markFinished(e.deploymentId, interrupted("the agent restarted during the apply", back));
        }
      }
      // Gone from the journal: a compaction during this loop dropped it, which it does only to reported entries.
      if (journal.get(e.deploymentId)?.reported === false) await reportJournaled(deps, e.deploymentId);
    }
    for (const install of installs.values()) await settleInstall(config, install, killWayBack.signal, alog);
    // The entry is written with a new release at the heartbeat after the
    // apply (handleCommand.ts): an agent stopped before it finds its
    // release in the journal, whose record of each apply names it. The
    // journal is in the order the applies ran, so its last success of an
    // app is what the app runs.
    for (const [app, r] of journal.currentReleases()) {
      if (currentReleases[app] === r.release && releases[app]?.deploymentId === r.deploymentId) continue;
      alog.info({ app, release: r.release, deploymentId: r.deploymentId, entry: currentReleases[app] }, "this agent's entry is behind its journal (stopped before the heartbeat that writes a new release): taking the journal's release");
      currentReleases = { ...currentReleases, [app]: r.release };
      releases = { ...releases, [app]: r };
    }
    await registration.start(currentReleases, releases);
    if (!onQueue) await moveToQueue();

    const consumer = await ctx.js.consumers.get(COMMANDS_STREAM, agentConsumerName(config.id));
    // A pull lives on the consumer's leader, which forgets it when
    // leadership moves (a cluster losing a node, a step-down): the client
    // notices only when two idle heartbeats are missed, at the pull's expiry,
    // and every command sent meanwhile waits, past its delivery timeout (the
    // chaos suite found it: cluster-stream-leader-kill, seed 1). The agent
    // listens for its consumer's leader elections and pulls again at once.
    // With that, pulls can be long (PULL).
    // The pull's idle heartbeats are also how the agent finds a dead link (linkCheck.ts).
    // A pull to a consumer that is not there is answered "no responders"
    // (503), and one waiting on a consumer that is deleted "consumer
    // deleted" (409); with `bind` the client goes on pulling in vain. After a
    // restart of a single nats-server that is every consumer kept in memory
    // (commandConsumer.ts): the client's pull after its reconnect finds it
    // gone, and the agent makes it again and pulls again.
    const watchConsumer = async (status: AsyncIterable<{ type: string }>): Promise<void> => {
      for await (const s of status) {
        if ((s.type !== "no_responders" && s.type !== "consumer_deleted") || stopping || remake) continue;
        alog.warn({ reason: s.type }, "the command consumer is gone: making it again");
        remake = true;
        repull = true;
        messages.stop();
      }
    };
    const pullOpts = pullOptions();
    const pull = async (): Promise<ConsumerMessages> => {
      const m = await consumer.consume(pullOpts);
      checkLinkOnMissedHeartbeats(nc, m.status(), alog, { onCheck: (outcome) => metrics?.linkChecks.inc({ outcome }) }).catch((err: unknown) => alog.warn({ err: errorMessage(err) }, "stopped checking the NATS connection"));
      watchConsumer(m.status()).catch((err: unknown) => alog.warn({ err: errorMessage(err) }, "stopped watching the command consumer"));
      return m;
    };
    let repull = false;
    let remake = false;
    let stopping = false;
    // The command the last run held comes again now, not ack_wait after
    // its delivery (commandConsumer.ts RECLAIM_ACK_WAIT_MS); the consumer's
    // own ack_wait is back before the first command this run handles.
    let restoreAckWait: (() => Promise<void>) | undefined;
    if (held > 0) {
      try {
        await setAckWait(jsm, config.id, RECLAIM_ACK_WAIT_MS);
        alog.info({ ackPending: held }, "the last run of this agent ended holding a command it had not acknowledged: asking for it again now");
        let restoring: Promise<void> | undefined;
        const timer = setTimeout(() => void restoreAckWait?.(), RECLAIM_RESTORE_MS);
        timer.unref();
        restoreAckWait = () =>
          (restoring ??= (async () => {
            clearTimeout(timer);
            try {
              await setAckWait(jsm, config.id, config.ackWaitMs);
              restoreAckWait = undefined;
            } catch (err) {
              // Tried again before the next command; the next start puts it back too.
              alog.warn({ err: errorMessage(err), ackWaitMs: config.ackWaitMs }, "could not put the command consumer's ack_wait back");
              restoring = undefined;
            }
          })());
      } catch (err) {
        alog.warn({ err: errorMessage(err) }, "could not ask for the command the last run held: it comes again ack_wait after its delivery");
      }
    }
    let messages = await pull();
    const elections = nc.subscribe(consumerLeaderElectedSubject(COMMANDS_STREAM, agentConsumerName(config.id)), {
      callback: (err) => {
        if (err) {
          // Not allowed to subscribe (permissions from before this
          // subscription): pulls still recover, at their expiry.
          alog.warn({ err: errorMessage(err) }, "cannot follow the command consumer's leader elections");
          return;
        }
        if (stopping) return;
        alog.info("command consumer has a new leader: pulling again");
        repull = true;
        messages.stop();
      },
    });
    let inFlight: Promise<void> = Promise.resolve();
    const loop = (async () => {
      for (;;) {
        for await (const m of messages) {
          if (restoreAckWait) await restoreAckWait();
          inFlight = handleCommand(deps, m).then(() => cursor.handled(m.time), (err: unknown) => {
            // The journal decides what a redelivery does; an error here (NATS
            // down while reporting) leaves the message unacked for redelivery.
            alog.error({ subject: m.subject, err: errorMessage(err) }, "command handling failed");
            if (!closing.signal.aborted) m.nak(2000);
          });
          await inFlight;
        }
        if (!repull || stopping) return;
        repull = false;
        for (let attempt = 0; ; attempt++) {
          try {
            if (remake) {
              const made = await ensureCommandConsumer(ctx.jsm, config.id, consumerOptions());
              if (made.created) metrics?.consumersMade.inc();
              alog.info({ created: made.created, storage: made.storage, startAt: consumerOptions().startAt }, made.created ? "made the command consumer again" : "the command consumer is there again");
              remake = false;
            }
            messages = await pull();
            break;
          } catch (err) {
            if (stopping) return;
            alog.warn({ attempt, err: errorMessage(err) }, "could not pull commands again; retrying");
            await sleep(Math.min(250 * 2 ** attempt, 5000));
          }
        }
        if (stopping) messages.stop();
      }
    })();
    state = "running";
    alog.info({ environment: config.environment, apps: Object.keys(config.apps) }, "agent running");
    const asRoot = Object.entries(config.apps).filter(([, a]) => !a.user).map(([app]) => app);
    if (process.getuid?.() === 0 && asRoot.length > 0) {
      alog.warn({ apps: asRoot }, "this agent runs as root and these apps name no account (apps.<app>.user): their hooks and deploy executable run as root");
    }

    let closed: Promise<void> | undefined;
    return {
      get state() {
        return state;
      },
      id: config.id,
      close(graceMs = config.shutdownGraceMs) {
        closed ??= (async () => {
          state = "draining";
          stopping = true;
          elections.unsubscribe();
          messages.stop();
          let wayBack: NodeJS.Timeout | undefined;
          const timer = setTimeout(() => {
            alog.warn({ graceMs }, "apply still running after the grace period: killing it");
            kill.abort();
            // How long a killed install may still take to go back to the
            // previous release (its start hook, after a stop hook already
            // ran): without it, an agent stopped mid-install (an upgrade, a
            // reboot) left the app switched back but stopped. The systemd
            // unit's TimeoutStopSec (45 s) covers the grace (30 s) and this
            // (10 s by default).
            wayBack = setTimeout(() => killWayBack.abort(), config.shutdownWayBackMs);
          }, graceMs);
          await inFlight;
          clearTimeout(timer);
          clearTimeout(wayBack);
          await loop.catch(() => undefined);
          closing.abort();
          await registration.flush(2000);
          registration.stop();
          await metricsServer?.close();
          await nc.drain().catch(() => nc.close());
          await Promise.all([journal.close(), cursor.settled()]);
          state = "stopped";
          alog.info("agent stopped");
        })();
        return closed;
      },
    };
  } catch (err) {
    await nc.close();
    await journal.close();
    throw err;
  }
}
