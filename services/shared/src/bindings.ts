// Agent bindings: what each agent's credentials allow it to serve. The agent's
// id is fixed by its NATS nkey (the server lets it write only its own registry
// entry, $KV.deploy_agents.<id>); its environment and apps are fixed here, in
// bindings.json, which `npm run gen-credentials` writes next to the nkeys
// from the operator's `--agent <id>:<environment>:<app>,<app>`. Coordinators
// read it (agents.bindingsFile) and refuse a registry entry that claims more
// than its binding: an agent joins a new environment or app only when an
// operator changes this file, never because its own config says so.
import { readFileSync } from "node:fs";
import { ValidationError } from "./errors.js";
import { asAgentId, asObject, asStringArray, asToken, parseJson } from "./validate.js";

export const BINDINGS_SCHEMA = "deploy.bindings.v1";

export interface AgentBinding {
  environment: string;
  /** Apps the agent may serve; its entry may name these or fewer. */
  apps: string[];
}

/** Agent id → binding. */
export type AgentBindings = ReadonlyMap<string, AgentBinding>;

/** `{"schema": "deploy.bindings.v1", "agents": {"<id>": {"environment": "<env>", "apps": ["<app>", …]}}}` */
export function parseBindings(data: Uint8Array | string): Map<string, AgentBinding> {
  const o = asObject(parseJson(data, "bindings"), "bindings");
  if (o.schema !== BINDINGS_SCHEMA) throw new ValidationError("bindings.schema", `expected "${BINDINGS_SCHEMA}"`);
  const agents = asObject(o.agents, "bindings.agents");
  const out = new Map<string, AgentBinding>();
  for (const [id, v] of Object.entries(agents)) {
    const field = `bindings.agents.${id.slice(0, 80)}`;
    asAgentId(id, field);
    const b = asObject(v, field);
    for (const k of Object.keys(b)) if (k !== "environment" && k !== "apps") throw new ValidationError(`${field}.${k.slice(0, 40)}`, "unknown key (allowed: environment, apps)");
    out.set(id, { environment: asToken(b.environment, `${field}.environment`), apps: asStringArray(b.apps, `${field}.apps`, asToken, 1000) });
  }
  return out;
}

export function readBindingsFile(file: string): Map<string, AgentBinding> {
  return parseBindings(readFileSync(file));
}

export function bindingsJson(bindings: Iterable<[string, AgentBinding]>): string {
  const agents = Object.fromEntries([...bindings].sort(([a], [b]) => a.localeCompare(b)).map(([id, b]) => [id, { environment: b.environment, apps: [...b.apps].sort() }]));
  return `${JSON.stringify({ schema: BINDINGS_SCHEMA, agents }, null, 2)}\n`;
}

/**
 * Why an agent entry claiming `environment` and `apps` under id `id` is not
 * allowed by `bindings`, or undefined when it is (every app it names is
 * bound, in its bound environment).
 */
export function bindingProblem(bindings: AgentBindings, id: string, environment: string, apps: readonly string[]): string | undefined {
  const b = bindings.get(id);
  if (!b) return "no binding for this agent id (add it with gen-credentials --agent <id>:<environment>:<apps>)";
  if (environment !== b.environment) return `environment "${environment}" is not its bound environment "${b.environment}"`;
  const extra = apps.filter((a) => !b.apps.includes(a));
  if (extra.length > 0) return `app(s) ${extra.slice(0, 10).join(", ")} not bound (bound: ${b.apps.join(", ") || "none"})`;
  return undefined;
}
