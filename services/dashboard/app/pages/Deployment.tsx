// One deployment, live: the snapshot from GET /api/deployments/:id, then every
// event from the start over Server-Sent Events. Events up to the snapshot's
// lastSequence only fill the log and the output lines (the snapshot already
// has their effect); later ones move the targets.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, AuthRequired, type DeployEvent, type Deployment, type Session } from "../api.js";
import { clock, seconds, short, TERMINAL, when } from "../format.js";
import { follow, type Follow, type LiveStatus } from "../live.js";

const TARGET_STATES = ["PENDING", "DISPATCHED", "APPLYING", "SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "SKIPPED"];
const LINES_KEPT = 8;
const LOG_SHOWN = 500;

interface TargetView {
  state: string;
  message: string;
  lines: string[];
}

interface Model {
  snapshotSeq: number;
  state: string;
  targets: Map<string, TargetView>;
  events: DeployEvent[];
  /** Every sequence received, duplicates included (read by the browser test through window.__dashboard). */
  received: number[];
  lastSeq: number;
}

declare global {
  interface Window {
    __dashboard?: { received: number[]; reconnect(): void };
  }
}

function modelOf(d: Deployment): Model {
  const targets = new Map<string, TargetView>();
  for (const t of d.targets) targets.set(t.agentId, { state: short(t.state), message: t.message, lines: [] });
  return { snapshotSeq: Number(d.lastSequence), state: short(d.state), targets, events: [], received: [], lastSeq: 0 };
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
  // A halt or cancel moves pending targets without an event of their own.
  if (e.type === "deployment.halted" || e.type === "deployment.cancel_requested") {
    for (const v of m.targets.values()) if (v.state === "PENDING") v.state = e.type === "deployment.halted" ? "SKIPPED" : "CANCELLED";
  }
}

export function DeploymentPage({ id, session, onAuthLost }: { id: string; session: Session; onAuthLost: () => void }) {
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
    let live = true;
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
      stream.current = follow(id, 0, {
        event: (e, seq) => {
          applyEvent(m, e, seq);
          redraw();
        },
        status: setStatus,
        // The terminal event was the last: take the final record (messages, finish time).
        end: () => {
          api.deployment(id).then((f) => {
            if (!live) return;
            setDep(f);
            for (const t of f.targets) {
              const v = m.targets.get(t.agentId);
              if (v) Object.assign(v, { state: short(t.state), message: t.message });
            }
            m.state = short(f.state);
            redraw();
          }, fail);
        },
      });
      window.__dashboard = { received: m.received, reconnect: () => stream.current?.reconnect() };
    }, fail);
    return () => {
      live = false;
      cancelAnimationFrame(frame);
      stream.current?.close();
    };
  }, [id]);

  if (error) return <p class="error">{error}</p>;
  const m = model.current;
  if (!dep || !m) return <p class="muted">loading…</p>;

  const counts = new Map<string, number>();
  for (const t of m.targets.values()) counts.set(t.state, (counts.get(t.state) ?? 0) + 1);
  const total = m.targets.size;
  const done = total - (counts.get("PENDING") ?? 0) - (counts.get("DISPATCHED") ?? 0) - (counts.get("APPLYING") ?? 0);
  const terminal = TERMINAL.has(m.state);

  return (
    <section class="deployment" data-state={m.state}>
      <div class="bar">
        <h1 class="mono">{dep.id}</h1>
        <span class={`state big s-${m.state}`} id="deployment-state">{m.state}</span>
        <span class={`live ${status}`} id="live-status">{status === "ended" ? "finished" : status}</span>
        {session.canCancel && !terminal && !dep.cancelRequested && <CancelButton id={id} onDone={setDep} onError={fail} />}
      </div>
      {dep.message && <p class="message">{dep.message}</p>}
      <dl class="facts">
        <dt>App</dt><dd>{dep.app} <span class="mono">{dep.changeset.version}</span></dd>
        <dt>Environment</dt><dd>{dep.environment}</dd>
        <dt>Requested by</dt><dd>{dep.requestedBy || "—"} at {when(dep.createdAt)}</dd>
        <dt>Strategy</dt>
        <dd>
          {dep.strategy.maxConcurrency} at a time, halt when more than {dep.strategy.maxFailures} fail; delivery timeout {seconds(dep.strategy.deliveryTimeout)}, apply timeout {seconds(dep.strategy.applyTimeout)}
        </dd>
        {dep.changeset.artifact && (<><dt>Artifact</dt><dd class="mono">{dep.changeset.artifact.name} {dep.changeset.artifact.digest.slice(0, 19)}…</dd></>)}
        <dt>Finished</dt><dd>{when(dep.finishedAt)}</dd>
      </dl>

      <div class="progress">
        <progress max={total || 1} value={done} /> <span id="progress-text">{done} of {total} target(s) done</span>
        <span class="counts">
          {TARGET_STATES.filter((s) => counts.get(s)).map((s) => <span key={s} class={`state s-${s}`}>{s} {counts.get(s)}</span>)}
        </span>
      </div>

      <div class="grid" id="targets">
        {[...m.targets.entries()].map(([agentId, t]) => (
          <div key={agentId} class={`tile s-${t.state}`} data-agent={agentId} data-state={t.state} title={t.message || t.state}>
            <div class="agent mono">{agentId}</div>
            <div class="tstate">{t.state}</div>
            <div class="last mono">{t.lines.at(-1) ?? ""}</div>
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
              <td><span class={`state s-${t.state}`}>{t.state}</span></td>
              <td>{t.message}</td>
              <td><pre class="output" data-output={agentId}>{t.lines.join("\n")}</pre></td>
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

function CancelButton({ id, onDone, onError }: { id: string; onDone: (d: Deployment) => void; onError: (e: unknown) => void }) {
  const [asking, setAsking] = useState(false);
  const [reason, setReason] = useState("");
  if (!asking) return <button class="danger" id="cancel" onClick={() => setAsking(true)}>Cancel deployment…</button>;
  return (
    <span class="cancel">
      <input placeholder="reason (optional)" value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
      <button class="danger" id="confirm-cancel" onClick={() => void api.cancel(id, reason).then(onDone, onError)}>Confirm cancel</button>
      <button onClick={() => setAsking(false)}>Keep running</button>
    </span>
  );
}
