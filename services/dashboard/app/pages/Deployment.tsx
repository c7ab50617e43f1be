// One deployment, live: the snapshot from GET /api/deployments/:id, then every
// event from the start over Server-Sent Events. Events up to the snapshot's
// lastSequence only fill the log and the output lines (the snapshot already
// has their effect); later ones move the targets.
//
// First paint does not wait for anything: the id is in the URL, so the page
// shows it at once; the first JSON answer draws the header, the progress and
// the targets grid (with each target's last output line from the snapshot),
// and the event stream fills in the log and the output boxes after that.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, AuthRequired, type DeployEvent, type Deployment, type Session } from "../api.js";
import { freezeText, clock, seconds, short, TERMINAL, when } from "../format.js";
import { follow, type Follow, type LiveStatus } from "../live.js";
import { OutcomeBar, outcomeOf } from "../outcome.js";
import { OutputBox } from "../output.js";

const TARGET_STATES = ["PENDING", "DISPATCHED", "APPLYING", "SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "SKIPPED"];
// The output box shows about 6 lines and scrolls; the rest is scrollback.
const LINES_KEPT = 20;
const LOG_SHOWN = 500;
// A target's result event does not say whether it rolled back; the record
// does. One re-read of the snapshot this long after a burst of results.
const RESULT_REREAD_MS = 500;
// A target TIMED_OUT whose agent may still report (back from a crash or a
// pause: interrupted, and how it went back) gets a late result after the
// deployment's terminal event, where the event stream ends. A page left
// open reads the deployment again this often, for as long as a timed-out
// target has no late result, up to LATE_READS_FOR_MS after the end.
const LATE_READ_MS = 10_000;
const LATE_READS_FOR_MS = 60 * 60_000;
const DECISION_EVENTS = new Set(["deployment.paused", "deployment.resumed", "deployment.canary_done", "deployment.promoted"]);

interface TargetView {
  state: string;
  message: string;
  /** Output lines from the event stream. */
  lines: string[];
  /** The snapshot's last output line: shown until the stream has delivered lines. */
  lastOutput: string;
  /** Failed after the release switch and switched back to the previous release. */
  rolledBack: boolean;
  /** A result its agent reported after the target was terminal (an agent back after a crash: interrupted, and how it went back). */
  lateResult: string;
}

interface Model {
  snapshotSeq: number;
  state: string;
  targets: Map<string, TargetView>;
  events: DeployEvent[];
  /** Every sequence received, duplicates included (read by the browser test through window.__dashboard). */
  received: number[];
  lastSeq: number;
  /** Who requested the cancel: from the snapshot, or from a later deployment.cancel_requested event. */
  cancelledBy: string;
  /** The cancel asked to kill the applies in flight: from the snapshot, or a cancel_requested event saying so. */
  killRequested: boolean;
  /** The operator's decisions, from the snapshot and then from deployment.paused / resumed / canary_done / promoted. */
  pausedBy: string;
  awaitingPromotion: boolean;
  promotedBy: string;
}

declare global {
  interface Window {
    __dashboard?: { received: number[]; reconnect(): void };
  }
}

function modelOf(d: Deployment): Model {
  const targets = new Map<string, TargetView>();
  for (const t of d.targets) targets.set(t.agentId, { state: short(t.state), message: t.message, lines: [], lastOutput: t.lastOutput, rolledBack: t.rolledBack, lateResult: t.lateResult ?? "" });
  return {
    snapshotSeq: Number(d.lastSequence),
    state: short(d.state),
    targets,
    events: [],
    received: [],
    lastSeq: 0,
    cancelledBy: d.cancelledBy ?? "",
    killRequested: d.killRequested === true,
    pausedBy: d.paused ? d.pausedBy || "—" : "",
    awaitingPromotion: d.awaitingPromotion === true,
    promotedBy: d.promotedBy ?? "",
  };
}

function applyEvent(m: Model, e: DeployEvent, seq: number): void {
  m.received.push(seq);
  if (seq <= m.lastSeq) return; // never expected: the server resumes after the last id
  m.lastSeq = seq;
  m.events.push(e);
  const t = e.agentId ? m.targets.get(e.agentId) : undefined;
  if (t && e.lines.length > 0) t.lines = [...t.lines, ...e.lines.filter((l) => l.trim() !== "")].slice(-LINES_KEPT);
  if (seq <= m.snapshotSeq) return;
  if (e.deploymentState !== "DEPLOYMENT_STATE_UNSPECIFIED") m.state = short(e.deploymentState);
  if (t && e.targetState !== "TARGET_STATE_UNSPECIFIED") {
    t.state = short(e.targetState);
    if (["target.result", "target.timed_out", "target.cancelled"].includes(e.type) && !e.message.includes("no effect:")) t.message = e.message;
  }
  for (const id of e.agentIds ?? []) {
    const v = m.targets.get(id);
    if (v && v.state === "PENDING") v.state = "DISPATCHED";
  }
  if (e.type === "deployment.cancel_requested" && e.actor) m.cancelledBy = e.actor;
  // The event's message ends so when it asked to kill (grpc/convert.ts).
  if (e.type === "deployment.cancel_requested" && e.message.includes("kill_running: the applies in flight are killed")) m.killRequested = true;
  if (e.type === "deployment.paused") m.pausedBy = e.actor || "—";
  if (e.type === "deployment.resumed") m.pausedBy = "";
  if (e.type === "deployment.canary_done") m.awaitingPromotion = true;
  if (e.type === "deployment.promoted") {
    m.awaitingPromotion = false;
    m.promotedBy = e.actor || "—";
  }
  if (e.type === "deployment.finished") {
    m.pausedBy = "";
    m.awaitingPromotion = false;
  }
  // A halt or cancel moves pending targets without an event of their own.
  if (e.type === "deployment.halted" || e.type === "deployment.cancel_requested") {
    for (const v of m.targets.values()) if (v.state === "PENDING") v.state = e.type === "deployment.halted" ? "SKIPPED" : "CANCELLED";
  }
}

/** Takes what the event stream does not carry from a newer snapshot; `final`: the deployment has ended, take everything. */
/** A target timed out whose agent has not reported yet: a late result may still come. */
const awaitsLateResult = (d: Deployment): boolean => d.targets.some((t) => short(t.state) === "TIMED_OUT" && !t.lateResult);

function mergeSnapshot(m: Model, d: Deployment, final: boolean): void {
  for (const t of d.targets) {
    const v = m.targets.get(t.agentId);
    if (!v) continue;
    if (t.rolledBack) v.rolledBack = true;
    if (final) Object.assign(v, { state: short(t.state), message: t.message, lateResult: t.lateResult ?? "" });
  }
  if (final) m.state = short(d.state);
  // The decisions: from a snapshot at least as new as the events received.
  if (final || Number(d.lastSequence) >= m.lastSeq) {
    m.pausedBy = d.paused ? d.pausedBy || "—" : "";
    m.awaitingPromotion = d.awaitingPromotion === true;
    m.promotedBy = d.promotedBy ?? "";
  }
}

/** `session` is undefined while it is being asked for: the page does not wait for it. */
export function DeploymentPage({ id, session, onAuthLost }: { id: string; session: Session | undefined; onAuthLost: () => void }) {
  const [dep, setDep] = useState<Deployment | undefined>(undefined);
  const [error, setError] = useState("");
  const [status, setStatus] = useState<LiveStatus>("connecting");
  const [, setVersion] = useState(0);
  const model = useRef<Model | undefined>(undefined);
  const stream = useRef<Follow | undefined>(undefined);

  const fail = (err: unknown): void => {
    if (err instanceof AuthRequired) onAuthLost();
    else setError(err instanceof ApiError && err.status === 404 ? `deployment ${id} does not exist` : err instanceof Error ? err.message : String(err));
  };

  useEffect(() => {
    let frame = 0;
    let reread: number | undefined;
    let late: number | undefined;
    let live = true;
    const failLive = (err: unknown): void => {
      if (live) fail(err);
    };
    // Re-render at most once a frame: a replay of a large rollout is tens of thousands of events.
    const redraw = (): void => {
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        setVersion((v) => v + 1);
      });
    };
    api.deployment(id).then((d) => {
      if (!live) return;
      setDep(d);
      const m = modelOf(d);
      model.current = m;
      let ended = false;
      // Whether a target rolled back is in the record, not in its result
      // event: read the record again shortly after results (one read per
      // burst), which also brings the header's message up to date.
      const rereadSoon = (): void => {
        if (reread !== undefined || ended) return;
        reread = window.setTimeout(() => {
          api.deployment(id).then(
            (f) => {
              reread = undefined;
              if (!live || ended) return; // the final read below wins
              setDep(f);
              mergeSnapshot(m, f, false);
              redraw();
            },
            () => void (reread = undefined), // the next result or the end reads it again
          );
        }, RESULT_REREAD_MS);
      };
      stream.current = follow(id, 0, {
        event: (e, seq) => {
          applyEvent(m, e, seq);
          // Results (rolled back?) and decisions (promote_at, the message) are in the record, not the event.
          if (seq > m.snapshotSeq && (e.type === "target.result" || DECISION_EVENTS.has(e.type))) rereadSoon();
          redraw();
        },
        status: setStatus,
        // The terminal event was the last: take the final record (messages, finish time).
        end: () => {
          ended = true;
          window.clearTimeout(reread);
          const until = Date.now() + LATE_READS_FOR_MS;
          const final = (): void => {
            api.deployment(id).then((f) => {
              if (!live) return;
              setDep(f);
              mergeSnapshot(m, f, true);
              redraw();
              if (awaitsLateResult(f) && Date.now() < until) late = window.setTimeout(final, LATE_READ_MS);
            }, failLive);
          };
          final();
        },
      });
      window.__dashboard = { received: m.received, reconnect: () => stream.current?.reconnect() };
    }, failLive);
    return () => {
      live = false;
      cancelAnimationFrame(frame);
      window.clearTimeout(reread);
      window.clearTimeout(late);
      stream.current?.close();
    };
  }, [id]);

  const m = model.current;
  if (!dep || !m) {
    // Before the first answer: what the URL already says.
    return (
      <section class="deployment">
        <div class="bar">
          <h1 class="mono">{id}</h1>
          {error ? <span class="error">{error}</span> : <span class="live connecting">asking the coordinator…</span>}
        </div>
      </section>
    );
  }

  const counts = new Map<string, number>();
  for (const t of m.targets.values()) counts.set(t.state, (counts.get(t.state) ?? 0) + 1);
  const outcome = outcomeOf([...m.targets.values()].map((t) => t.state), m.state);
  const terminal = TERMINAL.has(m.state);
  const linesOf = (t: TargetView): string[] => (t.lines.length > 0 ? t.lines : t.lastOutput ? [t.lastOutput] : []);
  const canaryTargets = dep.canaryTargets ?? [];
  // A decision's answer is the deployment after it: the header, and the model's decisions, at once.
  const decided = (d: Deployment): void => {
    setDep(d);
    mergeSnapshot(m, d, false);
  };
  const link = (to: string) => <a class="mono" href={`#/deployments/${encodeURIComponent(to)}`}>{to}</a>;
  const restores = dep.restores;

  return (
    <section class="deployment" data-state={m.state}>
      <div class="bar">
        <h1 class="mono">{dep.id}</h1>
        <span class={`state big s-${m.state}`} id="deployment-state">{m.state}</span>
        {/* Always rendered (hidden when they do not apply): the bar keeps one shape, so the cancel confirmation below is never re-created while it is open. */}
        <span class="badge waiting" id="paused-badge" hidden={terminal || m.pausedBy === ""}>paused</span>
        <span class="badge waiting" id="awaiting-badge" hidden={terminal || !m.awaitingPromotion}>awaiting promotion</span>
        <span class={`live ${status}`} id="live-status">{status === "ended" ? "finished" : status}</span>
        {session?.canCancel === true && !terminal && !dep.cancelRequested && (
          <span class="actions">
            <DecisionButtons id={id} canary={canaryTargets.length > 0} paused={m.pausedBy !== ""} promoted={m.promotedBy !== ""} onDone={decided} onError={fail} />
            <CancelButton id={id} onDone={setDep} onError={fail} />
          </span>
        )}
        {session?.canCancel === true && (m.state === "FAILED" || m.state === "CANCELLED") && !dep.reverts && !dep.revertedBy && (
          <span class="actions">
            <RevertButton id={id} onError={fail} />
          </span>
        )}
      </div>
      {session?.canCancel === true && m.state === "SUCCEEDED" && <PromoteReleaseForm dep={dep} onError={fail} />}
      {error && <p class="error">{error}</p>}
      {dep.message && <p class="message">{dep.message}</p>}
      <dl class="facts">
        <dt>App</dt><dd>{dep.app} <span class="mono">{dep.changeset.version}</span></dd>
        <dt>Environment</dt><dd>{dep.environment}</dd>
        {dep.convergesTo && (<><dt>Convergence</dt><dd id="converges-to">brings {dep.targets.map((t) => t.agentId).join(", ")} to the desired release of <a class="mono" href={`#/deployments/${encodeURIComponent(dep.convergesTo)}`}>{dep.convergesTo}</a></dd></>)}
        <dt>Requested by</dt>
        <dd>
          <span id="requested-by">{dep.requestedBy || "—"}</span>
          {dep.requestedByNote && <span class="note" id="requested-by-note"> (note: {dep.requestedByNote})</span>} at {when(dep.createdAt)}
        </dd>
        {(dep.cancelRequested || m.cancelledBy) && (<><dt>Cancelled by</dt><dd id="cancelled-by">{m.cancelledBy || dep.cancelledBy || "—"}</dd>{(m.killRequested || dep.killRequested === true) && <dd id="kill-requested">the applies in flight are killed</dd>}</>)}
        {!terminal && m.pausedBy !== "" && (<><dt>Paused by</dt><dd id="paused-by">{m.pausedBy} <span class="muted">(running applies go on; nothing new starts until resumed)</span></dd></>)}
        {canaryTargets.length > 0 && (
          <>
            <dt>Canary</dt>
            <dd id="canary">
              <span class="mono">{canaryTargets.join(", ")}</span>{" "}
              {m.promotedBy ? (
                <span id="promoted-by">promoted by {m.promotedBy}</span>
              ) : m.awaitingPromotion && !terminal ? (
                <span id="awaiting-promotion">succeeded; awaiting promotion{dep.promoteAt ? `, promotes by itself at ${when(dep.promoteAt)}` : ""}</span>
              ) : terminal ? (
                "not promoted"
              ) : (
                "running"
              )}
            </dd>
          </>
        )}
        {Boolean(dep.reverts) && (<><dt>Reverts</dt><dd id="reverts">{link(dep.reverts!)} (brings the targets it changed back)</dd></>)}
        {Boolean(dep.promotedFrom?.environment) && (
          <><dt>Promoted from</dt><dd id="promoted-from">{dep.promotedFrom!.environment}: its desired release <span class="mono">{dep.promotedFrom!.version}</span> (release <span class="mono">{dep.promotedFrom!.release}</span>, from {link(dep.promotedFrom!.deploymentId)}{dep.promotedFrom!.succeededAt ? <>, succeeded there {when(dep.promotedFrom!.succeededAt)}</> : null})</dd></>
        )}
        {Boolean(restores?.release) && (
          <><dt>Restores</dt><dd id="restores"><span class="mono">{restores!.version}</span> (release <span class="mono">{restores!.release}</span>, from {link(restores!.deploymentId)})</dd></>
        )}
        {dep.freezeOverride?.freeze && (
          <>
            <dt>Freeze override</dt>
            <dd id="freeze-override">
              deployed through a freeze of {dep.environment} ({freezeText(dep.freezeOverride.freeze)}), by {dep.requestedBy || "—"}: {dep.freezeOverride.reason}
            </dd>
          </>
        )}
        {Boolean(dep.cancelRevertsTo?.release) && !dep.revertedBy && (
          <><dt>Revert</dt><dd id="cancel-reverts-to">once cancelled, the targets it changed go back to {dep.cancelRevertsTo!.version} (release {dep.cancelRevertsTo!.release})</dd></>
        )}
        {Boolean(dep.revertedBy) && (<><dt>Reverted by</dt><dd id="reverted-by">{link(dep.revertedBy!)} ({dep.cancelRevertsTo?.release ? "cancel with revert" : dep.state === "DEPLOYMENT_STATE_FAILED" && dep.strategy.autoRevert ? "auto_revert" : "asked after it ended"})</dd></>)}
        <dt>Strategy</dt>
        <dd>
          {dep.strategy.maxConcurrency} at a time, halt when more than {dep.strategy.maxFailures} fail; delivery timeout {seconds(dep.strategy.deliveryTimeout)}, apply timeout {seconds(dep.strategy.applyTimeout)}
          {dep.strategy.canary ? `; canary ${dep.strategy.canary}${dep.strategy.canarySoak ? `, soak ${seconds(dep.strategy.canarySoak)}` : ""}` : ""}
          {dep.strategy.soak ? `; soak ${seconds(dep.strategy.soak)} after each target` : ""}
          {dep.strategy.autoRevert ? "; auto_revert" : ""}
          {dep.strategy.onlyOutdated ? "; only_outdated" : ""}
          {dep.strategy.ignoreStopFailures ? "; ignore_stop_failures" : ""}
          {dep.strategy.maxPause?.seconds && (dep.strategy.canary || dep.strategy.maxPause.seconds !== "86400") ? `; max pause ${seconds(dep.strategy.maxPause)}` : ""}
        </dd>
        {dep.changeset.artifact && (<><dt>Artifact</dt><dd class="mono">{dep.changeset.artifact.name} {dep.changeset.artifact.digest.slice(0, 19)}…</dd></>)}
        <dt>Finished</dt><dd>{when(dep.finishedAt)}</dd>
      </dl>

      <div class="progress">
        <OutcomeBar outcome={outcome} textId="progress-text" />
        <span class="counts">
          {TARGET_STATES.filter((s) => counts.get(s)).map((s) => <span key={s} class={`state s-${s}`}>{s} {counts.get(s)}</span>)}
        </span>
      </div>

      <div class="grid" id="targets">
        {[...m.targets.entries()].map(([agentId, t]) => (
          <div key={agentId} class={`tile s-${t.state}`} data-agent={agentId} data-state={t.state} title={t.message || t.state}>
            <div class="agent mono">{agentId}</div>
            <div class="tstate">
              {t.state}
              {t.rolledBack && <span class="rolled-back">rolled back</span>}
            </div>
            <div class="last mono">{linesOf(t).at(-1) ?? ""}</div>
          </div>
        ))}
      </div>

      <h2>Targets</h2>
      <table class="targets">
        <thead><tr><th>Target</th><th>State</th><th>Message</th><th>Last output</th></tr></thead>
        <tbody>
          {[...m.targets.entries()].map(([agentId, t]) => (
            <tr key={agentId} data-agent={agentId}>
              <td class="mono">{agentId}</td>
              <td>
                <span class={`state s-${t.state}`}>{t.state}</span>
                {t.rolledBack && <span class="rolled-back">rolled back</span>}
              </td>
              <td>
                {t.message}
                {t.lateResult && (
                  <p class="late-result" data-late-result="true">
                    Then its agent reported, after the target was {t.state}: {t.lateResult}
                  </p>
                )}
              </td>
              <td>
                <OutputBox agentId={agentId} lines={linesOf(t)} />
                {t.rolledBack && (
                  // The agent labels the previous release's start hook, run again on a
                  // rollback, "[rollback:start] ", so its lines tell themselves apart.
                  <p class="rollback-note">Rolled back to the previous release: its start hook ran again (lines labelled [rollback:start]).</p>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>

      <h2>Events <span class="muted">({m.events.length})</span></h2>
      {m.events.length > LOG_SHOWN && <p class="muted">{m.events.length - LOG_SHOWN} earlier event(s) not shown</p>}
      <table class="events" id="events">
        <thead><tr><th>#</th><th>Time</th><th>Event</th><th>Target</th><th>State</th><th>Message</th></tr></thead>
        <tbody>
          {m.events.slice(-LOG_SHOWN).map((e) => (
            <tr key={e.sequence} data-seq={e.sequence}>
              <td class="mono">{e.sequence}</td>
              <td class="mono">{clock(e.time)}</td>
              <td>{e.type}</td>
              <td class="mono">{e.agentId || "—"}</td>
              <td>{e.agentId ? short(e.targetState) : short(e.deploymentState)}</td>
              <td>{e.lines.length > 0 ? <span class="mono">| {e.lines.join(" | ")}</span> : e.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** Pause (with a reason) or resume, and promote a canary wave not yet promoted: each answered with the deployment after it. */
function DecisionButtons(p: { id: string; canary: boolean; paused: boolean; promoted: boolean; onDone: (d: Deployment) => void; onError: (e: unknown) => void }) {
  const [asking, setAsking] = useState(false);
  const [reason, setReason] = useState("");
  const done = (d: Deployment): void => {
    setAsking(false);
    p.onDone(d);
  };
  return (
    <span class="decisions">
      {p.canary && !p.promoted && <button id="promote" onClick={() => void api.promote(p.id).then(done, p.onError)}>Promote</button>}
      {p.paused && <button id="resume" onClick={() => void api.resume(p.id).then(done, p.onError)}>Resume</button>}
      {!p.paused && !asking && <button id="pause" onClick={() => setAsking(true)}>Pause…</button>}
      {!p.paused && asking && (
        <span class="pause">
          <input placeholder="reason (optional)" value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
          <button id="confirm-pause" onClick={() => void api.pause(p.id, reason).then(done, p.onError)}>Confirm pause</button>
          <button onClick={() => setAsking(false)}>Keep going</button>
        </span>
      )}
    </span>
  );
}

/** A request id made once per form opened: a second click (or a retry after a lost answer) is the same request. */
function newRequestId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `dashboard-promote-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * Build once, deploy many, from the page of a deployment that SUCCEEDED: the
 * desired release of its environment, as it is, to another environment
 * (deployctl deploy --from-env); then the new deployment's page. Refused
 * when that desired release is another deployment's by now.
 */
function PromoteReleaseForm({ dep, onError }: { dep: Deployment; onError: (e: unknown) => void }) {
  const [requestId, setRequestId] = useState<string | undefined>(undefined);
  const [environment, setEnvironment] = useState("");
  const [atOnce, setAtOnce] = useState("1");
  const [minSoak, setMinSoak] = useState("");
  const [canary, setCanary] = useState("");
  if (requestId === undefined) {
    return <p><button id="promote-release" onClick={() => setRequestId(newRequestId())}>Promote this release to another environment…</button></p>;
  }
  const submit = (e: Event): void => {
    e.preventDefault();
    api
      .promoteRelease({ requestId, app: dep.app, environment: environment.trim(), from: dep.environment, deploymentId: dep.id, maxConcurrency: atOnce.trim(), canary: canary.trim(), minSoak: minSoak.trim() })
      .then((d) => (location.hash = `#/deployments/${encodeURIComponent(d.id)}`), onError);
  };
  return (
    <form class="promote-release" onSubmit={submit}>
      deploy {dep.app} <span class="mono">{dep.changeset.version}</span> as {dep.environment} has it (the same bundle) to
      <input id="promote-env" placeholder="environment" value={environment} onInput={(e) => setEnvironment(e.currentTarget.value)} />
      <input id="promote-at" placeholder="at a time: 3 or 25%" value={atOnce} onInput={(e) => setAtOnce(e.currentTarget.value)} />
      <input id="promote-canary" placeholder="canary first: 1 or 10% (then promote it here)" value={canary} onInput={(e) => setCanary(e.currentTarget.value)} />
      <input id="promote-soak" placeholder={`only if it succeeded in ${dep.environment} this long ago: 2h`} value={minSoak} onInput={(e) => setMinSoak(e.currentTarget.value)} />
      <button class="danger" id="confirm-promote-release" type="submit">Promote</button>
      <button type="button" onClick={() => setRequestId(undefined)}>Not now</button>
    </form>
  );
}

/** RevertDeployment: the targets it changed back to the release desired before it; then the revert's own page. */
function RevertButton({ id, onError }: { id: string; onError: (e: unknown) => void }) {
  const [asking, setAsking] = useState(false);
  if (!asking) return <button id="revert" onClick={() => setAsking(true)}>Revert…</button>;
  return (
    <span class="revert">
      bring the targets it changed back to the release desired before it?
      <button class="danger" id="confirm-revert" onClick={() => void api.revert(id).then((r) => (location.hash = `#/deployments/${encodeURIComponent(r.id)}`), onError)}>Confirm revert</button>
      <button onClick={() => setAsking(false)}>Keep as it is</button>
    </span>
  );
}

function CancelButton({ id, onDone, onError }: { id: string; onDone: (d: Deployment) => void; onError: (e: unknown) => void }) {
  const [asking, setAsking] = useState(false);
  const [reason, setReason] = useState("");
  const [kill, setKill] = useState(false);
  const [revert, setRevert] = useState(false);
  if (!asking) return <button class="danger" id="cancel" onClick={() => setAsking(true)}>Cancel deployment…</button>;
  return (
    <span class="cancel">
      <input placeholder="reason (optional)" value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
      <label title="kill the deploy executables and hooks running now (a bundle goes back to its previous release); they end FAILED">
        <input type="checkbox" id="cancel-kill" checked={kill} onChange={(e) => setKill(e.currentTarget.checked)} /> also kill the applies running now
      </label>
      <label title="once cancelled, bring the targets it changed back to the release desired before it (a linked deployment); refused when there is none">
        <input type="checkbox" id="cancel-revert" checked={revert} onChange={(e) => setRevert(e.currentTarget.checked)} /> and roll back the targets it changed
      </label>
      <button class="danger" id="confirm-cancel" onClick={() => void api.cancel(id, reason, kill, revert).then(onDone, onError)}>Confirm cancel</button>
      <button onClick={() => setAsking(false)}>Keep running</button>
    </span>
  );
}
