// Agents: labels, current release per app, last heartbeat, live or not;
// kept current by polling (poll.ts says why not a stream: "live" is the age
// of a heartbeat, which changes with no event at all).
import { useState } from "preact/hooks";
import { api, AuthRequired, type Agent } from "../api.js";
import { ago, when } from "../format.js";
import { usePoll } from "../poll.js";

export function AgentsPage({ onAuthLost }: { onAuthLost: () => void }) {
  const [agents, setAgents] = useState<Agent[] | undefined>(undefined);
  const [error, setError] = useState("");
  const [loadedAt, setLoadedAt] = useState(Date.now());
  const refresh = usePoll(async (signal) => {
    const r = await api.agents(signal).catch((err: unknown) => {
      if (signal.aborted) throw err;
      if (err instanceof AuthRequired) onAuthLost();
      else setError(err instanceof Error ? err.message : String(err)); // the rows shown stay
      throw err;
    });
    if (signal.aborted) return;
    // Rows are keyed by agent id: a refresh changes only the cells that changed.
    setAgents(r.agents);
    setLoadedAt(Date.now());
    setError("");
  }, []);
  return (
    <section>
      <div class="bar">
        <h1>Agents</h1>
        <button onClick={refresh}>Refresh</button>
        {agents && <span class="muted">{agents.filter((a) => a.live).length} of {agents.length} live, as of {new Date(loadedAt).toLocaleTimeString()}</span>}
      </div>
      {error && <p class="error">{error}</p>}
      {agents?.length === 0 && <p class="muted">No agent has registered.</p>}
      {agents && agents.length > 0 && (
        <table class="agents">
          <thead>
            <tr><th>Agent</th><th>Live</th><th>Environment</th><th>Apps</th><th>Current release</th><th>Labels</th><th>Host</th><th>Version</th><th>Last heartbeat</th></tr>
          </thead>
          <tbody>
            {agents.map((a) => (
              <tr key={a.id} data-agent={a.id}>
                <td class="mono">{a.id}</td>
                <td><span class={`badge ${a.live ? "ok" : "down"}`}>{a.live ? "live" : "not live"}</span></td>
                <td>{a.environment}</td>
                <td>{a.apps.join(", ")}</td>
                <td class="mono">{Object.entries(a.currentReleases ?? {}).map(([app, rel]) => <div key={app}>{app}: {rel}</div>)}</td>
                <td>{Object.entries(a.labels ?? {}).map(([k, v]) => <span class="label" key={k}>{k}={v}</span>)}</td>
                <td class="mono">{a.host}</td>
                <td class="mono">{a.version}</td>
                <td title={when(a.lastHeartbeat)}>{ago(a.lastHeartbeat, loadedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
