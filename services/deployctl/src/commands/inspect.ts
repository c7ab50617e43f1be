// Read-only commands: get, list, agents, artifacts. Tables for people,
// the server's messages as JSON for scripts.
import { matchesSelector, parseSelector } from "../../../shared/src/selector.js";
import { EXIT, type ExitCode } from "../errors.js";
import { clientFor, type CommonOptions } from "../options.js";
import type { DeploymentState } from "../../../shared/src/gen/deploy/v1/DeploymentState.js";
import { describeDeployment } from "../render/deployment.js";
import { jsonDocument } from "../render/json.js";
import { ago, bytes, colorReleaseStatus, colorState, countOf, isoTime, releaseStatusText, shortDigest, shortState, table, truncate } from "../render/format.js";

const print = (s: string): boolean => process.stdout.write(s.endsWith("\n") ? s : s + "\n");

export interface GetOptions extends CommonOptions {
  pageSize?: number;
  pageToken?: string;
  /** TARGET_STATE_… */
  state?: string;
}

export async function getCommand(id: string, o: GetOptions): Promise<ExitCode> {
  const client = clientFor(o);
  try {
    const d = await client.getDeployment(id, {
      ...(o.pageSize === undefined ? {} : { pageSize: o.pageSize }),
      ...(o.pageToken === undefined ? {} : { pageToken: o.pageToken }),
      ...(o.state === undefined ? {} : { targetState: o.state }),
    });
    if (o.json) {
      print(jsonDocument("deploy.v1.Deployment", d));
      return EXIT.OK;
    }
    print(describeDeployment(d));
    // A large deployment's targets come a page at a time: say how to see the next.
    if (d.nextPageToken) {
      const more = [`--page-token ${d.nextPageToken}`, ...(o.pageSize === undefined ? [] : [`--page-size ${o.pageSize}`]), ...(o.state === undefined ? [] : [`--state ${o.state.replace(/^TARGET_STATE_/, "").toLowerCase()}`])];
      print(`  (${d.targets?.length ?? 0} of ${d.targetCount ?? "?"} targets shown; next page: deployctl get ${id} ${more.join(" ")})`);
    }
    return EXIT.OK;
  } finally {
    client.close();
  }
}

export interface ListOptions extends CommonOptions {
  app?: string;
  env?: string;
  state?: string;
  /** Only deployments this agent was a target of, each with its own target's state. */
  agent?: string;
  limit?: number;
}

export async function listCommand(o: ListOptions): Promise<ExitCode> {
  const client = clientFor(o);
  try {
    const limit = o.limit ?? 20;
    const ask = (pageSize: number, pageToken: string) =>
      client.listDeployments({ app: o.app ?? "", environment: o.env ?? "", state: o.state as DeploymentState | undefined, agentId: o.agent ?? "", pageSize, pageToken });
    const res = await ask(limit, "");
    // An agent's history may come in short pages (the coordinator bounds how
    // many deployments one call looks at): page on up to the limit.
    while (o.agent && res.nextPageToken && (res.deployments ?? []).length < limit) {
      const more = await ask(limit - (res.deployments ?? []).length, res.nextPageToken);
      res.deployments = [...(res.deployments ?? []), ...(more.deployments ?? [])];
      res.nextPageToken = more.nextPageToken;
    }
    const ds = res.deployments ?? [];
    if (o.json) {
      print(jsonDocument("deploy.v1.ListDeploymentsResponse", res));
      return EXIT.OK;
    }
    if (ds.length === 0) {
      print(o.agent ? `no deployments to agent ${o.agent}` : "no deployments");
      return EXIT.OK;
    }
    // Running but waiting for someone: the STATE column says so.
    const state = (d: (typeof ds)[number]): string => shortState(d.state) + (d.paused ? " (paused)" : d.awaitingPromotion ? " (awaiting promotion)" : "");
    if (o.agent) {
      // The agent's history: what each deployment did on it.
      const rows = ds.map((d) => {
        const t = d.targets?.find((x) => x.agentId === o.agent);
        return [d.id ?? "-", d.app ?? "-", d.environment ?? "-", d.changeset?.version ?? "-", state(d), t ? shortState(t.state) + (t.rolledBack ? " (rolled back)" : "") : "-", isoTime(t?.finishedAt ?? d.createdAt), d.requestedBy || "-", truncate(`${t?.message ?? ""}${t?.lateResult ? ` (then the agent's result: ${t.lateResult})` : ""}`, 160)];
      });
      print(
        table(["ID", "APP", "ENV", "VERSION", "STATE", `ON ${o.agent}`, "FINISHED/CREATED", "BY", "MESSAGE"], rows, (col, row, padded) =>
          col === 4 ? colorState(ds[row]!.state, padded) : col === 5 ? colorState(ds[row]!.targets?.find((x) => x.agentId === o.agent)?.state, padded) : padded,
        ),
      );
    } else {
      const rows = ds.map((d) => [
        d.id ?? "-",
        d.app ?? "-",
        d.environment ?? "-",
        d.changeset?.version ?? "-",
        state(d),
        `${countOf(d, "SUCCEEDED")}/${d.targetCount || (d.targets?.length ?? 0)}`,
        isoTime(d.createdAt),
        d.requestedBy || "-",
      ]);
      print(table(["ID", "APP", "ENV", "VERSION", "STATE", "OK/TARGETS", "CREATED", "BY"], rows, (col, row, padded) => (col === 4 ? colorState(ds[row]!.state, padded) : padded)));
    }
    if (res.nextPageToken) print(`(more: raise --limit, at most 200)`);
    return EXIT.OK;
  } finally {
    client.close();
  }
}

export interface AgentsOptions extends CommonOptions {
  app?: string;
  env?: string;
  selector?: string;
  status?: "current" | "outdated" | "offline" | "none";
}

const STATUS_ENUM = { current: "RELEASE_STATUS_CURRENT", outdated: "RELEASE_STATUS_OUTDATED", offline: "RELEASE_STATUS_OFFLINE", none: "RELEASE_STATUS_NO_DESIRED_RELEASE" } as const;

export async function agentsCommand(o: AgentsOptions): Promise<ExitCode> {
  const client = clientFor(o);
  try {
    const status = o.status ? STATUS_ENUM[o.status] : undefined;
    const fetched = await client.listAgents({ app: o.app ?? "", environment: o.env ?? "", selector: o.selector ?? "", ...(status ? { status } : {}) });
    // The coordinator filters; so does this, for one from before the filters.
    const sel = o.selector ? parseSelector(o.selector, "--selector") : undefined;
    const has = (r: { app?: string; status?: string }): boolean => r.status === status && (!o.app || r.app === o.app);
    const res = { ...fetched, agents: (fetched.agents ?? []).filter((a) => (!sel || matchesSelector(sel, a.labels ?? {})) && (!status || (a.releases ?? []).some(has))) };
    const agents = res.agents;
    if (o.json) {
      print(jsonDocument("deploy.v1.ListAgentsResponse", res));
      return EXIT.OK;
    }
    if (agents.length === 0) {
      print("no agents");
      return EXIT.OK;
    }
    const now = Date.now();
    // One row per (agent, app): its current release, the desired one and the status.
    const rows: string[][] = [];
    const statuses: (string | undefined)[] = [];
    const lives: boolean[] = [];
    for (const a of agents) {
      const all = (a.releases ?? []).filter((r) => !status || has(r));
      const apps = all.length > 0 ? all : [{ app: undefined, current: undefined, desired: undefined, status: undefined }];
      for (const r of apps) {
        rows.push([
          a.id ?? "-",
          a.environment ?? "-",
          (a.live ? "yes" : "no") + (a.cordon ? " (cordoned)" : ""),
          ago(a.lastHeartbeat, now),
          a.host || "-",
          a.version || "-",
          labelsText(a.labels),
          r.app || "-",
          r.current || "-",
          r.desired?.release || "-",
          releaseStatusText(r.status),
        ]);
        statuses.push(r.status);
        lives.push(a.live === true);
      }
    }
    print(
      table(["ID", "ENV", "LIVE", "HEARTBEAT", "HOST", "VERSION", "LABELS", "APP", "CURRENT", "DESIRED", "STATUS"], rows, (col, row, padded) =>
        col === 2 ? colorState(lives[row] ? "SUCCEEDED" : "FAILED", padded) : col === 10 ? colorReleaseStatus(statuses[row], padded) : padded,
      ),
    );
    // Why each cordoned agent takes no new deployment, and since when.
    for (const a of agents) if (a.cordon) print(`${a.id} is ${cordonLine(a.cordon)}; deployctl uncordon ${a.id} to deploy to it again`);
    return EXIT.OK;
  } finally {
    client.close();
  }
}

/** `cordoned by alice at <time>: disk swap` */
export function cordonLine(c: { reason?: string; cordonedBy?: string; cordonedAt?: { seconds?: string | number; nanos?: number } | null }): string {
  return `cordoned by ${c.cordonedBy || "-"} at ${isoTime(c.cordonedAt)}${c.reason ? `: ${c.reason}` : ""}`;
}

/** "tier=web,zone=eu-1": sorted by key, so the column reads the same on every call; "-" when none. */
export function labelsText(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return entries.map(([k, v]) => `${k}=${v}`).join(",") || "-";
}

export interface ArtifactsOptions extends CommonOptions {
  name?: string;
  app?: string;
}

export async function artifactsCommand(o: ArtifactsOptions): Promise<ExitCode> {
  const client = clientFor(o);
  try {
    const res = await client.listArtifacts(o.name, o.app);
    const artifacts = res.artifacts ?? [];
    if (o.json) {
      print(jsonDocument("deploy.v1.ListArtifactsResponse", res));
      return EXIT.OK;
    }
    if (artifacts.length === 0) {
      print("no artifacts");
      return EXIT.OK;
    }
    // APP: the bucket it is in, which only that app's agents may read ("-": the shared bucket of earlier versions).
    const rows = artifacts.map((a) => [a.app || "-", a.name ?? "-", shortDigest(a.digest), bytes(a.size), isoTime(a.createdAt), (a.hooks ?? []).join(",") || "-"]);
    print(table(["APP", "NAME", "DIGEST", "SIZE", "CREATED", "HOOKS"], rows));
    return EXIT.OK;
  } finally {
    client.close();
  }
}
