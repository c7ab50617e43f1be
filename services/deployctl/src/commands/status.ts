// deployctl status <app> <env>: one screen on an app in an environment, the
// question an operator asks first ("what runs in prod, and can I deploy?"):
// the desired release, the deployments running, the freezes, and the agents
// by release status, naming the ones not on the desired release, and the
// deployments that left agents outdated and ended without a revert (with
// the command that brings them back). Four reads made together (GetRelease,
// ListDeployments, ListFreezes, ListAgents), then a GetDeployment per such
// deployment (up to 5); nothing is written. Exit 0 whatever it shows: it reports, it does not judge.
import { status as grpcStatus } from "@grpc/grpc-js";
import type { AgentMsg, Client, DeploymentMsg, FreezeMsg, ReleaseMsg } from "../client.js";
import { EXIT, isServiceError, type ExitCode } from "../errors.js";
import { clientFor, type CommonOptions } from "../options.js";
import { ago, countOf, freezeLine, isoTime, shortState } from "../render/format.js";
import { acceptsLine, policiesApplying } from "./policy.js";
import { toProto3Json } from "../render/protoJson.js";

const print = (s: string): boolean => process.stdout.write(s + "\n");
/** Agents named per line of outdated or offline ones; the rest are counted. */
const NAMED = 10;

type Status = "current" | "outdated" | "offline" | "none";

function statusOf(a: AgentMsg, app: string): { status: Status; current: string } {
  const r = (a.releases ?? []).find((x) => x.app === app);
  const s = (r?.status ?? "").replace(/^RELEASE_STATUS_/, "");
  const status: Status = s === "CURRENT" ? "current" : s === "OUTDATED" ? "outdated" : s === "OFFLINE" ? "offline" : "none";
  return { status, current: r?.current || "" };
}

const named = (xs: string[]): string => `${xs.slice(0, NAMED).join(", ")}${xs.length > NAMED ? ` and ${xs.length - NAMED} more` : ""}`;

function progress(d: DeploymentMsg): string {
  const total = d.targetCount ?? d.targets?.length ?? 0;
  const parts = [`${countOf(d, "SUCCEEDED")} of ${total} target(s) succeeded`];
  const applying = countOf(d, "APPLYING") + countOf(d, "DISPATCHED");
  if (applying > 0) parts.push(`${applying} in flight`);
  const failed = countOf(d, "FAILED") + countOf(d, "TIMED_OUT");
  if (failed > 0) parts.push(`${failed} failed`);
  const waits = [d.paused ? `paused by ${d.pausedBy || "-"}` : "", d.awaitingPromotion ? "awaiting promotion" : "", d.cancelRequested ? "being cancelled" : ""].filter(Boolean);
  return `${parts.join(", ")}${waits.length ? ` (${waits.join(", ")})` : ""}`;
}

/** Deployments read to tell why agents are outdated, at most. */
const LOOKED_UP = 5;

/**
 * The deployments that left outdated agents on their release and ended
 * FAILED or CANCELLED without a revert (RevertDeployment brings those agents
 * back), with those agents: read by the deployment each agent reports its
 * release from (up to LOOKED_UP deployments).
 */
async function unrevertedOf(client: Client, outdated: AgentMsg[], app: string): Promise<{ d: DeploymentMsg; agents: string[] }[]> {
  const agentsOf = new Map<string, string[]>();
  for (const a of outdated) {
    const id = (a.releases ?? []).find((x) => x.app === app)?.currentDeploymentId;
    if (id) agentsOf.set(id, [...(agentsOf.get(id) ?? []), a.id ?? ""]);
  }
  const ids = [...agentsOf.keys()].slice(0, LOOKED_UP);
  const found = await Promise.all(ids.map((id) => client.getDeployment(id, { pageSize: 1 }).catch(() => undefined)));
  return found
    .filter((d): d is DeploymentMsg => d !== undefined && ["FAILED", "CANCELLED"].includes(shortState(d.state)) && !d.revertedBy && !d.reverts)
    .map((d) => ({ d, agents: agentsOf.get(d.id ?? "") ?? [] }));
}

export async function statusCommand(app: string, env: string, o: CommonOptions): Promise<ExitCode> {
  const client = clientFor(o);
  try {
    const [release, running, freezes, agents, policies] = await Promise.all([
      client.getRelease(app, env).catch((err: unknown): ReleaseMsg | undefined => {
        if (isServiceError(err) && err.code === grpcStatus.NOT_FOUND) return undefined; // nothing has succeeded there yet
        throw err;
      }),
      client.listDeployments({ app, environment: env, state: "DEPLOYMENT_STATE_RUNNING", pageSize: 20 }),
      client.listFreezes(),
      client.listAgents({ app, environment: env }),
      // A coordinator older than policies (UNIMPLEMENTED): none shown.
      client.listEnvironmentPolicies().catch(() => undefined),
    ]);
    const applying = policiesApplying(policies?.policies ?? [], env, app);
    const envFreezes: FreezeMsg[] = (freezes.freezes ?? []).filter((f) => f.environment === env);
    const list = agents.agents ?? [];
    const by: Record<Status, AgentMsg[]> = { current: [], outdated: [], offline: [], none: [] };
    for (const a of list) by[statusOf(a, app).status].push(a);
    const cordoned = list.filter((a) => a.cordon).map((a) => a.id ?? "");
    const active = running.deployments ?? [];
    const unreverted = await unrevertedOf(client, by.outdated, app);

    if (o.json) {
      const ids = (xs: AgentMsg[]): string[] => xs.map((a) => a.id ?? "");
      print(
        JSON.stringify({
          app,
          environment: env,
          release: release ? toProto3Json("deploy.v1.GetReleaseResponse", release) : null,
          running: active.map((d) => toProto3Json("deploy.v1.Deployment", d)),
          freezes: envFreezes.map((f) => toProto3Json("deploy.v1.EnvironmentFreeze", f)),
          // The environment's own policy, as before; every policy that applies (the app's there too) in policies.
          policy: applying[0] && !applying[0].app ? toProto3Json("deploy.v1.EnvironmentPolicy", applying[0]) : null,
          policies: applying.map((p) => toProto3Json("deploy.v1.EnvironmentPolicy", p)),
          agents: {
            total: list.length,
            live: list.filter((a) => a.live).length,
            current: ids(by.current),
            outdated: ids(by.outdated),
            offline: ids(by.offline),
            none: ids(by.none),
            cordoned,
          },
          unreverted: unreverted.map((u) => ({ deploymentId: u.d.id, state: shortState(u.d.state), agents: u.agents })),
        }),
      );
      return EXIT.OK;
    }

    const d = release?.desired;
    print(`${app} in ${env}`);
    print(
      `  desired release  ${d ? `${d.release} (${d.version}, deployment ${d.deploymentId}, succeeded ${isoTime(d.succeededAt)}, ${ago(d.succeededAt)}); convergence ${release.convergence ? "on" : "off"}` : "none: no deployment has succeeded here yet"}`,
    );
    if (active.length === 0) print("  running          none");
    for (const [i, x] of active.entries()) print(`  ${i === 0 ? "running         " : "                "} ${x.id} ${x.changeset?.version ?? ""}: ${progress(x)}, by ${x.requestedBy || "-"}`);
    const inForce = envFreezes.filter((f) => f.inForce);
    print(`  frozen           ${inForce.length > 0 ? "yes" : "no"}${inForce.length > 0 ? ": new deployments are refused (rollbacks and convergence still run)" : ""}`);
    for (const f of envFreezes) print(`                   ${freezeLine(f)}${f.inForce ? "" : " (not in force now)"}`);
    if (applying.length === 0) print("  policy           none: every deployment is accepted");
    for (const [i, p] of applying.entries()) print(`  ${i === 0 ? "policy          " : "                "} ${p.app ? `${p.app}'s own: ` : applying.length > 1 ? `${env}'s: ` : ""}${acceptsLine(p)}`);
    const counts = [`${by.current.length} current`, `${by.outdated.length} outdated`, `${by.offline.length} offline`, ...(by.none.length > 0 ? [`${by.none.length} without a desired release`] : [])];
    print(`  agents           ${list.length} registered, ${list.filter((a) => a.live).length} live: ${counts.join(", ")}${cordoned.length > 0 ? `; ${cordoned.length} cordoned (${named(cordoned)})` : ""}`);
    if (by.outdated.length > 0) print(`  outdated         ${named(by.outdated.map((a) => `${a.id} (on ${statusOf(a, app).current || "nothing"})`))}`);
    for (const u of unreverted) print(`  not reverted     ${u.d.id} (${u.d.changeset?.version ?? "?"}) ${shortState(u.d.state)} and left ${named(u.agents)} on it: deployctl revert ${u.d.id}`);
    if (by.offline.length > 0) print(`  offline          ${named(by.offline.map((a) => `${a.id} (last heartbeat ${ago(a.lastHeartbeat)})`))}`);
    return EXIT.OK;
  } finally {
    client.close();
  }
}
