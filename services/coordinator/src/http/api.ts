// The dashboard's JSON API: the same functions and the same messages as the
// gRPC API (grpc/convert.ts), so both show the same data. Read-only except
// POST /api/deployments/:id/{cancel,pause,resume,promote,revert}, POST
// /api/freezes[/unfreeze] and POST /api/promotions, which need a deployer
// token.
//
//   GET  /api/session                      who is asking; 401 when a token is needed
//   POST /api/session      {"token"}       log in: sets an HttpOnly cookie
//   DELETE /api/session                    log out
//   GET  /api/deployments?app&env&state&pageSize&pageToken   newest first
//   GET  /api/deployments/:id
//   GET  /api/deployments/:id/events       Server-Sent Events (events.ts)
//   POST /api/deployments/:id/cancel {"reason", "kill", "revert"}  as CancelDeployment's kill_running, revert
//   POST /api/deployments/:id/pause {"reason"}, …/resume, …/promote   as the gRPC calls
//   POST /api/deployments/:id/revert        RevertDeployment: answers with the revert deployment
//   GET  /api/agents?app&environment      each with, per app, its current and desired release and status
//   GET  /api/freezes                      as ListFreezes
//   GET  /api/policies                     as ListEnvironmentPolicies
//   POST /api/freezes {"environment", "reason", "for", "name"}   as FreezeEnvironment ("for": 30m, 2h, 3d; none: until unfrozen)
//   POST /api/freezes/unfreeze {"environment", "name"}           as UnfreezeEnvironment
//   POST /api/promotions {"requestId", "app", "environment", "from", "deploymentId", "maxConcurrency", "canary", "minSoak"}
//        CreateDeployment with promote_from (deployctl deploy --from-env): deploys the desired release of
//        `from`, refused when that is no longer `deploymentId`'s (the page's); maxConcurrency 3 or "25%"
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Identity, JsContext, Logger } from "../../../shared/src/index.js";
import { protoTime } from "../../../shared/src/proto.js";
import { createDeployment } from "../createDeployment.js";
import { promotionGate, resolvePromotion } from "../releases/promote.js";
import type { TokenAuthenticator } from "../grpc/auth.js";
import { tokenIdentity } from "../grpc/identity.js";
import { scopeRefusal, scopeTable } from "../grpc/scope.js";
import { listPage, toDeploymentMessage, toFreezeMessage, toFreezesMessage, toPolicyMessage } from "../grpc/convert.js";
import type { Freezes } from "../freezes.js";
import type { Policies } from "../policies.js";
import type { ReleaseBook } from "../releases/releaseBook.js";
import { cancelDeployment } from "../queries/cancelDeployment.js";
import { pauseDeployment, promoteDeployment, resumeDeployment } from "../queries/operatorDecisions.js";
import { revertDeployment, revertOf, type RollbackDeps } from "../releases/rollback.js";
import { listAgentsPage } from "../queries/listAgents.js";
import { listDeployments } from "../queries/listDeployments.js";
import { getDeployment, type WatchSlots } from "../queries/watchDeployment.js";
import type { Registry } from "../registry.js";
import { validateCreate, validateDeploymentId, validateFreeze, validateListAgents, validateList, validateReason, validateTargetPage, validateUnfreeze, type Defaults } from "../requests.js";
import type { Reconciler } from "../rollout/reconciler.js";
import { afterSequenceOf, streamEvents } from "./events.js";
import { HttpError, readJsonBody, sendJson } from "./respond.js";
import { checkSameOrigin, identify, login, logoutCookie, type Caller } from "./session.js";

export interface ApiDeps {
  ctx: JsContext;
  registry: Registry;
  /** Desired releases, for the agents' status. */
  releases: ReleaseBook;
  reconciler: Reconciler;
  /** Environments frozen now (the deployments page shows them). */
  freezes: Freezes;
  /** Environment policies (the deployments page shows them). */
  policies: Policies;
  /** What a revert asked from the page needs (RevertDeployment's), and a promotion (CreateDeployment's). */
  rollback: RollbackDeps;
  /** CreateDeployment's timeouts when a request gives none. */
  defaults: Defaults;
  auth: TokenAuthenticator;
  log: Logger;
  /** Aborted when the coordinator shuts down: open event streams end (clients resume elsewhere). */
  shutdown: AbortSignal;
  /** How many watches this coordinator follows at once (the event streams here and gRPC's together). */
  watches: WatchSlots;
}

/** The operator's decisions the page may make: POST /api/deployments/:id/<name>. */
const DECISIONS: Record<string, { gerund: string; takesReason: boolean; grpcMethod: string }> = {
  cancel: { gerund: "cancelling", takesReason: true, grpcMethod: "CancelDeployment" },
  pause: { gerund: "pausing", takesReason: true, grpcMethod: "PauseDeployment" },
  resume: { gerund: "resuming", takesReason: false, grpcMethod: "ResumeDeployment" },
  promote: { gerund: "promoting", takesReason: false, grpcMethod: "PromoteDeployment" },
  // Answered with the revert deployment (RevertDeployment), not this one.
  revert: { gerund: "reverting", takesReason: false, grpcMethod: "RevertDeployment" },
};

const sessionBody = (deps: ApiDeps, c: Caller): object => ({
  authRequired: deps.auth.enabled,
  name: c.principal?.name ?? "",
  role: c.principal?.role ?? "",
  canCancel: c.canCancel,
  // A deployer scoped to environments or apps (grpc/scope.ts): the page says which.
  ...(c.principal?.environments ? { environments: c.principal.environments } : {}),
  ...(c.principal?.apps ? { apps: c.principal.apps } : {}),
});

/** Answers one /api request; throws DeployError or HttpError for the caller to map. */
export async function handleApi(deps: ApiDeps, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const method = req.method ?? "GET";
  const parts = url.pathname.split("/").filter(Boolean).slice(1); // without "api"
  const q = url.searchParams;
  // Behind a TLS-terminating proxy the cookie is marked Secure.
  const secure = req.headers["x-forwarded-proto"] === "https";

  if (parts.length === 1 && parts[0] === "session") {
    if (method === "POST") {
      checkSameOrigin(req);
      const { caller, cookie } = login((await readJsonBody(req)).token, deps.auth, secure);
      deps.log.info({ principal: caller.principal?.name, role: caller.principal?.role }, "dashboard login");
      return sendJson(res, 200, sessionBody(deps, caller), { "Set-Cookie": cookie });
    }
    if (method === "DELETE") {
      checkSameOrigin(req);
      return sendJson(res, 200, { authRequired: deps.auth.enabled }, { "Set-Cookie": logoutCookie(secure) });
    }
    if (method === "GET") return sendJson(res, 200, sessionBody(deps, identify(req, deps.auth)));
    throw new HttpError(405, `${method} not allowed here`);
  }

  const caller = identify(req, deps.auth);
  /** A deployer token scoped to environments changes nothing elsewhere, here as over gRPC (grpc/scope.ts). */
  const inScope = async (grpcMethod: string, request: object): Promise<void> => {
    const why = await scopeRefusal(scopeTable(deps), caller.principal, grpcMethod, request);
    if (why !== undefined) throw new HttpError(403, why);
  };
  if (parts[0] === "deployments" && parts.length >= 2 && parts.length <= 3) {
    const id = validateDeploymentId(parts[1]);
    const decision = parts.length === 3 ? DECISIONS[parts[2]!] : undefined;
    if (decision) {
      if (method !== "POST") throw new HttpError(405, `use POST to ${parts[2]}`);
      checkSameOrigin(req);
      if (!caller.canCancel) {
        throw new HttpError(
          403,
          deps.auth.enabled
            ? `${decision.gerund} needs role deployer; ${caller.principal?.name} has role ${caller.principal?.role}`
            : `the dashboard is read-only without grpc.tokens: ${parts[2]} with deployctl`,
        );
      }
      await inScope(decision.grpcMethod, { deploymentId: id });
      // canCancel implies a deployer token: its name is who decides (the
      // event's `by`); a reason says where from.
      const by = tokenIdentity(caller.principal!);
      const body = decision.takesReason ? await readJsonBody(req) : {};
      const reason = decision.takesReason ? validateReason(body.reason) : "";
      const from = reason ? `${reason} (from the dashboard)` : "from the dashboard";
      for (const flag of ["kill", "revert"] as const) {
        if (body[flag] !== undefined && typeof body[flag] !== "boolean") throw new HttpError(400, `${flag}: must be true or false`);
      }
      if (parts[2] === "revert") {
        const created = await revertDeployment(deps.rollback, id, "from the dashboard", by, deps.log);
        deps.reconciler.launch(created);
        return sendJson(res, 200, toDeploymentMessage(created.record));
      }
      const rec =
        parts[2] === "cancel"
          ? await cancelDeployment(deps, id, from, by, { kill: body.kill === true, revert: body.revert === true })
          : parts[2] === "pause"
            ? await pauseDeployment(deps, id, from, by)
            : parts[2] === "resume"
              ? await resumeDeployment(deps, id, by)
              : await promoteDeployment(deps, id, by);
      return sendJson(res, 200, toDeploymentMessage(rec, await revertOf(deps.ctx, rec)));
    }
    if (method !== "GET") throw new HttpError(405, `${method} not allowed here`);
    if (parts.length === 2) {
      // Paged as GetDeployment: ?pageSize=&pageToken=&targetState=
      const pageSize = q.get("pageSize");
      const page = validateTargetPage({
        pageSize: pageSize === null ? undefined : Number(pageSize),
        pageToken: q.get("pageToken") ?? undefined,
        targetState: q.get("targetState") ?? undefined,
      });
      const rec = await getDeployment(deps.ctx, id, deps.reconciler);
      return sendJson(res, 200, toDeploymentMessage(rec, await revertOf(deps.ctx, rec), page));
    }
    if (parts[2] === "events") return streamEvents(deps, req, res, id, afterSequenceOf(req, q));
  }
  if (parts[0] === "freezes" && method === "POST" && (parts.length === 1 || (parts.length === 2 && parts[1] === "unfreeze"))) {
    checkSameOrigin(req);
    const verb = parts.length === 1 ? "freezing" : "unfreezing";
    if (!caller.canCancel) {
      throw new HttpError(
        403,
        deps.auth.enabled ? `${verb} needs role deployer; ${caller.principal?.name} has role ${caller.principal?.role}` : `the dashboard is read-only without grpc.tokens: ${parts.length === 1 ? "freeze" : "unfreeze"} with deployctl`,
      );
    }
    const by = tokenIdentity(caller.principal!);
    const body = await readJsonBody(req);
    await inScope(parts.length === 2 ? "UnfreezeEnvironment" : "FreezeEnvironment", body);
    if (parts.length === 2) {
      const { environment, name } = validateUnfreeze(body);
      const rec = await deps.freezes.set(environment, false, "", by, name ? { name } : {});
      deps.log.info({ environment, name, by: by.name, from: "dashboard" }, "environment unfrozen");
      return sendJson(res, 200, toFreezeMessage(rec, deps.freezes.inForce(rec)));
    }
    // Weekly windows are deployctl's (freeze --window): the page freezes now, for a while or until unfrozen.
    if (body.windows !== undefined) throw new HttpError(400, "windows: a recurring freeze is set with deployctl freeze --window");
    const forMs = body.for === undefined || body.for === "" ? undefined : freezeForMs(body.for);
    const f = validateFreeze(
      { environment: body.environment, reason: body.reason, name: body.name, ...(forMs === undefined ? {} : { duration: protoTime(forMs) }) },
      deps.registry.clock.now(),
    );
    const rec = await deps.freezes.set(f.environment, true, f.reason, by, f);
    deps.log.info({ environment: f.environment, name: f.name, by: by.name, reason: f.reason, until: rec.until ?? "unfrozen", from: "dashboard" }, "environment frozen");
    return sendJson(res, 200, toFreezeMessage(rec, deps.freezes.inForce(rec)));
  }
  if (parts.length === 1 && parts[0] === "promotions" && method === "POST") {
    checkSameOrigin(req);
    if (!caller.canCancel) {
      throw new HttpError(
        403,
        deps.auth.enabled ? `promoting a release needs role deployer; ${caller.principal?.name} has role ${caller.principal?.role}` : "the dashboard is read-only without grpc.tokens: deployctl deploy --from-env",
      );
    }
    const body = await readJsonBody(req);
    await inScope("CreateDeployment", body);
    return sendJson(res, 200, await promoteRelease(deps, body, tokenIdentity(caller.principal!)));
  }
  if (method !== "GET") throw new HttpError(405, `${method} not allowed here`);
  if (parts.length === 1 && parts[0] === "deployments") {
    const pageSize = q.get("pageSize");
    const list = validateList({
      app: q.get("app") ?? undefined,
      environment: q.get("env") ?? q.get("environment") ?? undefined,
      state: q.get("state") ?? undefined,
      pageSize: pageSize ? Number(pageSize) : undefined,
      agentId: q.get("agent") ?? undefined,
      pageToken: q.get("pageToken") ?? undefined,
    });
    const { deployments, nextPageToken } = await listDeployments(deps.ctx, list, deps.registry);
    return sendJson(res, 200, { deployments: listPage(deployments, list.agentId), nextPageToken });
  }
  if (parts.length === 1 && parts[0] === "freezes") {
    // As ListFreezes: the environments frozen now.
    return sendJson(res, 200, toFreezesMessage(deps.freezes.list()));
  }
  if (parts.length === 1 && parts[0] === "policies") {
    // As ListEnvironmentPolicies.
    return sendJson(res, 200, { policies: deps.policies.list().map(toPolicyMessage) });
  }
  if (parts.length === 1 && parts[0] === "agents") {
    // As ListAgents, a page at a time (status by its short name too: outdated).
    const status = q.get("status") ?? "";
    const pageSize = q.get("pageSize");
    const query = validateListAgents({
      app: q.get("app") ?? undefined,
      environment: q.get("env") ?? q.get("environment") ?? undefined,
      selector: q.get("selector") ?? undefined,
      status: status === "" || status.startsWith("RELEASE_STATUS_") ? status : `RELEASE_STATUS_${status === "none" ? "NO_DESIRED_RELEASE" : status.toUpperCase()}`,
      pageSize: pageSize ? Number(pageSize) : undefined,
      pageToken: q.get("pageToken") ?? undefined,
    });
    return sendJson(res, 200, await listAgentsPage(deps.registry, deps.releases, query));
  }
  throw new HttpError(404, `no such API: ${method} ${url.pathname}`);
}

/** A count or a percentage as the page sends it ("3", "25%", empty for the default), as the strategy's `field` or `field`Percent. */
function amountField(body: Record<string, unknown>, field: "maxConcurrency" | "canary"): Record<string, number | string> {
  const v = body[field];
  if (v === undefined || v === "") return {};
  if (typeof v === "string" && v.trim().endsWith("%")) return { [`${field}Percent`]: v.trim() };
  const n = Number(v);
  if (!Number.isInteger(n)) throw new HttpError(400, `${field}: ${JSON.stringify(v)?.slice(0, 40)} is neither a count nor a percentage such as 25%`);
  return { [field]: n };
}

/**
 * The page's "Promote to…" on a deployment that SUCCEEDED: CreateDeployment
 * with promote_from its environment, validated, gated and created as the
 * gRPC call does, recorded with the token's name. The page promotes the
 * release it shows: when the desired release of `from` is another
 * deployment's by now, a new request is refused rather than deploying that.
 */
async function promoteRelease(deps: ApiDeps, body: Record<string, unknown>, by: Identity): Promise<object> {
  if (typeof body.from !== "string" || body.from === "") throw new HttpError(400, "from: is required: the environment whose desired release to promote");
  const minSoakMs = body.minSoak === undefined || body.minSoak === "" ? undefined : durationFieldMs("minSoak", body.minSoak, "(leave it out for no soak)");
  const strategy = { ...amountField(body, "maxConcurrency"), ...amountField(body, "canary") };
  const input = await resolvePromotion(
    deps.releases,
    validateCreate(
      {
        requestId: body.requestId,
        app: body.app,
        environment: body.environment,
        promoteFrom: body.from,
        strategy,
        requestedBy: "from the dashboard",
        ...(minSoakMs === undefined ? {} : { promoteMinSoak: protoTime(minSoakMs) }),
      },
      deps.defaults,
    ),
    promotionGate(deps.ctx, () => deps.registry.clock.now(), {
      ...(typeof body.deploymentId === "string" ? { shown: body.deploymentId } : {}),
      ...(deps.rollback.fleet.policy ? { policy: deps.rollback.fleet.policy } : {}),
    }),
  );
  const created = await createDeployment(deps.ctx, deps.registry, deps.rollback.artifacts, input, by, deps.rollback.fleet, { answerEarly: true });
  const { record } = created;
  deps.log.info({ deploymentId: record.spec.id, requestId: input.requestId, app: input.app, environment: input.environment, promoteFrom: input.promoteFrom, requestedBy: by.name, from: "dashboard" }, "deployment accepted");
  const answer = toDeploymentMessage(record);
  deps.reconciler.launch(created);
  return answer;
}

const FOR_UNITS_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A freeze's "for": "30m", "2h", "3d", "1d12h" (as deployctl freeze --for); the freeze's own limit (366 days) is validateFreeze's. */
const freezeForMs = (v: unknown): number => durationFieldMs("for", v, "(leave it out for a freeze until unfrozen)");

/** "30m", "2h", "3d", "1d12h" as ms; the limits are the request's validation's. */
function durationFieldMs(field: string, v: unknown, none: string): number {
  const text = typeof v === "string" ? v.trim() : "";
  const re = /(\d+)(m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * FOR_UNITS_MS[m[2]!]!;
    matched = re.lastIndex;
  }
  if (text === "" || matched !== text.length || total <= 0) throw new HttpError(400, `${field}: ${JSON.stringify(v)?.slice(0, 40)} is not a duration such as 30m, 2h or 3d ${none}`);
  return total;
}
