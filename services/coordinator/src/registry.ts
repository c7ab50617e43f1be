// The coordinator's view of deploy_agents: a cache rebuilt from the bucket at
// start and kept current by a watch, so resolving targets and checking
// heartbeats costs no round trip. An agent's last heartbeat is the later of
// the server's timestamp of its entry's last write (an agent stores its
// heartbeats from a won race until its result: the start lease's evidence)
// and the time this coordinator last heard its idle heartbeat (a core NATS
// publish on deploy.hb.<id>: listenForHeartbeats), both on the servers'
// clock (serverClock.ts), never the agent's.
//
// With agent bindings (agents.bindingsFile, docs/security.md), an entry that
// claims an environment or an app its binding does not give is refused: it is
// not in the view at all, so it is never a target, never converged and not
// listed; the coordinator logs it once per claim and counts it
// (deploy_agents_refused). NATS permissions already keep an agent to its own
// key, so the id under which an entry is written is the agent's own.
import type { KV, KvEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  agentReleaseOf,
  bindingProblem,
  errorMessage,
  HEARTBEAT_REQUEST_SUBJECT,
  HEARTBEAT_SUBJECTS,
  parseAgentRecord,
  targetIds,
  type AgentBindings,
  type AgentRecord,
  type AgentRelease,
  type CordonRecord,
  type DeploymentRecord,
  type Logger,
  UnavailableError,
} from "../../shared/src/index.js";
import { followBucket, type BucketFollower } from "./followBucket.js";
import { ServerClock } from "./serverClock.js";

export interface AgentView {
  record: AgentRecord;
  heartbeatAt: number;
  revision: number;
}

export interface RegistryOptions {
  /** Set: every entry must keep to its agent's binding. Unset (development mode without a bindings file): every entry is taken. */
  bindings?: AgentBindings;
  /** Called with each entry refused for its binding (metrics). */
  onRefused?: (agentId: string) => void;
  /** Called with each idle heartbeat heard after a silence longer than agentLiveMs (metrics). */
  onHeardAfterSilence?: (agentId: string, silentMs: number) => void;
  /** The servers' clock (liveness compares it with the server's time of a heartbeat); a fresh one, reading the local clock until fed, when absent. */
  clock?: ServerClock;
  /** Agents taken out of new deployments (cordons.ts); absent: none is. */
  cordons?: { get(agentId: string): CordonRecord | undefined };
}

export class Registry {
  readonly #agents = new Map<string, AgentView>();
  /**
   * The ids in #agents by environment, then app: what a create, convergence
   * and ListAgents with both ask for (list), without a look at every
   * agent. A look at them all was made three times per deployment (the
   * create's targets, convergence when its release changes and when its
   * lock is given back), linear in the fleet: 116 µs a call at 10,000
   * agents serving 100 apps, against 6 µs from the index.
   */
  readonly #byPair = new Map<string, Map<string, Set<string>>>();
  /** Entries refused for their binding: agent id → why, and the entry (looked at again when the bindings change). */
  readonly #refused = new Map<string, { reason: string; view: AgentView }>();
  #bindings: AgentBindings | undefined;
  /**
   * Releases this coordinator folded from its deployments' results, ahead of
   * the agents' own entries (noteRelease): agent id → app → the release and
   * until when (Date.now()) it is kept.
   */
  readonly #noted = new Map<string, Map<string, { release: AgentRelease; until: number }>>();
  /** Deployments whose succeeded targets were noted here (noteSucceeded), the last NOTED_DEPLOYMENTS of them. */
  readonly #notedDeployments = new Set<string>();
  #follower: BucketFollower | undefined;
  /**
   * Agents this coordinator has heard since it started or last reconnected:
   * only for them is a silence before a heartbeat the agent's own (an entry
   * loaded at start is as old as the agent's start, and heartbeats sent
   * while this coordinator was cut off were lost on its side).
   */
  readonly #heardHere = new Set<string>();
  /** Agents heard again after a silence longer than agentLiveMs since the last report, which is made at most once a minute. */
  #silences = { reportedAt: 0, count: 0 };
  /** When this process last ran its tick (performance.now()): a late one means it was stalled itself (ownStall). */
  #tickAt = performance.now();
  #ticker: NodeJS.Timeout | undefined;
  /**
   * The last span, on the servers' clock, in which this coordinator could
   * not hear heartbeats: from its cut until its request's answers were in
   * (`to` unset while still cut off). Silence inside it is not the agents'.
   */
  #deaf: { from: number; to: number | undefined } | undefined;
  /** Resolved when this coordinator is back on NATS (asked()); replaced at each cut. */
  #back = backSignal();
  /** Called with every agent entry read or written (each heartbeat): convergence looks at it. */
  onChange: (view: AgentView) => void = () => undefined;

  constructor(
    private readonly kv: KV,
    private readonly agentLiveMs: number,
    private readonly log: Logger,
    private readonly opts: RegistryOptions = {},
  ) {
    this.#bindings = opts.bindings;
    this.clock = opts.clock ?? new ServerClock();
  }

  /** The servers' clock: heartbeat times are the server's, so liveness is judged on it. */
  readonly clock: ServerClock;

  async start(): Promise<void> {
    // A stall of this process (a VM frozen, a SIGSTOP, a long GC) with its
    // connection kept delays every heartbeat it handles after: those
    // silences are its own, not the agents'. Seen either by the tick coming
    // late or by a heartbeat handled before the late tick ran (after a
    // stall, I/O callbacks may run before the timers').
    this.#tickAt = performance.now();
    this.#ticker = setInterval(() => {
      this.#ownStall();
      this.#tickAt = performance.now();
    }, TICK_MS);
    this.#ticker.unref();
    this.#follower = await followBucket(this.kv, (e) => this.#apply(e));
  }

  #apply(e: KvEntry): void {
    const prev = this.#agents.get(e.key);
    if (prev && prev.revision >= e.revision) return;
    const refused = this.#refused.get(e.key);
    if (refused && refused.view.revision >= e.revision) return;
    if (e.operation !== "PUT") {
      this.#remove(e.key);
      this.#refused.delete(e.key);
      this.#heardHere.delete(e.key);
      return;
    }
    let view: AgentView;
    try {
      const record = this.#withNoted(parseAgentRecord(e.value));
      if (record.id !== e.key) throw new Error(`record id ${record.id} under key ${e.key}`);
      // An idle heartbeat heard after the write is later than the write.
      const heard = prev?.heartbeatAt ?? refused?.view.heartbeatAt ?? 0;
      view = { record, heartbeatAt: Math.max(e.created.getTime(), heard), revision: e.revision };
    } catch (err) {
      this.log.warn({ key: e.key, err }, "ignoring invalid agent record");
      return;
    }
    if (this.#admit(view, true)) this.#changed(view);
  }

  /** Puts `view` in the view, or among the refused when its binding does not allow it; true when it is in the view. */
  #admit(view: AgentView, written: boolean): boolean {
    const { record } = view;
    const refused = this.#refused.get(record.id);
    const problem = this.problemOf(record);
    if (problem !== undefined) {
      // Out of the view at once: a target it had goes silent and times out.
      this.#remove(record.id);
      this.#refused.set(record.id, { reason: problem, view });
      if (refused?.reason !== problem) {
        this.log.warn({ agentId: record.id, environment: record.environment, apps: record.apps, reason: problem }, "agent entry refused: it claims more than its binding");
      }
      if (written) this.opts.onRefused?.(record.id);
      return false;
    }
    if (refused) this.log.info({ agentId: record.id }, "agent entry within its binding again");
    this.#refused.delete(record.id);
    this.#put(view);
    return true;
  }

  #put(view: AgentView): void {
    const { id, environment, apps } = view.record;
    // What it served before is forgotten first: its environment or apps may have changed.
    const prev = this.#agents.get(id)?.record;
    if (prev) this.#unindex(prev);
    this.#agents.set(id, view);
    let byApp = this.#byPair.get(environment);
    if (!byApp) this.#byPair.set(environment, (byApp = new Map<string, Set<string>>()));
    for (const app of apps) {
      let ids = byApp.get(app);
      if (!ids) byApp.set(app, (ids = new Set<string>()));
      ids.add(id);
    }
  }

  #remove(id: string): void {
    const prev = this.#agents.get(id);
    if (!prev) return;
    this.#agents.delete(id);
    this.#unindex(prev.record);
  }

  #unindex(record: Pick<AgentRecord, "id" | "environment" | "apps">): void {
    const byApp = this.#byPair.get(record.environment);
    if (!byApp) return;
    for (const app of record.apps) {
      const ids = byApp.get(app);
      ids?.delete(record.id);
      if (ids?.size === 0) byApp.delete(app);
    }
    if (byApp.size === 0) this.#byPair.delete(record.environment);
  }

  #changed(view: AgentView): void {
    try {
      this.onChange(view);
    } catch (err) {
      this.log.warn({ agentId: view.record.id, err }, "agent change not handled");
    }
  }

  /**
   * New bindings (the coordinator re-read agents.bindingsFile on SIGHUP):
   * every entry, taken or refused, is judged again at once.
   */
  setBindings(bindings: AgentBindings): void {
    this.#bindings = bindings;
    for (const view of [...this.#agents.values(), ...[...this.#refused.values()].map((r) => r.view)]) {
      const wasIn = this.#agents.has(view.record.id);
      if (this.#admit(view, false) && !wasIn) this.#changed(view);
    }
  }

  /**
   * Every target that SUCCEEDED in `rec` runs its release now: noted
   * (noteRelease). Called by the coordinator that folds a deployment,
   * before it stores the finished event (rollout/reconciler.ts), and by
   * every other coordinator when the deployment becomes the desired release
   * (coordinator.ts), so that all of them show its agents on its release
   * before the agents' entries say so.
   */
  noteSucceeded(rec: DeploymentRecord): void {
    const { spec } = rec;
    const release = agentReleaseOf(spec.id, spec.changeset);
    for (const agentId of targetIds(rec)) if (rec.targets[agentId]!.state === "SUCCEEDED") this.noteRelease(agentId, spec.app, release);
    this.#notedDeployments.delete(spec.id);
    this.#notedDeployments.add(spec.id);
    if (this.#notedDeployments.size > NOTED_DEPLOYMENTS) this.#notedDeployments.delete(this.#notedDeployments.values().next().value!);
  }

  /** Whether noteSucceeded ran here for deployment `id` (lately). */
  hasNoted(id: string): boolean {
    return this.#notedDeployments.has(id);
  }

  /**
   * The agent succeeded in deployment `release.deploymentId` of `app`, as
   * folded by a coordinator: shown as its release of `app` (ListAgents,
   * convergence) at once. The agent writes its entry with it at its next
   * heartbeat (agent/src/handleCommand.ts), so a deployment that is
   * terminal may be ahead of the entry this coordinator has seen: until an
   * entry shows this release, or a later one, and for at most agentLiveMs
   * (more than an agent's heartbeat interval), the noted release stands
   * over an entry written before it.
   */
  noteRelease(agentId: string, app: string, release: AgentRelease): void {
    const view = this.#agents.get(agentId);
    const shown = view?.record.releases?.[app];
    // Shown already, or a later release is.
    if (!view || (shown && shown.deploymentId >= release.deploymentId)) return;
    const apps = this.#noted.get(agentId) ?? new Map<string, { release: AgentRelease; until: number }>();
    this.#noted.set(agentId, apps);
    apps.set(app, { release, until: Date.now() + this.agentLiveMs });
    view.record = this.#withNoted(view.record);
  }

  /** `record` with the releases noted for its agent that it does not show yet; notes it shows, and old ones, are dropped. */
  #withNoted(record: AgentRecord): AgentRecord {
    const apps = this.#noted.get(record.id);
    if (!apps) return record;
    const now = Date.now();
    let out = record;
    for (const [app, n] of apps) {
      const has = record.releases?.[app];
      // Caught up (this release or a later one), or noted long enough ago
      // that the entry, whatever it says, is the agent's word.
      if ((has && has.deploymentId >= n.release.deploymentId) || (!has && record.currentReleases[app] === n.release.release) || now > n.until) {
        apps.delete(app);
        continue;
      }
      out = { ...out, currentReleases: { ...out.currentReleases, [app]: n.release.release }, releases: { ...out.releases, [app]: n.release } };
    }
    if (apps.size === 0) this.#noted.delete(record.id);
    return out;
  }

  /** Why `record` is refused for its binding, or undefined (always, without bindings). */
  problemOf(record: Pick<AgentRecord, "id" | "environment" | "apps">): string | undefined {
    return this.#bindings ? bindingProblem(this.#bindings, record.id, record.environment, record.apps) : undefined;
  }

  /** Agent entries refused now for their binding. */
  get refusedCount(): number {
    return this.#refused.size;
  }

  /**
   * An idle heartbeat of `id` heard now. False when this coordinator has no
   * entry for it, taken or refused: the agent is to write it again.
   */
  heard(id: string): boolean {
    const now = this.clock.now();
    const view = this.#agents.get(id);
    if (view) {
      this.#ownStall();
      const silentMs = now - view.heartbeatAt;
      if (silentMs > this.agentLiveMs && this.#heardHere.has(id)) this.#heardAfterSilence(id, silentMs);
      this.#heardHere.add(id);
      view.heartbeatAt = Math.max(view.heartbeatAt, now);
      this.#changed(view);
      return true;
    }
    const refused = this.#refused.get(id);
    if (!refused) return false;
    // Kept current though refused: bindings widened later (SIGHUP) take a
    // live agent at once, not one last heard when it wrote its entry.
    refused.view.heartbeatAt = Math.max(refused.view.heartbeatAt, now);
    return true;
  }

  /**
   * An idle agent heard again after it was shown offline: it flaps. Either
   * its idle heartbeats are further apart than agentLiveMs (a fleet's idle
   * interval raised without the coordinators' agentLiveMs: every idle agent
   * flaps at every heartbeat, and deployments skip them as offline) or its
   * link to NATS was down. Counted (metrics) and logged at most once a
   * minute with the count since the last report.
   */
  #heardAfterSilence(id: string, silentMs: number): void {
    this.opts.onHeardAfterSilence?.(id, silentMs);
    this.#silences.count++;
    const now = Date.now();
    if (now - this.#silences.reportedAt < SILENCE_REPORT_MS) return;
    this.log.warn(
      { agents: this.#silences.count, agentId: id, silentS: Math.round(silentMs / 1000), agentLiveS: this.agentLiveMs / 1000 },
      "agents heard again after a silence longer than agentLiveMs: shown offline meanwhile, and skipped by deployments created then. If their idle heartbeat interval (DEPLOY_AGENT_IDLE_HEARTBEAT_MS, else DEPLOY_AGENT_HEARTBEAT_MS) is over half of agentLiveMs, raise agentLiveMs (docs/production.md, sizing heartbeats); else their link to NATS was down",
    );
    this.#silences = { reportedAt: now, count: 0 };
  }

  /** This coordinator's NATS connection is down: heartbeats sent meanwhile are lost on its side. */
  cutOff(): void {
    if (this.#isCutOff) return;
    this.#back = backSignal();
    this.#deaf = { from: this.clock.now(), to: undefined };
  }

  /** Back on NATS, and every agent was just asked for a heartbeat: their answers arrive within HEARTBEAT_ANSWER_WAIT_MS. */
  asked(): void {
    const to = this.clock.now() + HEARTBEAT_ANSWER_WAIT_MS;
    // A reconnect not seen cut off first (no disconnect status) discounts no silence: an empty span, only the wait.
    this.#deaf = { from: this.#isCutOff ? this.#deaf!.from : to, to };
    this.#back.resolve();
  }

  get #isCutOff(): boolean {
    return this.#deaf !== undefined && this.#deaf.to === undefined;
  }

  /**
   * The agent's last heartbeat as evidence of its silence: moved later by
   * the part of this coordinator's last deaf span that came after it.
   * NATS down longer than agentLiveMs while an agent applied timed its
   * target out the moment the coordinator was back, though the agent had
   * gone on applying and its result came seconds later
   * (test/liveness.test.ts). Only ever later than the heartbeat, so the
   * coordinator judges a silence no sooner than before, and an agent's
   * start lease (which assumes no coordinator judges it sooner) holds.
   */
  #heardAt(view: AgentView): number {
    const hb = view.heartbeatAt;
    const d = this.#deaf;
    if (!d || (d.to !== undefined && hb >= d.to)) return hb;
    const end = Math.min(d.to ?? Number.POSITIVE_INFINITY, this.clock.now());
    return hb + Math.max(0, end - Math.max(hb, d.from));
  }

  /**
   * Resolves once this coordinator's liveness view can be trusted to pick
   * targets: at once, except in the HEARTBEAT_ANSWER_WAIT_MS after a
   * reconnect (the agents asked are answering). NATS down longer than
   * agentLiveMs leaves every agent's last heartbeat older than the limit,
   * and a deployment created the moment the coordinator was back skipped
   * the live agents not heard yet, or was refused with "no live agent"
   * (test/liveness.test.ts). While cut off, it waits for the reconnect,
   * for at most `cutOffWaitMs` (a create: CUT_OFF_WAIT_MS, so one call
   * spanning a short outage is answered with its deployment,
   * test/deployctl-retry.test.ts), then UNAVAILABLE: retry (a create with
   * the same request id).
   */
  async hearing(cutOffWaitMs = CUT_OFF_WAIT_MS): Promise<void> {
    const giveUpAt = performance.now() + cutOffWaitMs;
    for (;;) {
      const cut = this.#isCutOff;
      const left = giveUpAt - performance.now();
      if (cut && left <= 0) throw new UnavailableError("this coordinator is cut off from NATS and cannot tell which agents are live; retry (a create with the same request_id)");
      const wait = cut ? left : (this.#deaf?.to ?? 0) - this.clock.now();
      if (wait <= 0) return;
      let timer: NodeJS.Timeout | undefined;
      const elapsed = new Promise((r) => (timer = setTimeout(r, wait)));
      // Only while cut off: once back, #back is resolved and would spin this loop.
      await (cut ? Promise.race([this.#back.promise, elapsed]) : elapsed);
      clearTimeout(timer);
    }
  }

  /** After this coordinator reconnects to NATS: the silences it sees next are its own. */
  forgetHeard(): void {
    this.#heardHere.clear();
  }

  /** This process has not run its tick for over STALL_MS: it was stalled, and the silences it sees next are its own. */
  #ownStall(): void {
    if (this.#ticker === undefined || performance.now() - this.#tickAt <= TICK_MS + STALL_MS) return;
    this.forgetHeard();
    // Once per stall: the next tick starts from now.
    this.#tickAt = performance.now();
  }

  get(id: string): AgentView | undefined {
    return this.#agents.get(id);
  }

  /** The agent's cordon while it is cordoned: it takes no new deployment (resolveRequest.ts, convergence). */
  cordonOf(id: string): CordonRecord | undefined {
    return this.opts.cordons?.get(id);
  }

  isLive(view: AgentView, now = this.clock.now()): boolean {
    return now - this.#heardAt(view) <= this.agentLiveMs;
  }

  /** Server time from which the agent's silence counts (its last heartbeat, after this coordinator's own deafness: heardAt), or undefined for an unknown agent. */
  lastHeartbeat(id: string): number | undefined {
    const view = this.#agents.get(id);
    return view && this.#heardAt(view);
  }

  /** The agents in the view, by id; those of an environment, of an app, or both. */
  list(filter: { app?: string; environment?: string } = {}): AgentView[] {
    const byId = (a: AgentView, b: AgentView): number => a.record.id.localeCompare(b.record.id);
    if (filter.environment && filter.app) {
      const ids = this.#byPair.get(filter.environment)?.get(filter.app);
      return ids ? [...ids].map((id) => this.#agents.get(id)!).sort(byId) : [];
    }
    return [...this.#agents.values()]
      .filter((a) => (!filter.environment || a.record.environment === filter.environment) && (!filter.app || a.record.apps.includes(filter.app)))
      .sort(byId);
  }

  async close(): Promise<void> {
    clearInterval(this.#ticker);
    await this.#follower?.stop();
  }
}

/** At most one report a minute of agents heard again after a silence (Registry.heardAfterSilence). */
const SILENCE_REPORT_MS = 60_000;
/** The registry's tick, and how late it may run before this process counts as having stalled (Registry.ownStall): the silences a stall adds are its own. */
const TICK_MS = 500;
/** Deployments remembered as noted (hasNoted): more than are made between two desired releases. */
const NOTED_DEPLOYMENTS = 1000;
const STALL_MS = 1000;

/** Agent ids per register request: 1,000 ids of at most 64 characters stay well under the default max_payload (1 MiB). */
const REGISTER_CHUNK = 1000;

/**
 * How long a create waits for a coordinator cut off from NATS to be back
 * (Registry.hearing): what its first round trip (5 s) and the follow after
 * it (FOLLOW_MS, createDeployment.ts) took before it waited.
 */
const CUT_OFF_WAIT_MS = 10_000;

function backSignal(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * How long after asking every agent for a heartbeat a starting coordinator
 * waits before it judges liveness: agents answer within a second, spread
 * (agent/src/registration.ts), and 500 ms more covers their delivery.
 */
export const HEARTBEAT_ANSWER_WAIT_MS = 1500;

/**
 * Hears every agent's idle heartbeat (deploy.hb.<id>: the subject names the
 * agent, and NATS permissions keep an agent to its own) and, once listening,
 * asks every agent for one, so that liveness is known a second after this
 * coordinator starts rather than a heartbeat interval: `answered` settles
 * HEARTBEAT_ANSWER_WAIT_MS after the request, and the coordinator judges no
 * liveness before (an idle agent's stored entry is as old as its start, so
 * until it is heard it looks offline; deployments created right after a
 * restart skipped live targets, test/cluster.test.ts). Agents it hears but
 * has no entry for (deleted by hand) are asked, once a second, to write it
 * again. Nothing is answered: a reply to each heartbeat was one more write
 * to each agent's connection (docs/performance.md). After a reconnect it
 * asks every agent again: heartbeats sent while it was cut off were lost,
 * and with a long idle interval (a large fleet's, docs/production.md) its
 * idle agents would otherwise look offline for up to that interval.
 */
/** Asks these agents to write their registry entry again (a stored heartbeat, which every coordinator's watch sees). */
export function askToRegister(nc: NatsConnection, ids: readonly string[]): void {
  for (let i = 0; i < ids.length; i += REGISTER_CHUNK) nc.publish(HEARTBEAT_REQUEST_SUBJECT, JSON.stringify({ register: ids.slice(i, i + REGISTER_CHUNK) }));
}

export function listenForHeartbeats(nc: NatsConnection, registry: Registry, log: Logger): { stop(): void; answered: Promise<void> } {
  const prefix = HEARTBEAT_SUBJECTS.slice(0, -1);
  const unknown = new Set<string>();
  const sub = nc.subscribe(HEARTBEAT_SUBJECTS, {
    callback: (err, m) => {
      if (err) {
        log.error({ err: errorMessage(err) }, "cannot hear agents' heartbeats: agents are shown offline between their stored heartbeats");
        return;
      }
      const id = m.subject.slice(prefix.length);
      if (!registry.heard(id)) unknown.add(id);
    },
  });
  const timer = setInterval(() => {
    if (unknown.size === 0) return;
    const ids = [...unknown];
    unknown.clear();
    log.info({ agents: ids.length }, "heard agents with no registry entry: asking them to write it again");
    try {
      askToRegister(nc, ids);
    } catch (e) {
      log.warn({ err: errorMessage(e) }, "could not ask agents to register again");
    }
  }, 1000);
  timer.unref();
  const answered = (async () => {
    // The subscription is on the server before anyone is asked.
    await nc.flush().catch(() => undefined);
    nc.publish(HEARTBEAT_REQUEST_SUBJECT);
    await new Promise((r) => setTimeout(r, HEARTBEAT_ANSWER_WAIT_MS));
  })();
  const status = nc.status();
  void (async () => {
    for await (const s of status) {
      if (s.type === "disconnect") registry.cutOff();
      if (s.type !== "reconnect") continue;
      registry.forgetHeard();
      log.info("reconnected to NATS: asking every agent for a heartbeat");
      try {
        // The client resubscribed before it reports the reconnect.
        nc.publish(HEARTBEAT_REQUEST_SUBJECT);
      } catch (e) {
        log.warn({ err: errorMessage(e) }, "could not ask agents for a heartbeat after a reconnect");
      }
      registry.asked();
    }
  })().catch(() => undefined);
  return {
    answered,
    stop() {
      clearInterval(timer);
      sub.unsubscribe();
      (status as { stop?(): void }).stop?.();
    },
  };
}
