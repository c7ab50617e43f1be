// deployctl policy <env> | policies: what an environment accepts. With
// --promote-from, only promotions of that environment's desired release
// (deploy --from-env), with --min-soak only once it has been desired there
// that long; with --require-canary, only deployments with a canary wave.
// Rollbacks, reverts and convergence still run. --clear lifts every rule.
// Setting the same rules again changes nothing but who and why. With
// --app, the policy is one app's in the environment, which its deployments
// there must satisfy besides the environment's own.
import type { PolicyMsg } from "../client.js";
import { EXIT, UsageError, type ExitCode } from "../errors.js";
import { withClient, type CommonOptions } from "../options.js";
import { duration, isoTime, table } from "../render/format.js";
import { jsonDocument } from "../render/json.js";
import { policyRulesText } from "../../../shared/src/index.js";

export interface PolicyOptions extends CommonOptions {
  /** One app's policy in the environment, on top of the environment's own. */
  app?: string;
  reason?: string;
  promoteFrom?: string;
  /** ms */
  minSoak?: number;
  requireCanary?: boolean;
  clear?: boolean;
}

const print = (s: string): boolean => process.stdout.write(s + "\n");

const msOf = (d: { seconds?: string | number; nanos?: number } | null | undefined): number | undefined =>
  d ? Number(d.seconds ?? 0) * 1000 + Math.round((d.nanos ?? 0) / 1e6) : undefined;

/** "only promotions from staging, desired there at least 2h0m; a canary wave", or "" for none. */
export function policyRules(p: PolicyMsg): string {
  const soak = msOf(p.minSoak);
  return policyRulesText({ ...(p.promoteFrom ? { promoteFrom: p.promoteFrom } : {}), ...(soak !== undefined ? { minSoakMs: soak } : {}), requireCanary: p.requireCanary === true }, duration);
}

/** "accepts only promotions from staging (set by alice at <time>: <reason>)" */
export const acceptsLine = (p: PolicyMsg): string => `accepts ${policyRules(p)} (set by ${p.by || "-"} at ${isoTime(p.at ?? null)}: ${p.reason})`;

/** "prod", or "web in prod" for one app's policy: who a policy's lines speak of. */
const subject = (env: string, app: string | undefined): string => (app ? `${app} in ${env}` : env);

/** Whether `p` is the environment's own policy (app undefined) or that app's there. */
const isPolicyOf = (p: PolicyMsg, env: string, app: string | undefined): boolean => p.environment === env && (p.app || undefined) === app;

export function policyCommand(env: string, o: PolicyOptions): Promise<ExitCode> {
  const rules = o.promoteFrom !== undefined || o.minSoak !== undefined || o.requireCanary === true;
  // Nothing to set: show what the environment (or the app there) accepts now.
  if (!rules && !o.clear && o.reason === undefined) return showPolicy(env, o);
  if (!o.reason?.trim()) throw new UsageError("--reason is required: everyone whose deployment the policy refuses reads it");
  if (o.clear && rules) throw new UsageError("--clear lifts every rule: give it alone, or give the rules without it");
  if (!o.clear && !rules) throw new UsageError("give the rules (--promote-from <env>, --min-soak <duration>, --require-canary), or --clear to lift them");
  if (o.minSoak !== undefined && o.promoteFrom === undefined) throw new UsageError("--min-soak needs --promote-from: it is how long a release must have been desired there");
  if (o.promoteFrom === env) throw new UsageError(`--promote-from must name another environment than ${env}`);
  return withClient(o, async (c) => {
    const p = await c.setEnvironmentPolicy(
      env,
      o.clear ? {} : { ...(o.promoteFrom ? { promoteFrom: o.promoteFrom } : {}), ...(o.minSoak !== undefined ? { minSoakMs: o.minSoak } : {}), ...(o.requireCanary ? { requireCanary: true } : {}) },
      o.reason!,
      o.app,
    );
    if (o.json) {
      print(jsonDocument("deploy.v1.EnvironmentPolicy", p).trimEnd());
      return EXIT.OK;
    }
    const text = policyRules(p);
    const appFlag = o.app ? ` --app ${o.app}` : "";
    print(
      text
        ? `${subject(env, o.app)} ${acceptsLine(p)}.\nOther deployments ${o.app ? `of ${o.app} ` : ""}to ${env} are refused; rollbacks, reverts and convergence still run. Lift it with: deployctl policy ${env}${appFlag} --clear --reason "<why>"`
        : o.app
          ? `${subject(env, o.app)} has no policy of its own: its deployments to ${env} answer to ${env}'s policy alone`
          : `${env} has no policy: every deployment to it is accepted (unless it is frozen, or an app's own policy refuses it: deployctl policies)`,
    );
    return EXIT.OK;
  });
}

function showPolicy(env: string, o: PolicyOptions): Promise<ExitCode> {
  return withClient(o, async (c) => {
    const all = (await c.listEnvironmentPolicies()).policies ?? [];
    const p = all.find((x) => isPolicyOf(x, env, o.app));
    if (o.json) {
      print(p ? jsonDocument("deploy.v1.EnvironmentPolicy", p).trimEnd() : "{}");
      return EXIT.OK;
    }
    const appFlag = o.app ? ` --app ${o.app}` : "";
    // The other policies a deployment there must satisfy, so that no rule is a surprise.
    const env0 = o.app ? all.find((x) => isPolicyOf(x, env, undefined)) : undefined;
    const apps = o.app ? [] : all.filter((x) => x.environment === env && x.app);
    const unless = o.app ? ` or ${env}'s policy refuses it` : apps.length > 0 ? ", or an app's own policy below refuses it" : "";
    print(
      p
        ? `${subject(env, o.app)} ${acceptsLine(p)}; other deployments ${o.app ? `of ${o.app} ` : ""}to it are refused, rollbacks, reverts and convergence still run`
        : `${subject(env, o.app)} has no policy${o.app ? " of its own" : ""}: every deployment ${o.app ? `of ${o.app} ` : ""}to it is accepted (unless it is frozen${unless}); set one with deployctl policy ${env}${appFlag} --promote-from <env> --reason "<why>"`,
    );
    if (env0) print(`${env} ${acceptsLine(env0)}: ${o.app}'s deployments there must satisfy it too`);
    for (const a of apps) print(`${subject(env, a.app)} has a policy of its own: ${acceptsLine(a)} (deployctl policy ${env} --app ${a.app})`);
    return EXIT.OK;
  });
}

/** The policies a deployment of `app` to `env` must satisfy: the environment's, then the app's there. */
export function policiesApplying(all: readonly PolicyMsg[], env: string, app: string): PolicyMsg[] {
  return [all.find((p) => isPolicyOf(p, env, undefined)), all.find((p) => isPolicyOf(p, env, app))].filter((p): p is PolicyMsg => p !== undefined);
}

export function policiesCommand(o: CommonOptions): Promise<ExitCode> {
  return withClient(o, async (c) => {
    const res = await c.listEnvironmentPolicies();
    if (o.json) {
      print(jsonDocument("deploy.v1.ListEnvironmentPoliciesResponse", res).trimEnd());
      return EXIT.OK;
    }
    const policies = res.policies ?? [];
    if (policies.length === 0) {
      print("no environment has a policy");
      return EXIT.OK;
    }
    print(
      table(
        ["ENVIRONMENT", "APP", "ACCEPTS", "SET BY", "AT", "REASON"],
        policies.map((p) => [p.environment ?? "", p.app || "(every app)", policyRules(p), p.by || "-", isoTime(p.at ?? null), p.reason ?? ""]),
      ),
    );
    return EXIT.OK;
  });
}
