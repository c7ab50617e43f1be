// The dashboard: a small single-page app with hash routes.
//   #/                       deployments (filters in the query: #/?app=web&env=prod&state=RUNNING)
//   #/deployments/<id>       one deployment, live
//   #/agents                 agents (filters in the query: #/agents?status=outdated&selector=zone%3Da)
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, AuthRequired, type Session } from "./api.js";
import { AgentsPage } from "./pages/Agents.js";
import { DeploymentPage } from "./pages/Deployment.js";
import { DeploymentsPage } from "./pages/Deployments.js";
import { LoginPage } from "./pages/Login.js";
import "./style.css";

interface Route {
  page: "deployments" | "deployment" | "agents";
  id: string;
  query: URLSearchParams;
}

function parseRoute(hash: string): Route {
  const [path = "", query = ""] = hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  if (parts[0] === "deployments" && parts[1]) return { page: "deployment", id: decodeURIComponent(parts[1]), query: new URLSearchParams(query) };
  if (parts[0] === "agents") return { page: "agents", id: "", query: new URLSearchParams(query) };
  return { page: "deployments", id: "", query: new URLSearchParams(query) };
}

function App() {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  // undefined: asking (the page is drawn meanwhile: its own request gets the
  // same 401 if a token is needed); null: a token is needed.
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [error, setError] = useState("");

  useEffect(() => {
    const onHash = (): void => setRoute(parseRoute(location.hash));
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);
  useEffect(() => {
    api.session().then(setSession, (err: unknown) => (err instanceof AuthRequired ? setSession(null) : setError(String(err))));
  }, []);

  const logout = (): void => {
    api.logout().then(() => setSession(null), (err: unknown) => setError(String(err)));
  };

  let body;
  if (error) body = <p class="error">{error}</p>;
  else if (session === null) body = <LoginPage onLogin={setSession} />;
  else if (route.page === "deployment") body = <DeploymentPage key={route.id} id={route.id} session={session} onAuthLost={() => setSession(null)} />;
  else if (route.page === "agents") body = <AgentsPage query={route.query} onAuthLost={() => setSession(null)} />;
  else body = <DeploymentsPage query={route.query} session={session} onAuthLost={() => setSession(null)} />;

  return (
    <>
      <header>
        <a class="brand" href="#/">nats-deploy</a>
        <nav>
          <a href="#/" class={route.page !== "agents" ? "active" : ""}>Deployments</a>
          <a href="#/agents" class={route.page === "agents" ? "active" : ""}>Agents</a>
        </nav>
        <span class="who">
          {session?.authRequired ? (
            <>
              {session.name} ({session.role}{session.apps ? ` of ${session.apps.join(", ")}` : ""}{session.environments ? ` in ${session.environments.join(", ")}` : ""}) <button class="link" onClick={logout}>log out</button>
            </>
          ) : session ? (
            <span class="muted" title="no grpc.tokens configured">read-only</span>
          ) : null}
        </span>
      </header>
      <main>{body}</main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
