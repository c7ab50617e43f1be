// Scoped deployer tokens (auth.ts: a token's "environments" and "apps"):
// what each DeployService call that changes something acts on, and the
// refusal of one outside the token's scope. One table for the gRPC service
// (withAuth asks it before the handler runs) and the dashboard's API
// (http/api.ts), so a changing call cannot be left out of one of them:
// test/scope.test.ts checks that every deployer method but UploadArtifact
// is here. UploadArtifact changes nothing that runs (a bundle is stored by
// its digest; deploying one is CreateDeployment's). Reads are never scoped:
// a scoped token reads everything, as a viewer does.
import { loadDeployment, type JsContext } from "../../../shared/src/index.js";
import { acknowledgedDeployment } from "../createDeployment.js";
import type { Registry } from "../registry.js";
import type { Principal } from "./auth.js";

/**
 * What a call acts on: an environment, and an app or every app of it (a
 * freeze, a policy) or an agent's apps (a cordon). Undefined when it names
 * nothing that exists (its handler answers NOT_FOUND).
 */
export interface Target {
  environment: string;
  /** The one app it changes; absent with `apps`. */
  app?: string;
  /** The apps it changes: an agent's; "every" for a rule of the whole environment. */
  apps?: readonly string[] | "every";
}

export type TargetOf = (request: Record<string, unknown>) => Promise<Target | undefined>;

export type ScopeTable = Readonly<Record<string, TargetOf>>;

/** Methods no table asks about: they change nothing that runs. */
export const UNSCOPED_CHANGES = ["UploadArtifact"] as const;

const str = (v: unknown): string => (typeof v === "string" ? v : "");

export function scopeTable(deps: { ctx: Pick<JsContext, "js" | "jsm" | "deployments">; registry: Pick<Registry, "get"> }): ScopeTable {
  const named = (r: Record<string, unknown>): Promise<Target> => Promise.resolve({ environment: str(r.environment), app: str(r.app) });
  const wholeEnvironment = (r: Record<string, unknown>): Promise<Target> => Promise.resolve({ environment: str(r.environment), apps: "every" });
  const ofDeployment = async (r: Record<string, unknown>): Promise<Target | undefined> => {
    if (typeof r.deploymentId !== "string" || r.deploymentId === "") return undefined;
    // Its environment and app are in its spec, which never changes: a
    // bounded read. A read that fails refuses the call (UNAVAILABLE, asked
    // again): a scope is never passed for want of knowing.
    const loaded = (await loadDeployment(deps.ctx, r.deploymentId, undefined, { budgetMs: 2000 })) ?? (await acknowledgedDeployment(deps.ctx, r.deploymentId));
    return loaded && { environment: loaded.record.spec.environment, app: loaded.record.spec.app };
  };
  // An agent not registered has no environment to judge: cordoning or
  // deregistering it is NOT_FOUND for anyone; lifting a cordon left behind
  // for it changes nothing that runs while it is not registered.
  const ofAgent = (r: Record<string, unknown>): Promise<Target | undefined> => {
    const a = typeof r.agentId === "string" ? deps.registry.get(r.agentId)?.record : undefined;
    return Promise.resolve(a && { environment: a.environment, apps: a.apps });
  };
  return {
    CreateDeployment: named,
    RollbackRelease: named,
    FreezeEnvironment: wholeEnvironment,
    UnfreezeEnvironment: wholeEnvironment,
    // One app's policy is that app's (a token scoped to it may set it); the environment's own, every app's.
    SetEnvironmentPolicy: (r) => (str(r.app) === "" ? wholeEnvironment(r) : named(r)),
    CancelDeployment: ofDeployment,
    PauseDeployment: ofDeployment,
    ResumeDeployment: ofDeployment,
    PromoteDeployment: ofDeployment,
    RevertDeployment: ofDeployment,
    CordonAgent: ofAgent,
    UncordonAgent: ofAgent,
    DeregisterAgent: ofAgent,
  };
}

/** "environment staging", "environments staging, qa" */
const list = (what: string, xs: readonly string[]): string => `${what}${xs.length > 1 ? "s" : ""} ${xs.join(", ")}`;

/** Why `principal` may not make this call (undefined: it may): it is scoped, and the call acts outside its scope. */
export async function scopeRefusal(table: ScopeTable, principal: Principal | undefined, method: string, request: unknown): Promise<string | undefined> {
  const envs = principal?.environments;
  const apps = principal?.apps;
  const targetOf = table[method];
  if ((!envs && !apps) || !targetOf) return undefined;
  const t = await targetOf(typeof request === "object" && request !== null ? (request as Record<string, unknown>) : {});
  if (t === undefined) return undefined;
  const scope = [envs ? list("environment", envs) : "", apps ? list("app", apps) : ""].filter(Boolean).join(" of ");
  const refuse = (acts: string): string => `token ${principal.name} may change ${scope} only; ${method} acts on ${acts}`;
  if (envs && !envs.includes(t.environment)) return refuse(t.environment === "" ? "no environment named" : `environment ${t.environment}`);
  if (!apps) return undefined;
  if (t.apps === "every") return refuse(`every app of environment ${t.environment}`);
  const acted = t.apps ?? [t.app ?? ""];
  const outside = acted.filter((a) => !apps.includes(a));
  if (outside.length === 0) return undefined;
  return refuse(t.apps ? `agent ${str((request as Record<string, unknown>).agentId)}, which serves ${list("app", outside)}` : outside[0] === "" ? "no app named" : `app ${outside[0]}`);
}
