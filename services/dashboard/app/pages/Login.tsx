import { useState } from "preact/hooks";
import { api, type Session } from "../api.js";

/** Asks for a gRPC token (viewer or deployer); the coordinator keeps it in an HttpOnly cookie. */
export function LoginPage({ onLogin }: { onLogin: (s: Session) => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState("");
  const submit = (e: Event): void => {
    e.preventDefault();
    setError("");
    api.login(token).then(onLogin, (err: unknown) => setError(err instanceof Error ? err.message : String(err)));
  };
  return (
    <form class="login" onSubmit={submit}>
      <h1>Log in</h1>
      <p class="muted">This coordinator requires a token: the same bearer tokens as its gRPC API. A viewer sees; a deployer may also cancel.</p>
      <input type="password" name="token" autocomplete="current-password" placeholder="token" value={token} onInput={(e) => setToken(e.currentTarget.value)} />
      <button type="submit">Log in</button>
      {error && <p class="error">{error}</p>}
    </form>
  );
}
