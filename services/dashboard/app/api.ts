// The coordinator's JSON API (services/coordinator/src/http/api.ts): the same
// messages as the gRPC API, as JSON (enums as names, int64 as strings).
export interface Timestamp {
  seconds: string;
  nanos: number;
}

export interface Target {
  agentId: string;
  state: string;
  message: string;
  dispatchedAt: Timestamp | null;
  startedAt: Timestamp | null;
  finishedAt: Timestamp | null;
  lastOutput: string;
  lateResult: string;
  rolledBack: boolean;
}

export interface Deployment {
  id: string;
  requestId: string;
  app: string;
  environment: string;
  changeset: { version: string; artifact: { name: string; digest: string } | null };
  strategy: {
    maxConcurrency: number;
    maxFailures: number;
    deliveryTimeout: Timestamp;
    applyTimeout: Timestamp;
    /** The canary wave's size (absent: none); canarySoak: promotes by itself after it. */
    canary?: number;
    canarySoak?: Timestamp | null;
    autoRevert?: boolean;
    onlyOutdated?: boolean;
    /** Bake time: a target that succeeded keeps its slot this long. */
    soak?: Timestamp | null;
    ignoreStopFailures?: boolean;
    maxPause?: Timestamp | null;
  };
  state: string;
  message: string;
  targets: Target[];
  counts: { state: string; count: number }[];
  lastSequence: string;
  createdAt: Timestamp | null;
  updatedAt: Timestamp | null;
  finishedAt: Timestamp | null;
  /** Who asked: the authenticated identity (token name, certificate CN, or "anonymous (development mode)"). */
  requestedBy: string;
  /** The client's free-text note, never the identity. */
  requestedByNote: string;
  cancelRequested: boolean;
  /** The cancel asked to kill the applies in flight (kill_running). */
  killRequested?: boolean;
  /** Who requested the cancel (authenticated); empty without one. */
  cancelledBy: string;
  /** A convergence deployment: the deployment whose desired release it brings its target to; empty otherwise. */
  convergesTo?: string;
  /** Dispatching stopped by PauseDeployment (running applies go on), and by whom. */
  paused?: boolean;
  pausedBy?: string;
  /** Every canary succeeded; the rollout waits for a promote (or promoteAt, with a canary soak). */
  awaitingPromotion?: boolean;
  promoteAt?: Timestamp | null;
  /** Who promoted the canary wave ("canary_soak" when it promoted itself). */
  promotedBy?: string;
  canaryTargets?: string[];
  /** An automatic revert: the FAILED deployment it reverts. */
  reverts?: string;
  /** A revert or rollback: the release it brings back. */
  restores?: Release | null;
  /** Created with promote_from (deployctl deploy --from-env): the other environment's desired release it deploys. */
  promotedFrom?: (Release & { environment?: string }) | null;
  /** A FAILED deployment with auto_revert: the deployment that reverts it. */
  revertedBy?: string;
  /** A cancel asked with revert: the release its changed targets go back to once it is CANCELLED. */
  cancelRevertsTo?: Release | null;
  /** Created through a freeze of its environment (deployctl deploy --override-freeze): why, and which freeze. */
  freezeOverride?: { reason: string; freeze: Freeze } | null;
}

/** An environment's freeze (deployctl freeze): new deployments to it are refused. */
/** An environment's policy, or one app's there (ListEnvironmentPolicies): what deployments to it are accepted. */
export interface Policy {
  environment: string;
  /** The app it is for; empty: every app's. */
  app?: string;
  /** Only promotions from this environment; empty: any. */
  promoteFrom: string;
  minSoak: { seconds: string | number; nanos?: number } | null;
  requireCanary: boolean;
  reason: string;
  by: string;
  at: Timestamp | null;
}

export interface Freeze {
  environment: string;
  frozen: boolean;
  reason: string;
  by: string;
  at: Timestamp | null;
  /** Absent: until unfrozen. */
  until: Timestamp | null;
  /** A named freeze ("weekends"); empty: the environment's unnamed one. */
  name?: string;
  /** Weekly windows it is in force in, read in timeZone; empty: all the time. */
  windows?: string[];
  timeZone?: string;
  /** Refusing deployments now (a recurring freeze between its windows: false). */
  inForce?: boolean;
}

export interface DeployEvent {
  sequence: string;
  time: Timestamp | null;
  type: string;
  deploymentId: string;
  agentId: string;
  targetState: string;
  message: string;
  deploymentState: string;
  lines: string[];
  /** targets.dispatched, or a deployment.created that dispatched its first targets: the targets it dispatched (agentId is empty). */
  agentIds?: string[];
  /** deployment.created, .cancel_requested, .paused, .resumed, .promoted: who asked (authenticated). */
  actor?: string;
}

export interface Agent {
  id: string;
  environment: string;
  apps: string[];
  host: string;
  version: string;
  lastHeartbeat: Timestamp | null;
  live: boolean;
  labels: Record<string, string>;
  currentReleases: Record<string, string>;
  /** Per app the agent serves: its current release, the desired one and whether it is on it. */
  releases?: AgentRelease[];
  /** Set while the agent is cordoned: it takes no new deployment (deployctl cordon). */
  cordon?: { reason: string; cordonedBy: string; cordonedAt: Timestamp | null };
}

/** The desired release of an app in an environment: the last deployment that succeeded there. */
export interface Release {
  deploymentId: string;
  version: string;
  artifact: { name: string; digest: string } | null;
  release: string;
  succeededAt: Timestamp | null;
}

export interface AgentRelease {
  app: string;
  current: string;
  desired: Release | null;
  /** RELEASE_STATUS_CURRENT | _OUTDATED | _OFFLINE | _NO_DESIRED_RELEASE */
  status: string;
}

export interface Session {
  authRequired: boolean;
  name: string;
  role: string;
  canCancel: boolean;
  /** A deployer token scoped to these environments: it changes nothing elsewhere. */
  environments?: string[];
  /** …and to these apps. */
  apps?: string[];
}

/** A 401: the page shows the login form. */
export class AuthRequired extends Error {}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(path: string, init?: RequestInit): Promise<T> {
  const res = await fetch(path, { credentials: "same-origin", ...init, headers: { Accept: "application/json", ...(init?.body ? { "Content-Type": "application/json" } : {}) } });
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  if (res.status === 401) throw new AuthRequired(body.error ?? "log in");
  if (!res.ok) throw new ApiError(res.status, body.error ?? `${res.status} ${res.statusText}`);
  return body as T;
}

// Relative paths: the page works under a path prefix too.
export const api = {
  session: () => call<Session>("api/session"),
  login: (token: string) => call<Session>("api/session", { method: "POST", body: JSON.stringify({ token }) }),
  logout: () => call<object>("api/session", { method: "DELETE" }),
  deployments: (q: { app?: string; env?: string; state?: string; agent?: string; pageSize?: number; pageToken?: string }, signal?: AbortSignal) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v) p.set(k, String(v));
    return call<{ deployments: Deployment[]; nextPageToken: string }>(`api/deployments?${p.toString()}`, { signal });
  },
  freezes: (signal?: AbortSignal) => call<{ freezes: Freeze[] }>("api/freezes", { signal }),
  policies: (signal?: AbortSignal) => call<{ policies: Policy[] }>("api/policies", { signal }),
  /** FreezeEnvironment: for a while ("2h", "3d") or, with `for` empty, until unfrozen. */
  freeze: (environment: string, reason: string, forText: string) =>
    call<Freeze>("api/freezes", { method: "POST", body: JSON.stringify({ environment, reason, ...(forText ? { for: forText } : {}) }) }),
  unfreeze: (environment: string, name?: string) => call<Freeze>("api/freezes/unfreeze", { method: "POST", body: JSON.stringify({ environment, ...(name ? { name } : {}) }) }),
  deployment: (id: string) => call<Deployment>(`api/deployments/${encodeURIComponent(id)}`),
  cancel: (id: string, reason: string, kill = false, revert = false) =>
    call<Deployment>(`api/deployments/${encodeURIComponent(id)}/cancel`, { method: "POST", body: JSON.stringify({ reason, ...(kill ? { kill } : {}), ...(revert ? { revert } : {}) }) }),
  pause: (id: string, reason: string) => call<Deployment>(`api/deployments/${encodeURIComponent(id)}/pause`, { method: "POST", body: JSON.stringify({ reason }) }),
  resume: (id: string) => call<Deployment>(`api/deployments/${encodeURIComponent(id)}/resume`, { method: "POST", body: "{}" }),
  promote: (id: string) => call<Deployment>(`api/deployments/${encodeURIComponent(id)}/promote`, { method: "POST", body: "{}" }),
  /** The revert deployment (RevertDeployment), not `id`. */
  revert: (id: string) => call<Deployment>(`api/deployments/${encodeURIComponent(id)}/revert`, { method: "POST", body: "{}" }),
  /** A new deployment of the desired release of `from` to `environment` (promote_from), refused unless that is still `deploymentId`'s. */
  promoteRelease: (p: { requestId: string; app: string; environment: string; from: string; deploymentId: string; maxConcurrency: string; canary: string; minSoak: string }) =>
    call<Deployment>("api/promotions", { method: "POST", body: JSON.stringify(p) }),
  /** One page of agents (1,000 by default) of the filter; total and live count every page. */
  agents: (q: { status?: string; selector?: string; pageToken?: string }, signal?: AbortSignal) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v) p.set(k, v);
    return call<{ agents: Agent[]; nextPageToken: string; total: number; live: number }>(`api/agents?${p.toString()}`, { signal });
  },
};

export const eventsUrl = (id: string, after: number): string => `api/deployments/${encodeURIComponent(id)}/events?after=${after}`;
