// The agent's entry in deploy_agents and its heartbeats. The entry is
// written when the agent starts and, when what it runs changes, by the next
// heartbeat (stored instead of sent idle: setCurrentRelease). Heartbeats
// are of two kinds:
// - idle: a core NATS publish on deploy.hb.<id>, heard by every
//   coordinator, answered and stored nowhere: liveness for ListAgents,
//   targeting and convergence, where a heartbeat lost only shows a live
//   agent as offline for a while;
// - from a won race until its result: the entry rewritten (a KV put,
//   acknowledged by JetStream, seen by every coordinator's watch with the
//   server's timestamp): the start lease's evidence, on which a coordinator
//   may time out an applying target (DESIGN.md invariant 3).
// The two have intervals of their own (config: idleHeartbeatIntervalMs,
// heartbeatIntervalMs): an idle beat only keeps the agent shown live, and
// every idle agent of the fleet sends one, so a large fleet spaces them
// out; a stored beat is the lease's evidence, and only applying agents
// send them.
// Measured at 10,000 idle agents, heartbeat 30 s, nats-server 2.15 with
// sync_interval always: nats-server used 24.9 % of a core with a KV put per
// heartbeat, 17.5 % with a request a coordinator answered; most of what is
// left is writes to 10,000 connections, one syscall each, so an idle
// heartbeat is now answered by nothing (see docs/performance.md).
import { hostname } from "node:os";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import {
  AGENT_SCHEMA,
  encode,
  errorMessage,
  HEARTBEAT_REQUEST_SUBJECT,
  heartbeatSubject,
  type AgentRecord,
  type AgentRelease,
  type JsContext,
  type Logger,
} from "../../shared/src/index.js";
import type { AgentConfig } from "./config.js";

export const AGENT_VERSION = "0.1.0";

/** Why an apply's kill watch is told to look: a kill notice naming its deployment, or a reconnect (one may have been missed). */
export type KillLookReason = "notice" | "reconnect";

/** Kill notices remembered (Registration.onKillNotice): far more deployments than an agent applies at once. */
const KILL_NOTICES_KEPT = 64;

export class Registration {
  readonly record: AgentRecord;
  #timer: NodeJS.Timeout | undefined;
  /** performance.now() at which #timer fires. */
  #dueAt = Number.POSITIVE_INFINITY;
  #requests: Subscription | undefined;
  /** Applies between a won race and their result: heartbeats are stored meanwhile. */
  #busy = 0;
  #stopped = false;
  /** The server refused this agent's idle heartbeat (credentials from before it): every heartbeat is stored instead. */
  #storeAll = false;
  #status: { stop?(): void } | undefined;
  /** Applies watching for a kill (handleCommand.ts watchForKill): told of a coordinator's kill notice, and of a reconnect. */
  readonly #killWatchers = new Set<(deploymentId: string | undefined) => void>();
  /** When (performance.now()) a kill notice last named each deployment, the most recent KILL_NOTICES_KEPT: one can come between a won race and its apply's watch. */
  readonly #killNoticed = new Map<string, number>();
  /** When (performance.now()) the connection last came back. */
  #reconnectedAt = Number.NEGATIVE_INFINITY;
  /** What the entry says is behind the record (a new release whose write failed): the next heartbeat is stored. */
  #unwritten = false;
  /** A fault hook's (handleCommand.ts): idle heartbeats do not write a new release before this performance.now(). */
  #holdUntil = 0;
  /** Between idle heartbeats (config.idleHeartbeatIntervalMs; 0: intervalMs). */
  readonly #idleMs: number;

  /** `intervalMs`: between stored heartbeats while applying. `nc` unset (unit tests): every heartbeat is stored, as while busy. */
  constructor(
    private readonly ctx: Pick<JsContext, "agents">,
    config: AgentConfig,
    private readonly intervalMs: number,
    private readonly log: Logger,
    private readonly nc?: NatsConnection,
  ) {
    this.#idleMs = config.idleHeartbeatIntervalMs || intervalMs;
    this.record = {
      schema: AGENT_SCHEMA,
      id: config.id,
      environment: config.environment,
      apps: Object.keys(config.apps).sort(),
      host: hostname(),
      version: AGENT_VERSION,
      labels: config.labels,
      currentReleases: {},
      startedAt: new Date().toISOString(),
    };
  }

  /** `releases`: what each current release is (deployment, version, artifact), as the entry before this start said. */
  async start(currentReleases: Record<string, string>, releases: Record<string, AgentRelease> = {}): Promise<void> {
    this.record.currentReleases = currentReleases;
    // Only for releases still current: a name without what it is stays so.
    const known = Object.entries(releases).filter(([app, r]) => currentReleases[app] === r.release);
    if (known.length > 0) this.record.releases = Object.fromEntries(known);
    // The first write may meet a JetStream still settling (demo.test.ts saw
    // "jetstream is not enabled" right after the layout was there): retried
    // for a while, as the layout wait before it, rather than exit.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.beat();
        break;
      } catch (err) {
        if (attempt >= 10) throw err;
        this.log.warn({ attempt, err: errorMessage(err) }, "could not write this agent's entry; retrying");
        await new Promise((r) => setTimeout(r, Math.min(250 * attempt, 2000)));
      }
    }
    this.#schedule(this.#nextInMs());
    if (this.nc) {
      this.#watchStatus(this.nc);
      this.#requests = this.nc.subscribe(HEARTBEAT_REQUEST_SUBJECT, {
        callback: (err, m) => {
          if (err) {
            // Credentials from before this subscription: a starting coordinator waits one interval instead.
            this.log.warn({ err: errorMessage(err) }, "cannot follow coordinators' heartbeat requests");
            return;
          }
          this.#requested(m.data);
        },
      });
    }
  }

  /**
   * Credentials made before idle heartbeats (no publish on deploy.hb.<id>):
   * the server refuses each one asynchronously and the coordinators would
   * see this agent go silent, so the agent stores every heartbeat instead,
   * as before, and says to re-run gen-credentials. And a reconnect: a
   * heartbeat at once.
   */
  #watchStatus(nc: NatsConnection): void {
    const subject = heartbeatSubject(this.record.id);
    const status = nc.status();
    this.#status = status as { stop?(): void };
    void (async () => {
      for await (const s of status) {
        if (s.type === "reconnect") {
          // Beats sent while cut off were lost, and the coordinators' request
          // for one (sent when they reconnect) may have come before this
          // agent was back: with a long idle interval it would look offline
          // until its next beat.
          this.#soon();
          // So may a kill notice: the applies in flight look now.
          this.#reconnectedAt = performance.now();
          for (const w of this.#killWatchers) w(undefined);
          continue;
        }
        if (s.type !== "error") continue;
        const e = s.error as { name?: string; operation?: string; subject?: string };
        if (e.name === "PermissionViolationError" && e.operation === "publish" && e.subject === subject && !this.#storeAll) {
          this.#storeAll = true;
          this.log.warn({ subject }, "NATS refuses this agent's idle heartbeat (credentials from before it): storing every heartbeat instead; re-run gen-credentials for this agent");
          this.#tick();
        }
      }
    })().catch(() => undefined);
  }

  /**
   * A coordinator's request (HEARTBEAT_REQUEST_SUBJECT): a heartbeat now
   * (no body), the entry written again (`register` names this agent), or a
   * look at a deployment whose cancel asked to kill its applies (`kill`: its
   * id; queries/cancelDeployment.ts publishes it once the cancel is stored). The notice
   * only makes the applies of that deployment look now: the look at the
   * stored event decides, so a notice that names the wrong deployment kills
   * nothing. Agents from before the notice ignore a body without `register`.
   */
  #requested(data: Uint8Array): void {
    if (data.length === 0) {
      this.#soon();
      return;
    }
    let register: unknown;
    let kill: unknown;
    try {
      ({ register, kill } = JSON.parse(new TextDecoder().decode(data)) as { register?: unknown; kill?: unknown });
    } catch {
      this.log.debug("ignoring an unreadable heartbeat request");
      return;
    }
    // A deployment id is 29 characters: a longer one names no deployment, and is not remembered.
    if (typeof kill === "string" && kill.length <= 128) {
      this.#killNoticed.delete(kill);
      this.#killNoticed.set(kill, performance.now());
      if (this.#killNoticed.size > KILL_NOTICES_KEPT) this.#killNoticed.delete(this.#killNoticed.keys().next().value!);
      for (const w of this.#killWatchers) w(kill);
    }
    if (Array.isArray(register) && register.includes(this.record.id)) {
      this.log.info("a coordinator has no entry for this agent: writing it again");
      this.beat().catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, "could not write this agent's entry"));
    }
  }

  /** A heartbeat within a second, spread, so that 10,000 agents asked at once (or back at once) do not answer in one burst. */
  #soon(): void {
    const t = setTimeout(() => this.#tick(), Math.random() * Math.min(1000, this.intervalMs));
    t.unref();
  }

  #schedule(firstInMs: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#stopped) return;
    this.#dueAt = performance.now() + firstInMs;
    this.#timer = setTimeout(() => {
      this.#tick();
      this.#schedule(this.#nextInMs());
    }, firstInMs);
  }

  /** Stored beats (applying, or the entry behind the record) at intervalMs; idle ones at the idle interval. */
  #nextInMs(): number {
    return this.#busy > 0 || this.#unwritten ? this.intervalMs : this.#idleMs;
  }

  #tick(): void {
    if (this.#stopped) return;
    const unwritten = this.#unwritten && performance.now() >= this.#holdUntil;
    if (this.#busy > 0 || !this.nc || this.#storeAll || unwritten) {
      this.beat().catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, "heartbeat failed"));
      return;
    }
    // Idle: heard by every coordinator, answered and stored nowhere.
    try {
      this.nc.publish(heartbeatSubject(this.record.id));
      this.onBeat();
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, "heartbeat failed");
    }
  }

  /**
   * Calls `look("notice")` when a coordinator's kill notice names
   * `deploymentId`, and `look("reconnect")` after a reconnect (a notice may
   * have been missed meanwhile); at once
   * (in a later task) when either came at or after `since` (performance.now(),
   * the apply's claim) and before this call: between a won race and the
   * apply's watch. Returns the watch's removal.
   */
  onKillNotice(deploymentId: string, since: number, look: (why: KillLookReason) => void): () => void {
    const watcher = (id: string | undefined): void => {
      if (id === undefined) look("reconnect");
      else if (id === deploymentId) look("notice");
    };
    this.#killWatchers.add(watcher);
    const why: KillLookReason | undefined =
      (this.#killNoticed.get(deploymentId) ?? Number.NEGATIVE_INFINITY) >= since ? "notice" : this.#reconnectedAt >= since ? "reconnect" : undefined;
    if (why) setTimeout(() => this.#killWatchers.has(watcher) && look(why), 0);
    return () => void this.#killWatchers.delete(watcher);
  }

  /**
   * Called when this agent has won a target's race (sent at `claimAt`; the
   * stored target.started is a heartbeat every coordinator sees, acknowledged
   * when the agent learned of the win): until the returned function is
   * called, heartbeats are stored, the first half an interval from now.
   */
  busy(claimAt: number): () => void {
    const last = this.#beats.at(-1);
    // The claim is the beat in force from claimAt (leaseProblem); a stored
    // beat sent after it (a re-registration during the race) is kept as is,
    // with its gap from the beat before the claim: conservative.
    if (last === undefined || last.sentAt < claimAt) this.#beats.push({ sentAt: claimAt, gap: 0 });
    this.#busy++;
    // The first stored beat half an interval from now, but never later than
    // the beat already due: applies back to back (a deployment every 30 ms,
    // npm run soak) each pushed it back, so no heartbeat went out at all, a
    // new release was never written to the entry, and after agentLiveMs the
    // coordinators refused every deployment to the agent as not live.
    if (this.#busy === 1) this.#schedule(Math.max(0, Math.min(this.intervalMs / 2, this.#dueAt - performance.now())));
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#busy--;
    };
  }

  /** Called after every heartbeat sent when idle, or stored while applying (metrics). */
  onBeat: () => void = () => undefined;

  /**
   * Stored heartbeats (and claims: busy()), by the performance.now() at which each was sent
   * (monotonic, and no later than the server's receipt, from which the
   * coordinator counts silence), each with the longest the coordinator may
   * have seen between the one before and it: from the one before's send to
   * this one's acknowledgement. The server received each somewhere in
   * between its send and its ack, and a beat held up on the way (a stalled
   * link delivers it seconds late) is a silence to the coordinator, however
   * regularly it was sent.
   */
  #beats: { sentAt: number; gap: number }[] = [];

  /** Writes of the entry sent and not answered yet (settled()). */
  readonly #inflight = new Set<Promise<unknown>>();

  /**
   * Resolves when every write of the entry sent before this call is
   * answered (stored or failed). The agent waits for it before it reports a
   * result: an entry written before the new release (a stored heartbeat of
   * the apply) is then stored before the result, never after the
   * deployment it ends succeeded (releases/convergence.ts counts on it).
   */
  async settled(): Promise<void> {
    if (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
  }

  async beat(): Promise<void> {
    const sentAt = performance.now();
    const unwritten = this.#unwritten;
    this.#unwritten = false;
    const put = this.ctx.agents.put(this.record.id, encode(this.record));
    this.#inflight.add(put);
    try {
      await put;
    } catch (err) {
      this.#unwritten ||= unwritten;
      throw err;
    } finally {
      this.#inflight.delete(put);
    }
    this.#acknowledged(sentAt);
    this.onBeat();
  }

  #acknowledged(sentAt: number): void {
    const last = this.#beats.at(-1);
    if (last !== undefined && sentAt <= last.sentAt) return; // an older beat acknowledged late: covered already
    this.#beats.push({ sentAt, gap: last === undefined ? Number.POSITIVE_INFINITY : performance.now() - last.sentAt });
    // About 14 hours at the default 5 s interval: longer than any claim-to-start.
    if (this.#beats.length > 10_000) this.#beats.splice(0, this.#beats.length - 10_000);
  }

  /**
   * Why starting an apply now would break a start lease of `leaseMs` taken at
   * `claimAt` (performance.now() before the claim was sent), or undefined.
   * Starting is safe only if, at every moment since the claim, an
   * acknowledged heartbeat had been sent less than `leaseMs` before: then no
   * coordinator, whose liveness limit is longer than the lease, can have
   * judged this agent silent and timed its target out. A pause (SIGSTOP, a
   * long GC, a stalled network) shows as a gap, even when heartbeats resumed
   * after it. (DESIGN.md invariant 3: a paused agent that wakes late runs
   * nothing.)
   */
  leaseProblem(claimAt: number, leaseMs: number): string | undefined {
    const now = performance.now();
    let widest = 0;
    let lastSent = Number.NEGATIVE_INFINITY;
    for (let i = this.#beats.length - 1; i >= 0; i--) {
      const b = this.#beats[i]!;
      if (lastSent === Number.NEGATIVE_INFINITY) lastSent = b.sentAt;
      if (b.sentAt <= claimAt) break; // the beat in force when the claim was sent
      widest = Math.max(widest, b.gap);
    }
    widest = Math.max(widest, now - lastSent);
    if (widest <= leaseMs) return undefined;
    return Number.isFinite(widest)
      ? `start lease expired: ${Math.round(widest)} ms without an acknowledged heartbeat since this agent claimed the target (lease ${leaseMs} ms; was the agent paused?)`
      : "start lease expired: no heartbeat acknowledged";
  }

  /**
   * Why an agent that learned at `confirmedAt` that its race (sent at
   * `claimAt`) was won must not start: the lease bounds how late a won start
   * may begin, from the race, however regular the heartbeats were meanwhile.
   * A reply lost or held up (a saturated server, a stalled link) can tell the
   * agent it won seconds after the win was stored; a cancel requested after
   * the win lets the target finish (fold.ts) on the promise that it begins
   * within the lease, so an agent that hears of its win later runs nothing
   * and reports so.
   */
  static confirmationProblem(claimAt: number, confirmedAt: number, leaseMs: number): string | undefined {
    const took = confirmedAt - claimAt;
    if (took <= leaseMs) return undefined;
    return `start lease expired: this agent learned it had won the target ${Math.round(took)} ms after racing for it (lease ${leaseMs} ms; a lost or delayed reply)`;
  }

  /**
   * The release now current for `app`, and what it is: the coordinator
   * compares that with the desired release (ListAgents' status, convergence).
   */
  setCurrentRelease(app: string, release: AgentRelease, holdMs = 0): void {
    this.record.currentReleases[app] = release.release;
    this.record.releases = { ...this.record.releases, [app]: release };
    // Written by the next heartbeat, stored instead of sent idle (#tick),
    // and until a write of it is acknowledged every heartbeat is stored (a
    // failed write is tried again at the next one, not left until the next
    // apply). The write replaces a heartbeat: no message more per apply.
    this.#unwritten = true;
    if (holdMs > 0) this.#holdUntil = performance.now() + holdMs;
  }

  /**
   * At a graceful stop: a new release not written yet is written now, so
   * that every coordinator shows the stopped agent on what it runs (its
   * restart would take it from the journal). Waits at most `waitMs`.
   */
  async flush(waitMs: number): Promise<void> {
    if (!this.#unwritten || this.#stopped) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.beat().catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, "could not write this agent's new release before stopping")),
      new Promise<void>((r) => (timer = setTimeout(r, waitMs))),
    ]);
    clearTimeout(timer);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#requests?.unsubscribe();
    this.#status?.stop?.();
  }
}
