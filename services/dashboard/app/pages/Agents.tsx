// Agents: labels, per app the current release, the desired one and the
// status (current, outdated, offline), last heartbeat, live or not;
// kept current by polling (poll.ts says why not a stream: "live" is the age
// of a heartbeat, which changes with no event at all). A page of 1,000 at a
// time, filtered by status and label selector on the coordinator: a fleet
// of 10,000 was ~9 MB every 2 s, and as many rows to render.
import { useState } from "preact/hooks";
import { api, AuthRequired, type Agent, type AgentRelease } from "../api.js";
import { ago, when } from "../format.js";
import { usePoll } from "../poll.js";

const STATUS_TEXT: Record<string, [string, string]> = {
  RELEASE_STATUS_CURRENT: ["current", "on the desired release"],
  RELEASE_STATUS_OUTDATED: ["outdated", "live, on another release"],
  RELEASE_STATUS_OFFLINE: ["offline", "not live"],
  RELEASE_STATUS_NO_DESIRED_RELEASE: ["none", "no deployment of the app has succeeded in this environment yet"],
};

function ReleaseStatusBadge({ status }: { status: string }) {
  const [text, title] = STATUS_TEXT[status] ?? ["—", ""];
  return <span class={`badge rs-${text}`} data-status={text} title={title}>{text}</span>;
}

/** Per app: from the API, or (an older coordinator) the current releases alone. */
function releasesOf(a: Agent): AgentRelease[] {
  if (a.releases) return a.releases;
  return a.apps.map((app) => ({ app, current: a.currentReleases?.[app] ?? "", desired: null, status: "" }));
}

const STATUSES = ["", "current", "outdated", "offline", "none"];

export function AgentsPage({ query, onAuthLost }: { query: URLSearchParams; onAuthLost: () => void }) {
  const filters = { status: query.get("status") ?? "", selector: query.get("selector") ?? "" };
  const [form, setForm] = useState(filters);
  const [agents, setAgents] = useState<Agent[] | undefined>(undefined);
  const [counts, setCounts] = useState({ total: 0, live: 0 });
  // The tokens of the pages before this one (the first page's is ""), and the next one's.
  const [pages, setPages] = useState<string[]>([]);
  const [next, setNext] = useState("");
  const [error, setError] = useState("");
  const [loadedAt, setLoadedAt] = useState(Date.now());
  const pageToken = pages.at(-1) ?? "";
  const refresh = usePoll(async (signal) => {
    const r = await api.agents({ ...filters, pageToken }, signal).catch((err: unknown) => {
      if (signal.aborted) throw err;
      if (err instanceof AuthRequired) onAuthLost();
      else setError(err instanceof Error ? err.message : String(err)); // the rows shown stay
      throw err;
    });
    if (signal.aborted) return;
    // Rows are keyed by agent id: a refresh changes only the cells that changed.
    setAgents(r.agents);
    setCounts({ total: r.total ?? r.agents.length, live: r.live ?? r.agents.filter((a) => a.live).length });
    setNext(r.nextPageToken ?? "");
    setLoadedAt(Date.now());
    setError("");
  }, [filters.status, filters.selector, pageToken]);
  const apply = (e: Event): void => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) if (v.trim()) p.set(k, v.trim());
    setPages([]);
    location.hash = `#/agents?${p.toString()}`;
  };
  const filtered = filters.status !== "" || filters.selector !== "";
  return (
    <section>
      <div class="bar">
        <h1>Agents</h1>
        <form class="filters" onSubmit={apply}>
          <select name="status" value={form.status} onChange={(e) => setForm({ ...form, status: e.currentTarget.value })}>
            {STATUSES.map((s) => <option key={s} value={s}>{s || "any status"}</option>)}
          </select>
          <input name="selector" placeholder="labels: zone=a,role in (web)" value={form.selector} onInput={(e) => setForm({ ...form, selector: e.currentTarget.value })} />
          <button type="submit">Filter</button>
          <button type="button" onClick={refresh}>Refresh</button>
        </form>
        {agents && (
          <span class="muted" id="agents-count">
            {counts.live} of {counts.total} live{agents.length < counts.total ? `, ${agents.length} shown` : ""}, as of {new Date(loadedAt).toLocaleTimeString()}
          </span>
        )}
      </div>
      {error && <p class="error">{error}</p>}
      {agents?.length === 0 && <p class="muted">{filtered ? "No agent matches." : "No agent has registered."}</p>}
      {agents && agents.length > 0 && (
        <table class="agents">
          <thead>
            <tr><th>Agent</th><th>Live</th><th>Environment</th><th>Apps</th><th>Current release</th><th>Desired release</th><th>Status</th><th>Labels</th><th>Host</th><th>Version</th><th>Last heartbeat</th></tr>
          </thead>
          <tbody>
            {agents.map((a) => (
              <tr key={a.id} data-agent={a.id}>
                <td class="mono"><a href={`#/?agent=${encodeURIComponent(a.id)}`} title={`deployments to ${a.id}`}>{a.id}</a></td>
                <td>
                  <span class={`badge ${a.live ? "ok" : "down"}`}>{a.live ? "live" : "not live"}</span>
                  {a.cordon && (
                    <span class="badge cordoned" data-cordoned="true" title={`cordoned by ${a.cordon.cordonedBy} at ${when(a.cordon.cordonedAt)}${a.cordon.reason ? `: ${a.cordon.reason}` : ""}: takes no new deployment`}>
                      cordoned
                    </span>
                  )}
                </td>
                <td>{a.environment}</td>
                <td>{a.apps.join(", ")}</td>
                <td class="mono">{releasesOf(a).map((r) => <div key={r.app}>{r.app}: {r.current || "—"}</div>)}</td>
                <td class="mono">
                  {releasesOf(a).map((r) => (
                    <div key={r.app} title={r.desired ? `deployment ${r.desired.deploymentId}, succeeded ${when(r.desired.succeededAt)}` : "no deployment has succeeded yet"}>
                      {r.app}: {r.desired ? <a href={`#/deployments/${encodeURIComponent(r.desired.deploymentId)}`}>{r.desired.release}</a> : "—"}
                    </div>
                  ))}
                </td>
                <td>{releasesOf(a).map((r) => <div key={r.app}><ReleaseStatusBadge status={r.status} /></div>)}</td>
                <td>{Object.entries(a.labels ?? {}).map(([k, v]) => <span class="label" key={k}>{k}={v}</span>)}</td>
                <td class="mono">{a.host}</td>
                <td class="mono">{a.version}</td>
                <td title={when(a.lastHeartbeat)}>{ago(a.lastHeartbeat, loadedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {pages.length > 0 && <button onClick={() => setPages(pages.slice(0, -1))}>Previous</button>}
      {next && <button onClick={() => setPages([...pages, next])}>Next</button>}
    </section>
  );
}
