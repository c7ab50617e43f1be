// Deployments, newest first, filtered by the URL (#/?app=&env=&state=&agent=:
// with an agent, its history, each row with what the deployment did on it), kept
// current by polling (poll.ts says why not a stream). A refresh re-reads as
// many rows as are shown ("More" included) and replaces them in place, keyed
// by id: no flicker, the filter form keeps what is typed in it.
import { useRef, useState } from "preact/hooks";
import { api, AuthRequired, type Deployment, type Freeze, type Policy, type Session } from "../api.js";
import { freezeText, policyText, short, when } from "../format.js";
import { OutcomeBar, outcomeOf } from "../outcome.js";
import { usePoll } from "../poll.js";

const STATES = ["", "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"];
const PAGE_SIZE = 20;
/** ListDeployments' largest page (services/coordinator/src/requests.ts). */
const MAX_PAGE_SIZE = 200;

export function DeploymentsPage({ query, session, onAuthLost }: { query: URLSearchParams; session?: Session | undefined; onAuthLost: () => void }) {
  const filters = { app: query.get("app") ?? "", env: query.get("env") ?? "", state: query.get("state") ?? "", agent: query.get("agent") ?? "" };
  const [rows, setRows] = useState<Deployment[] | undefined>(undefined);
  const [freezes, setFreezes] = useState<Freeze[]>([]);
  const [policies, setPolicies] = useState<Policy[]>([]);
  const [next, setNext] = useState("");
  const [error, setError] = useState("");
  const [form, setForm] = useState(filters);
  const [asOf, setAsOf] = useState(0);
  // How many rows the reader has asked to see; a refresh re-reads that many.
  const shown = useRef(PAGE_SIZE);
  const lastAnswer = useRef("");

  const report = (err: unknown): void => {
    if (err instanceof AuthRequired) onAuthLost();
    else setError(err instanceof Error ? err.message : String(err));
  };

  const refresh = usePoll(
    async (signal) => {
      const want = shown.current;
      // Beside the rows: the environments frozen now (a failed read keeps the banner as it was).
      void api.freezes(signal).then((f) => !signal.aborted && setFreezes(f.freezes), () => undefined);
      // And their policies (a coordinator older than policies: none shown).
      void api.policies(signal).then((p) => !signal.aborted && setPolicies(p.policies), () => undefined);
      const r = await api.deployments({ ...filters, pageSize: Math.min(MAX_PAGE_SIZE, want) }, signal).catch((err: unknown) => {
        if (!signal.aborted) report(err); // the rows shown stay; the poll backs off
        throw err;
      });
      // Filters changed (signal) or "More" was pressed meanwhile: this answer is stale.
      if (signal.aborted || want !== shown.current) return;
      setError("");
      setAsOf(Date.now());
      const text = JSON.stringify(r);
      if (text === lastAnswer.current) return; // nothing changed: the rows keep their identity
      lastAnswer.current = text;
      setRows(r.deployments);
      setNext(r.nextPageToken);
    },
    [filters.app, filters.env, filters.state, filters.agent],
  );

  const more = (): void => {
    api.deployments({ ...filters, pageToken: next }).then(
      (r) => {
        // Dedupe: a refresh may have moved the window since the token was issued.
        setRows((prev) => {
          const have = new Set((prev ?? []).map((d) => d.id));
          const all = [...(prev ?? []), ...r.deployments.filter((d) => !have.has(d.id))];
          shown.current = Math.max(PAGE_SIZE, all.length);
          return all;
        });
        setNext(r.nextPageToken);
        lastAnswer.current = "";
      },
      report,
    );
  };

  const apply = (e: Event): void => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) if (v.trim()) p.set(k, v.trim());
    shown.current = PAGE_SIZE;
    location.hash = `#/?${p.toString()}`;
  };

  return (
    <section>
      <div class="bar">
        <h1>Deployments</h1>
        <form class="filters" onSubmit={apply}>
          <input name="app" placeholder="app" value={form.app} onInput={(e) => setForm({ ...form, app: e.currentTarget.value })} />
          <input name="env" placeholder="environment" value={form.env} onInput={(e) => setForm({ ...form, env: e.currentTarget.value })} />
          <input name="agent" placeholder="agent" value={form.agent} onInput={(e) => setForm({ ...form, agent: e.currentTarget.value })} />
          <select name="state" value={form.state} onChange={(e) => setForm({ ...form, state: e.currentTarget.value })}>
            {STATES.map((s) => <option key={s} value={s}>{s || "any state"}</option>)}
          </select>
          <button type="submit">Filter</button>
          <button type="button" onClick={refresh}>Refresh</button>
        </form>
        {asOf > 0 && <span class="muted" id="as-of" title="refreshed every 2 s while the page is visible">as of {new Date(asOf).toLocaleTimeString()}</span>}
      </div>
      {error && <p class="error">{error}</p>}
      {freezes.filter((f) => f.inForce !== false).map((f) => (
        <p class="frozen" key={`${f.environment}.${f.name ?? ""}`} data-frozen={f.environment}>
          <strong>{f.environment} is frozen</strong>: new deployments to it are refused (rollbacks and convergence still run). {freezeText(f)}
          {session?.canCancel === true && <UnfreezeButton freeze={f} onDone={refresh} onError={report} />}
        </p>
      ))}
      {policies.map((p) => (
        <p class="policy" key={`${p.environment}.${p.app ?? ""}`} data-policy={p.app ? `${p.environment}.${p.app}` : p.environment}>
          <strong>
            {p.app ? `${p.app} in ${p.environment}` : p.environment} accepts {policyText(p)}
          </strong>
          : other deployments {p.app ? `of ${p.app} ` : ""}to it are refused (rollbacks, reverts and convergence still run). Set by {p.by || "—"} at {when(p.at)}
          {p.reason ? `: ${p.reason}` : ""} (deployctl policy)
        </p>
      ))}
      {session?.canCancel === true && <FreezeForm onDone={refresh} onError={report} />}
      {rows?.length === 0 && <p class="muted">No deployment matches.</p>}
      {rows && rows.length > 0 && (
        <table class="deployments">
          <thead>
            <tr><th>Deployment</th><th>App</th><th>Environment</th><th>Version</th><th>State</th><th>Progress</th>{filters.agent && <th>On {filters.agent}</th>}<th>Requested by</th><th>Created</th></tr>
          </thead>
          <tbody>
            {rows.map((d) => (
              <tr key={d.id} data-deployment={d.id}>
                <td class="mono"><a href={`#/deployments/${encodeURIComponent(d.id)}`}>{d.id}</a></td>
                <td>{d.app}</td>
                <td>{d.environment}</td>
                <td class="mono">{d.changeset.version}</td>
                <td>
                  <span class={`state s-${short(d.state)}`}>{short(d.state)}</span>
                  {d.paused && <span class="badge waiting">paused</span>}
                  {d.awaitingPromotion && <span class="badge waiting">awaiting promotion</span>}
                  {d.reverts && <span class="badge waiting" title={`auto_revert of ${d.reverts}`}>revert</span>}
                  {!d.reverts && d.restores?.release && <span class="badge waiting" title={`restores ${d.restores.release}`}>rollback</span>}
                  {d.freezeOverride?.freeze && <span class="badge waiting" data-freeze-override="true" title={`through a freeze: ${d.freezeOverride.reason}`}>freeze override</span>}
                </td>
                <td class="progress-cell"><OutcomeBar outcome={outcomeOf(statesOf(d), d.state)} /></td>
                {filters.agent && <OnAgent d={d} agent={filters.agent} />}
                <td>{d.requestedBy || "—"}</td>
                <td>{when(d.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {next && <button onClick={more}>More</button>}
    </section>
  );
}

/** What a deployment did on the agent whose history is shown: its target's state and message (ListDeployments with agent_id gives that one target). */
function OnAgent({ d, agent }: { d: Deployment; agent: string }) {
  const t = d.targets.find((x) => x.agentId === agent);
  if (!t) return <td>—</td>;
  return (
    <td data-on-agent={short(t.state)} title={t.message}>
      <span class={`state s-${short(t.state)}`}>{short(t.state)}</span>
      {t.rolledBack && <span class="badge waiting">rolled back</span>} <span class="muted">{t.message}</span>
    </td>
  );
}

/** Every target's state, from the counts: `targets` holds only the first 1,000 of a large deployment. */
function statesOf(d: Deployment): string[] {
  return d.counts.flatMap((c) => Array<string>(c.count).fill(c.state));
}

/**
 * FreezeEnvironment from the page: an incident's freeze, for a while or
 * until unfrozen. Weekly windows and named freezes are deployctl's (freeze
 * --window, --name); the page lifts any of them.
 */
function FreezeForm({ onDone, onError }: { onDone: () => void; onError: (e: unknown) => void }) {
  const [asking, setAsking] = useState(false);
  const [environment, setEnvironment] = useState("");
  const [reason, setReason] = useState("");
  const [forText, setFor] = useState("");
  if (!asking) return <p><button id="freeze" onClick={() => setAsking(true)}>Freeze an environment…</button></p>;
  const submit = (e: Event): void => {
    e.preventDefault();
    api.freeze(environment.trim(), reason, forText.trim()).then(() => {
      setAsking(false);
      setReason("");
      setFor("");
      onDone();
    }, onError);
  };
  return (
    <form class="freeze" onSubmit={submit}>
      <input id="freeze-env" placeholder="environment" value={environment} onInput={(e) => setEnvironment(e.currentTarget.value)} />
      <input id="freeze-reason" placeholder="reason (required: whoever is refused reads it)" value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
      <input id="freeze-for" placeholder="for: 2h, 3d (empty: until unfrozen)" value={forText} onInput={(e) => setFor(e.currentTarget.value)} />
      <button class="danger" id="confirm-freeze" type="submit">Freeze</button>
      <button type="button" onClick={() => setAsking(false)}>Keep open</button>
    </form>
  );
}

/** UnfreezeEnvironment of this freeze (its name, if any). */
function UnfreezeButton({ freeze, onDone, onError }: { freeze: Freeze; onDone: () => void; onError: (e: unknown) => void }) {
  const [asking, setAsking] = useState(false);
  if (!asking) return <> <button class="unfreeze" onClick={() => setAsking(true)}>Unfreeze…</button></>;
  return (
    <span class="unfreeze">
      {" "}accept deployments to {freeze.environment} again{freeze.name ? ` (lifts "${freeze.name}" only)` : ""}?
      <button class="danger confirm-unfreeze" onClick={() => void api.unfreeze(freeze.environment, freeze.name).then(onDone, onError)}>Confirm unfreeze</button>
      <button onClick={() => setAsking(false)}>Keep frozen</button>
    </span>
  );
}
