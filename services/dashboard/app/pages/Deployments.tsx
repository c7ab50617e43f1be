import { useEffect, useState } from "preact/hooks";
import { api, AuthRequired, type Deployment } from "../api.js";
import { short, when } from "../format.js";

const STATES = ["", "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"];

export function progressOf(d: Pick<Deployment, "targets">): { done: number; total: number } {
  const done = d.targets.filter((t) => !["PENDING", "DISPATCHED", "APPLYING"].includes(short(t.state))).length;
  return { done, total: d.targets.length };
}

export function DeploymentsPage({ query, onAuthLost }: { query: URLSearchParams; onAuthLost: () => void }) {
  const filters = { app: query.get("app") ?? "", env: query.get("env") ?? "", state: query.get("state") ?? "" };
  const [rows, setRows] = useState<Deployment[] | undefined>(undefined);
  const [next, setNext] = useState("");
  const [error, setError] = useState("");
  const [form, setForm] = useState(filters);

  const load = (pageToken = ""): void => {
    api.deployments({ ...filters, pageToken }).then(
      (r) => {
        setRows((prev) => (pageToken ? [...(prev ?? []), ...r.deployments] : r.deployments));
        setNext(r.nextPageToken);
        setError("");
      },
      (err: unknown) => (err instanceof AuthRequired ? onAuthLost() : setError(err instanceof Error ? err.message : String(err))),
    );
  };
  useEffect(() => load(), [filters.app, filters.env, filters.state]);

  const apply = (e: Event): void => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) if (v.trim()) p.set(k, v.trim());
    location.hash = `#/?${p.toString()}`;
  };

  return (
    <section>
      <div class="bar">
        <h1>Deployments</h1>
        <form class="filters" onSubmit={apply}>
          <input name="app" placeholder="app" value={form.app} onInput={(e) => setForm({ ...form, app: e.currentTarget.value })} />
          <input name="env" placeholder="environment" value={form.env} onInput={(e) => setForm({ ...form, env: e.currentTarget.value })} />
          <select name="state" value={form.state} onChange={(e) => setForm({ ...form, state: e.currentTarget.value })}>
            {STATES.map((s) => <option key={s} value={s}>{s || "any state"}</option>)}
          </select>
          <button type="submit">Filter</button>
          <button type="button" onClick={() => load()}>Refresh</button>
        </form>
      </div>
      {error && <p class="error">{error}</p>}
      {rows?.length === 0 && <p class="muted">No deployment matches.</p>}
      {rows && rows.length > 0 && (
        <table class="deployments">
          <thead>
            <tr><th>Deployment</th><th>App</th><th>Environment</th><th>Version</th><th>State</th><th>Progress</th><th>Requested by</th><th>Created</th></tr>
          </thead>
          <tbody>
            {rows.map((d) => {
              const p = progressOf(d);
              return (
                <tr key={d.id} data-deployment={d.id}>
                  <td class="mono"><a href={`#/deployments/${encodeURIComponent(d.id)}`}>{d.id}</a></td>
                  <td>{d.app}</td>
                  <td>{d.environment}</td>
                  <td class="mono">{d.changeset.version}</td>
                  <td><span class={`state s-${short(d.state)}`}>{short(d.state)}</span></td>
                  <td><progress max={p.total || 1} value={p.done} /> {p.done}/{p.total}</td>
                  <td>{d.requestedBy || "—"}</td>
                  <td>{when(d.createdAt)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {next && <button onClick={() => load(next)}>More</button>}
    </section>
  );
}
