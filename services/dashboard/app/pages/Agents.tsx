import { useEffect, useState } from "preact/hooks";
import { api, AuthRequired, type Agent } from "../api.js";
import { ago, when } from "../format.js";

export function AgentsPage({ onAuthLost }: { onAuthLost: () => void }) {
  const [agents, setAgents] = useState<Agent[] | undefined>(undefined);
  const [error, setError] = useState("");
  const [loadedAt, setLoadedAt] = useState(Date.now());
  const load = (): void => {
    api.agents().then(
      (r) => {
        setAgents(r.agents);
        setLoadedAt(Date.now());
        setError("");
      },
      (err: unknown) => (err instanceof AuthRequired ? onAuthLost() : setError(String(err))),
    );
  };
  useEffect(load, []);
  return (
    <section>
      <div class="bar">
        <h1>Agents</h1>
        <button onClick={load}>Refresh</button>
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
