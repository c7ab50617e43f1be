// Convergence: an agent that registers, or comes back, on another release
// than the desired one of an app it serves is brought to it by a follow-up
// deployment, made through the same createDeployment as any other, so
// every invariant holds as for any target (applied at most once, terminal
// is final, every step an event in the stream).
//
// - Level-triggered: each coordinator looks at an agent whenever its
//   registry entry changes (every heartbeat, a registration) and at every
//   agent of a pair whose desired release changed or whose lock it freed.
//   An agent needs converging when it is live, not cordoned, not on the desired release,
//   missed it (what it runs was installed before it, or nothing is), and
//   the desired release's deployment covers it (releases/agentReleases.ts).
// - Once per (agent, desired release): the request id is
//   converge.<app>.<env>.<agent>.<desired deployment id>, the same on every
//   coordinator, so two coordinators, a retry or a restart make one
//   deployment; and once it exists, whatever became of it, it is never made
//   again. A convergence that FAILED is not retried by itself (DESIGN.md:
//   nothing retries an apply by itself): a new desired release, or an
//   operator's deployment, is the next step.
// - The (app, environment) lock holds: while another deployment is active
//   the pair waits, and is tried again when this coordinator frees the lock
//   or after retryMs (another coordinator may free it). One convergence
//   deployment per agent, one after the other.
// - Off per environment (rollout.convergenceOff).
import {
  AlreadyExistsError,
  CONVERGENCE,
  PreconditionError,
  convergenceRequestId,
  errorMessage,
  loadDeployment,
  parseAgentRecord,
  type JsContext,
  type Logger,
} from "../../../shared/src/index.js";
import type { ArtifactStore } from "../artifacts/artifactStore.js";
import type { Freezes } from "../freezes.js";
import type { Policies } from "../policies.js";
import { createDeployment, deploymentOfRequest, type FleetOptions } from "../createDeployment.js";
import type { AgentView, Registry } from "../registry.js";
import type { CreateInput, Defaults } from "../requests.js";
import type { Reconciler } from "../rollout/reconciler.js";
import { needsConvergence } from "./agentReleases.js";
import { restoredOf } from "./rollback.js";
import type { ReleaseBook } from "./releaseBook.js";

export interface ConvergenceOptions {
  /** Environments in which nothing converges (rollout.convergenceOff). */
  off: readonly string[];
  /** Timeouts of a convergence deployment (the coordinator's defaults). */
  defaults: Defaults;
  /** How soon a pair whose lock was held is tried again, unless this coordinator frees it first. */
  retryMs: number;
}

export interface ConvergenceDeps {
  ctx: JsContext;
  registry: Registry;
  releases: ReleaseBook;
  artifacts: ArtifactStore;
  reconciler: Reconciler;
  /** Environments frozen (every creation asks; convergence itself is not refused by a freeze). */
  freezes?: Freezes;
  /** Environment policies (every creation asks; convergence itself is not refused by one). */
  policies?: Policies;
}

interface PairQueue {
  app: string;
  environment: string;
  /** Agents to look at, in the order they were seen (a Set keeps insertion order). */
  agents: Set<string>;
  draining: boolean;
  blockedUntil: number;
  timer?: NodeJS.Timeout;
}

type Outcome = "created" | "exists" | "not-needed" | "blocked";

export class Convergence {
  readonly #off: ReadonlySet<string>;
  /** Request ids of convergence deployments known to exist: never asked for again. */
  readonly #done = new Set<string>();
  readonly #pairs = new Map<string, PairQueue>();
  #stopped = false;

  constructor(
    private readonly deps: ConvergenceDeps,
    private readonly opts: ConvergenceOptions,
    private readonly log: Logger,
  ) {
    this.#off = new Set(opts.off);
  }

  isOn(environment: string): boolean {
    return !this.#off.has(environment);
  }

  /** What createDeployment needs to know of convergence and desired releases (every creation, not only ours). */
  get fleet(): FleetOptions {
    return {
      convergence: (env) => this.isOn(env),
      recordDesired: (rec) => this.deps.releases.record(rec),
      desiredRelease: async (app, env) => restoredOf(await this.deps.releases.read(app, env)),
      frozen: (env) => this.deps.freezes?.get(env),
      policy: (env, app) => this.deps.policies?.applying(env, app) ?? [],
    };
  }

  /** Every registered agent (at start). */
  considerAll(): void {
    for (const a of this.deps.registry.list()) this.considerAgent(a);
  }

  /**
   * An agent's registry entry changed: a heartbeat, a registration, a new
   * release; its apps are looked at (`only`: that one of them).
   */
  considerAgent(view: AgentView, only?: string): void {
    if (this.#stopped) return;
    const { record } = view;
    // A cordoned agent takes no new deployment; UncordonAgent asks it to write its entry again, which brings it back here.
    if (!this.isOn(record.environment) || !this.deps.registry.isLive(view) || this.deps.registry.cordonOf(record.id)) return;
    for (const app of only !== undefined ? [only] : record.apps) {
      const d = this.deps.releases.get(app, record.environment);
      if (!d || !needsConvergence(record, app, d)) continue;
      if (this.#done.has(convergenceRequestId(app, record.environment, record.id, d.deploymentId))) continue;
      this.#enqueue(app, record.environment, record.id);
    }
  }

  /** The pair's desired release changed: what was done for the one before is forgotten (never asked for again), its agents are looked at now. */
  desiredChanged(app: string, environment: string): void {
    const prefix = convergenceRequestId(app, environment, "", "").slice(0, -1); // "converge.<app>.<env>."
    for (const id of this.#done) if (id.startsWith(prefix)) this.#done.delete(id);
    this.considerPair(app, environment);
  }

  /** This coordinator freed the pair's lock (or its desired release changed): its agents are looked at now. */
  considerPair(app: string, environment: string): void {
    if (this.#stopped) return;
    const q = this.#pairs.get(`${app}.${environment}`);
    if (q) q.blockedUntil = 0;
    // The pair's app only: every deployment's end comes here twice (its lock
    // freed, a new desired release), and looking at each agent's every app
    // made ReleaseBook.get 0.6 % of the coordinator's profile in the API
    // bench (50 agents of 90 apps each).
    for (const a of this.deps.registry.list({ app, environment })) this.considerAgent(a, app);
    if (q) void this.#drain(q);
  }

  #enqueue(app: string, environment: string, agentId: string): void {
    const key = `${app}.${environment}`;
    let q = this.#pairs.get(key);
    if (!q) {
      q = { app, environment, agents: new Set(), draining: false, blockedUntil: 0 };
      this.#pairs.set(key, q);
    }
    q.agents.add(agentId);
    void this.#drain(q);
  }

  /** Works through a pair's agents one at a time, in order; stops while the pair's lock is held elsewhere. */
  async #drain(q: PairQueue): Promise<void> {
    if (q.draining || this.#stopped) return;
    if (Date.now() < q.blockedUntil) return; // its timer drains it
    q.draining = true;
    try {
      for (const agentId of q.agents) {
        if (this.#stopped) return;
        let outcome: Outcome;
        try {
          outcome = await this.#converge(q, agentId);
        } catch (err) {
          // Looked at again at its next heartbeat.
          this.log.warn({ agentId, app: q.app, environment: q.environment, err: errorMessage(err) }, "convergence not started; will retry");
          outcome = "not-needed";
        }
        if (outcome === "blocked") {
          q.blockedUntil = Date.now() + this.opts.retryMs;
          if (!q.timer) {
            q.timer = setTimeout(() => {
              q.timer = undefined;
              void this.#drain(q);
            }, this.opts.retryMs);
            q.timer.unref();
          }
          return;
        }
        q.agents.delete(agentId);
      }
    } finally {
      q.draining = false;
    }
  }

  async #converge(q: PairQueue, agentId: string): Promise<Outcome> {
    const { registry, releases, ctx } = this.deps;
    // Looked at again now: the queue may be a while old.
    const view = registry.get(agentId);
    if (!view || !registry.isLive(view) || registry.cordonOf(agentId) || view.record.environment !== q.environment || !view.record.apps.includes(q.app) || !this.isOn(q.environment)) return "not-needed";
    const d = releases.get(q.app, q.environment);
    if (!d || !needsConvergence(view.record, q.app, d)) return "not-needed";
    const requestId = convergenceRequestId(q.app, q.environment, agentId, d.deploymentId);
    if (this.#done.has(requestId)) return "exists";
    // The registry's view trails KV by up to a watch delivery, and an
    // agent's entry trails its result: just after a deployment succeeds, an
    // agent it updated can still look outdated here (a full test run saw a
    // spurious convergence take the pair's lock). The agent writes its entry
    // with the new release beside its result, and every write it sent
    // before that is stored before the result (agent/src/handleCommand.ts):
    // act only on an entry read now and written after the desired release
    // succeeded; an older one is looked at again at the agent's next beat.
    const entry = await ctx.agents.get(agentId);
    if (!entry || entry.operation !== "PUT" || entry.created.getTime() <= Date.parse(d.succeededAt)) return "not-needed";
    let fresh;
    try {
      fresh = parseAgentRecord(entry.value);
    } catch {
      return "not-needed";
    }
    // Read past the registry's view: hold it to the agent's binding here too.
    if (registry.problemOf(fresh) !== undefined || !needsConvergence(fresh, q.app, d)) return "not-needed";
    // Asked for already, by this or another coordinator, now or long ago, and
    // whatever became of it: one KV get, and never again. A mapping counts
    // once its deployment exists: a creator refused the pair's lock withdraws
    // the mapping it wrote (createDeployment.ts), and one seen in between
    // must not end convergence here; createDeployment below answers or
    // finishes a request that is recorded.
    const existing = await deploymentOfRequest(ctx, requestId);
    if (existing !== undefined && (await loadDeployment(ctx, existing))) {
      this.#done.add(requestId);
      return "exists";
    }
    const input: CreateInput = {
      requestId,
      app: q.app,
      environment: q.environment,
      changeset: d.artifact ? { version: d.version, artifact: { name: d.artifact.name, digest: d.artifact.digest } } : { version: d.version },
      strategy: { maxConcurrency: { count: 1 }, maxFailures: { count: 0 }, deliveryTimeoutMs: this.opts.defaults.deliveryTimeoutMs, applyTimeoutMs: this.opts.defaults.applyTimeoutMs },
      targets: [agentId],
      note: `converges ${agentId} to the desired release ${d.release} (deployment ${d.deploymentId})`,
      convergesTo: d.deploymentId,
    };
    try {
      const created = await createDeployment(ctx, registry, this.deps.artifacts, input, CONVERGENCE, this.fleet);
      const { record } = created;
      this.#done.add(requestId);
      // Created by this call, or by another coordinator's identical one at the same moment: the same deployment either way.
      this.log.info({ deploymentId: record.spec.id, agentId, app: q.app, environment: q.environment, convergesTo: d.deploymentId }, "convergence deployment requested");
      this.deps.reconciler.launch(created);
      return "created";
    } catch (err) {
      if (err instanceof AlreadyExistsError) {
        this.#done.add(requestId);
        return "exists";
      }
      // Another deployment of the pair is active (or the agent just went
      // away): the pair waits and tries again.
      if (err instanceof PreconditionError) {
        this.log.debug({ agentId, app: q.app, environment: q.environment, why: err.message }, "convergence waits");
        return "blocked";
      }
      throw err;
    }
  }

  close(): void {
    this.#stopped = true;
    for (const q of this.#pairs.values()) if (q.timer) clearTimeout(q.timer);
  }
}
