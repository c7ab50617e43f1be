// Environment-scoped deployer tokens (auth.ts: a token's "environments"):
// which environment each DeployService call that changes something acts in,
// and the refusal of one outside the token's environments. One table for
// the gRPC service (withAuth asks it before the handler runs) and the
// dashboard's API (http/api.ts), so a changing call cannot be left out of
// one of them: test/scope.test.ts checks that every deployer method but
// UploadArtifact is here. UploadArtifact changes no environment (an app's
// bundles serve all of them; deploying one is CreateDeployment's). Reads
// are never scoped: a scoped token reads everything, as a viewer does.
import { loadDeployment, type JsContext } from "../../../shared/src/index.js";
import type { Registry } from "../registry.js";
import type { Principal } from "./auth.js";

/** The environment a call acts in, read from its request; undefined when it names nothing that exists (its handler answers NOT_FOUND). */
export type EnvironmentOf = (request: Record<string, unknown>) => Promise<string | undefined>;

export type ScopeTable = Readonly<Record<string, EnvironmentOf>>;

/** Methods whose environment is not asked of any table: they change none. */
export const UNSCOPED_CHANGES = ["UploadArtifact"] as const;

export function scopeTable(deps: { ctx: Pick<JsContext, "js" | "jsm" | "deployments">; registry: Pick<Registry, "get"> }): ScopeTable {
  const named = (r: Record<string, unknown>): Promise<string | undefined> => Promise.resolve(typeof r.environment === "string" ? r.environment : "");
  const ofDeployment = async (r: Record<string, unknown>): Promise<string | undefined> => {
    if (typeof r.deploymentId !== "string" || r.deploymentId === "") return undefined;
    // Its environment is in its spec, which never changes: a bounded read.
    const loaded = await loadDeployment(deps.ctx, r.deploymentId, undefined, { budgetMs: 2000 }).catch(() => undefined);
    return loaded?.record.spec.environment;
  };
  const ofAgent = (r: Record<string, unknown>): Promise<string | undefined> =>
    Promise.resolve(typeof r.agentId === "string" ? deps.registry.get(r.agentId)?.record.environment : undefined);
  return {
    CreateDeployment: named,
    RollbackRelease: named,
    FreezeEnvironment: named,
    UnfreezeEnvironment: named,
    SetEnvironmentPolicy: named,
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

/** Why `principal` may not make this call (undefined: it may): it is scoped to environments, and the call acts in another. */
export async function scopeRefusal(table: ScopeTable, principal: Principal | undefined, method: string, request: unknown): Promise<string | undefined> {
  const scope = principal?.environments;
  const environmentOf = table[method];
  if (!scope || !environmentOf) return undefined;
  const environment = await environmentOf(typeof request === "object" && request !== null ? (request as Record<string, unknown>) : {});
  if (environment === undefined || scope.includes(environment)) return undefined;
  return `token ${principal.name} may change environment${scope.length > 1 ? "s" : ""} ${scope.join(", ")} only; ${method} acts in ${environment === "" ? "no environment named" : `environment ${environment}`}`;
}
