// No docker engine runs here: docker-compose.yml, its NATS config files and
// the Dockerfile are checked for structure, the way a reviewer would read
// them (services, cluster routes, ports, environment, volumes, health checks,
// multi-stage build, non-root user). The sample bundle is checked with the
// product's own manifest parser.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { DEFAULT_SHUTDOWN_WAY_BACK_MS } from "../services/agent/src/config.js";
import { bindingProblem, readBindingsFile, serverVersionError } from "../services/shared/src/index.js";
import { parseManifest } from "../services/shared/src/bundle/manifest.js";

const ROOT = resolve(import.meta.dirname, "..");
const read = (p: string): string => readFileSync(join(ROOT, p), "utf8");

interface Service {
  image?: string;
  build?: { context?: string; target?: string } | string;
  command?: string[] | string;
  environment?: Record<string, string> | string[];
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: string[] | string };
  env_file?: string | string[];
  init?: boolean;
  stop_grace_period?: string;
}

const compose = parse(read("docker-compose.yml")) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = compose.services;
const names = Object.keys(services);
const NATS = ["nats-1", "nats-2", "nats-3"];
const COORDINATORS = ["coordinator-1", "coordinator-2"];
const AGENTS = ["agent-1", "agent-2", "agent-3"];

function env(s: Service): Record<string, string> {
  if (Array.isArray(s.environment)) {
    return Object.fromEntries(s.environment.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
  }
  return Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));
}

/** "host:container[/proto]" → host port. */
const hostPort = (p: string): string => p.split(":").slice(-2, -1)[0]!;

/** host:port pairs of a comma-separated NATS_URL. */
function natsHosts(url: string): { host: string; port: string }[] {
  return url.split(",").map((u) => {
    const m = /^nats:\/\/([^:/]+):(\d+)$/.exec(u.trim());
    if (!m) throw new Error(`not a nats:// URL: ${u}`);
    return { host: m[1]!, port: m[2]! };
  });
}

/** The NATS config file mounted into a nats service. */
function natsConfigOf(name: string): { file: string; text: string } {
  const mount = services[name]!.volumes!.find((v) => v.endsWith(":/etc/nats/nats-server.conf:ro"))!;
  const file = mount.split(":")[0]!;
  return { file, text: read(file) };
}

describe("docker-compose.yml", () => {
  it("has three NATS nodes, two coordinators, three agents and nats-box", () => {
    for (const n of [...NATS, ...COORDINATORS, ...AGENTS, "nats-box"]) expect(names, n).toContain(n);
  });

  it("runs the nats-server the tests run (scripts/tools.sh's pin, >= the 2.11 minimum) with its config file", () => {
    const pinned = /^NATS_SERVER_VERSION=v(\S+)$/m.exec(read("scripts/tools.sh"))?.[1];
    expect(pinned, "NATS_SERVER_VERSION in scripts/tools.sh").toBeDefined();
    for (const n of NATS) {
      const s = services[n]!;
      expect(s.image, n).toBe(`nats:${pinned}-alpine`);
      expect(serverVersionError(pinned, n), n).toBeNull();
      expect(s.command).toEqual(["--config", "/etc/nats/nats-server.conf"]);
      expect(existsSync(join(ROOT, natsConfigOf(n).file)), n).toBe(true);
    }
  });

  it("clusters the NATS nodes: distinct server names, one cluster name, routes naming every peer over TLS, JetStream synced always", () => {
    const serverNames = new Set<string>();
    const clusterNames = new Set<string>();
    for (const n of NATS) {
      const { file, text } = natsConfigOf(n);
      serverNames.add(/^server_name:\s*(\S+)/m.exec(text)?.[1] ?? "");
      clusterNames.add(/cluster\s*\{[^}]*?name:\s*(\S+)/s.exec(text)?.[1] ?? "");
      const js = /jetstream\s*\{([^}]*)\}/s.exec(text)?.[1] ?? "";
      expect(js, `${file}: jetstream store_dir`).toMatch(/store_dir:\s*\/data\//);
      expect(js, `${file}: sync_interval`).toMatch(/sync_interval:\s*always/);
      const routes = [...(/routes:\s*\[([^\]]*)\]/s.exec(text)?.[1] ?? "").matchAll(/nats-route:\/\/([^:\s]+):(\d+)/g)].map((m) => m[1]!);
      expect(new Set(routes), `${file}: routes`).toEqual(new Set(NATS.filter((p) => p !== n)));
      for (const peer of routes) expect(names, `${file}: route to ${peer}`).toContain(peer);
      expect(text, `${file}: cluster port`).toMatch(/cluster\s*\{[^}]*listen:\s*0\.0\.0\.0:6222/s);
      // Routes use TLS with the generated route certificate (test/route-tls.test.ts runs that block).
      expect(text, `${file}: route TLS`).toMatch(/cluster\s*\{[^}]*include\s+\.\.\/nats-deploy\/route-tls\.conf\s*\n\}/s);
      expect(text, `${file}: monitoring port`).toMatch(/^http:\s*0\.0\.0\.0:8222/m);
      // The store survives a container restart.
      expect(services[n]!.volumes!.some((v) => v.endsWith(":/data")), `${n} data volume`).toBe(true);
    }
    expect(serverNames.size).toBe(NATS.length);
    expect(serverNames.has("")).toBe(false);
    expect(clusterNames.size).toBe(1);
  });

  it("publishes no host port twice", () => {
    const ports = names.flatMap((n) => (services[n]!.ports ?? []).map(hostPort));
    expect(ports.length).toBeGreaterThan(0);
    expect(new Set(ports).size, ports.join(",")).toBe(ports.length);
    for (const c of COORDINATORS) expect(services[c]!.ports?.some((p) => p.endsWith(":50051")), c).toBe(true);
  });

  it("points every NATS_URL at all three NATS services' client port", () => {
    for (const n of [...COORDINATORS, ...AGENTS, "nats-box"]) {
      const url = env(services[n]!).NATS_URL;
      expect(url, `${n} NATS_URL`).toBeDefined();
      const hosts = natsHosts(url!);
      expect(new Set(hosts.map((h) => h.host)), n).toEqual(new Set(NATS));
      for (const h of hosts) {
        expect(names, `${n}: ${h.host}`).toContain(h.host);
        expect(natsConfigOf(h.host).text, `${n}: ${h.host}:${h.port}`).toMatch(new RegExp(`^listen:\\s*0\\.0\\.0\\.0:${h.port}`, "m"));
      }
    }
  });

  it("runs coordinators with three replicas, listening on all interfaces", () => {
    for (const c of COORDINATORS) {
      const e = env(services[c]!);
      expect(e.DEPLOY_STREAM_REPLICAS, c).toBe("3");
      expect(e.DEPLOY_GRPC_LISTEN, c).toBe("0.0.0.0:50051");
      expect(services[c]!.build, c).toMatchObject({ context: ".", target: "coordinator" });
    }
  });

  it("configures each agent: unique id, an environment, apps with a deploy executable that is mounted and exists, state and root on volumes", () => {
    const ids = new Set<string>();
    for (const a of AGENTS) {
      const s = services[a]!;
      const e = env(s);
      ids.add(e.DEPLOY_AGENT_ID!);
      expect(e.DEPLOY_AGENT_ID, a).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
      expect(e.DEPLOY_ENVIRONMENT, a).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
      expect(s.build, a).toMatchObject({ context: ".", target: "agent" });
      expect(s.init, `${a}: an init reaps orphaned hook processes`).toBe(true);
      const apps = JSON.parse(e.DEPLOY_AGENT_APPS!) as Record<string, { deploy?: string }>;
      expect(Object.keys(apps).length, a).toBeGreaterThan(0);
      for (const [app, cfg] of Object.entries(apps)) {
        if (cfg.deploy === undefined) continue;
        const mount = s.volumes!.find((v) => v.split(":")[1] === cfg.deploy);
        expect(mount, `${a}: apps.${app}.deploy ${cfg.deploy} is mounted`).toBeDefined();
        const hostFile = join(ROOT, mount!.split(":")[0]!);
        expect(statSync(hostFile).mode & 0o111, `${hostFile} is executable`).not.toBe(0);
      }
      for (const dir of [e.DEPLOY_AGENT_STATE_DIR!, e.DEPLOY_AGENT_ROOT!]) {
        const vol = s.volumes!.find((v) => v.split(":")[1] === dir);
        expect(vol, `${a}: ${dir} on a volume`).toBeDefined();
        expect(Object.keys(compose.volumes ?? {}), `${a}: named volume`).toContain(vol!.split(":")[0]);
      }
      // Room for DEPLOY_AGENT_SHUTDOWN_GRACE_MS before docker's SIGKILL.
      const graceS = Number(e.DEPLOY_AGENT_SHUTDOWN_GRACE_MS ?? 30_000) / 1000;
      expect(Number(/^(\d+)s$/.exec(s.stop_grace_period ?? "")?.[1]), `${a} stop_grace_period`).toBeGreaterThan(graceS);
    }
    expect(ids.size).toBe(AGENTS.length);
  });

  it("declares every named volume it uses, and uses every one it declares", () => {
    const declared = new Set(Object.keys(compose.volumes ?? {}));
    const used = new Set<string>();
    for (const n of names) {
      for (const v of services[n]!.volumes ?? []) {
        const src = v.split(":")[0]!;
        if (src.startsWith(".") || src.startsWith("/")) {
          expect(existsSync(join(ROOT, src)), `${n}: bind mount ${src} exists`).toBe(true);
        } else {
          used.add(src);
          expect(declared, `${n}: volume ${src}`).toContain(src);
        }
      }
    }
    expect(used).toEqual(declared);
  });

  it("has health checks on NATS (/healthz on the monitoring port) and coordinators, and waits for healthy NATS", () => {
    for (const n of NATS) {
      const test = [services[n]!.healthcheck?.test ?? []].flat().join(" ");
      expect(test, n).toContain("http://127.0.0.1:8222/healthz");
    }
    for (const c of COORDINATORS) expect([services[c]!.healthcheck?.test ?? []].flat().join(" "), c).toContain("--tls --ca /etc/nats-deploy/ca.pem --coordinator localhost:50051");
    for (const n of [...COORDINATORS, ...AGENTS, "nats-box"]) {
      const deps = services[n]!.depends_on as Record<string, { condition?: string }>;
      for (const nats of NATS) expect(deps[nats]?.condition, `${n} depends on ${nats}`).toBe("service_healthy");
    }
  });

  // Issue 18: what we ship for production runs secured.
  it("has no unauthenticated listener: no development mode, credentials for every coordinator, agent and NATS node", () => {
    for (const n of names) expect(env(services[n]!).DEPLOY_DEV_MODE, `${n} DEPLOY_DEV_MODE`).toBeUndefined();
    const mountsCredentials = (n: string): boolean => (services[n]!.volumes ?? []).includes("./deploy/compose/credentials:/etc/nats-deploy:ro");
    for (const [i, c] of COORDINATORS.entries()) {
      expect(services[c]!.env_file, c).toBe(`./deploy/compose/credentials/coordinator-${i + 1}.env`);
      expect(mountsCredentials(c), c).toBe(true);
    }
    for (const a of AGENTS) {
      expect(services[a]!.env_file, a).toBe(`./deploy/compose/credentials/agent-${env(services[a]!).DEPLOY_AGENT_ID}.env`);
      expect(mountsCredentials(a), a).toBe(true);
    }
    for (const n of NATS) {
      const { text } = natsConfigOf(n);
      expect(text, n).toMatch(/^include \.\.\/nats-deploy\/authorization\.conf$/m);
      expect(text, n).toMatch(/^include \.\.\/nats-deploy\/tls\.conf$/m);
      expect(mountsCredentials(n), n).toBe(true);
    }
    expect(env(services["nats-box"]!).NATS_NKEY).toBe("/etc/nats-deploy/admin.nk");
    expect(mountsCredentials("nats-box")).toBe(true);
  });

  it("the credentials command in its header writes every env file it names (gen-credentials, run for real)", () => {
    const header = read("docker-compose.yml");
    const args = /npm run gen-credentials -- --out deploy\/compose\/credentials \\\n#\s+(.*) \\\n#\s+(.*) \\\n#\s+(.*)\n/.exec(header);
    expect(args, "the gen-credentials command in docker-compose.yml's header").not.toBeNull();
    const argv = [args![1], args![2], args![3]].join(" ").replace(/--owner \S+/, "").split(/\s+/).filter(Boolean);
    const out = mkdtempSync(join(tmpdir(), "compose-creds-"));
    try {
      execFileSync(process.execPath, [join(ROOT, "dist/scripts/gen-credentials.js"), "--out", out, ...argv], { stdio: "pipe" });
      for (const n of [...COORDINATORS, ...AGENTS]) {
        const file = String(services[n]!.env_file).split("/").at(-1)!;
        expect(existsSync(join(out, file)), `${n}: ${file}`).toBe(true);
        for (const line of readFileSync(join(out, file), "utf8").split("\n").filter((l) => l.includes("/etc/nats-deploy/"))) {
          expect(existsSync(join(out, line.slice(line.indexOf("/etc/nats-deploy/") + "/etc/nats-deploy/".length))), `${file}: ${line}`).toBe(true);
        }
      }
      for (const f of ["authorization.conf", "tls.conf", "route-tls.conf", "route.pem", "route.key", "admin.nk", "ca.pem", "viewer.token"]) expect(existsSync(join(out, f)), f).toBe(true);
      // Each agent is bound to the environment and apps its service runs: the coordinators would refuse more.
      const bindings = readBindingsFile(join(out, "bindings.json"));
      for (const a of AGENTS) {
        const e = env(services[a]!);
        const apps = Object.keys(JSON.parse(e.DEPLOY_AGENT_APPS!) as object);
        expect(bindingProblem(bindings, e.DEPLOY_AGENT_ID!, e.DEPLOY_ENVIRONMENT!, apps), a).toBeUndefined();
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("every depends_on names a real service", () => {
    for (const n of names) {
      const deps = services[n]!.depends_on ?? [];
      for (const d of Array.isArray(deps) ? deps : Object.keys(deps)) expect(names, `${n} → ${d}`).toContain(d);
    }
  });
});

describe("sample app", () => {
  it("the sample bundle has a valid deploy.yaml whose hook scripts exist and are executable", () => {
    const dir = join(ROOT, "deploy/compose/sample/bundle");
    const files = new Set<string>();
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else files.add(relative(dir, p));
      }
    };
    walk(dir);
    const manifest = parseManifest(readFileSync(join(dir, "deploy.yaml"), "utf8"), files);
    expect(Object.keys(manifest.hooks).length).toBeGreaterThan(0);
    for (const h of Object.values(manifest.hooks)) expect(statSync(join(dir, h.run)).mode & 0o111, h.run).not.toBe(0);
  });
});

describe("Dockerfile", () => {
  const text = read("Dockerfile");
  const stages = [...text.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)].map((m) => ({ image: m[1]!, name: m[2] }));

  it("is multi-stage: node:20-slim build with npm ci and the build, production deps, and coordinator/agent targets", () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    expect(stages[0]!.image).toBe("node:20-slim");
    expect(text).toMatch(/RUN npm ci\b/);
    expect(text).toMatch(/RUN npm run build/);
    expect(text).toMatch(/npm ci --omit=dev/);
    const names = stages.map((s) => s.name);
    expect(names).toContain("coordinator");
    expect(names).toContain("agent");
    expect(text).toMatch(/ENTRYPOINT \["deploy-coordinator"\]/);
    expect(text).toMatch(/ENTRYPOINT \["deploy-agent"\]/);
  });

  it("copies only dist/, proto/, package.json and node_modules into the runtime", () => {
    const runtime = text.slice(text.search(/^FROM\s+\S+\s+AS\s+runtime/im));
    const copied = [...runtime.matchAll(/^COPY\s+(?:--from=\S+\s+)?(\S+)/gm)].map((m) => m[1]!);
    for (const c of copied) expect(c, c).toMatch(/^(\/src\/node_modules|\/src\/dist\/services|\/src\/dist\/dashboard|proto|package\.json)$/);
  });

  it("runs as a non-root user", () => {
    const users = [...text.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]!);
    expect(users.length).toBeGreaterThan(0);
    const last = users.at(-1)!;
    expect(["root", "0", "0:0"]).not.toContain(last);
  });

  it(".dockerignore keeps node_modules, dist and .git out of the context", () => {
    const ignored = read(".dockerignore").split("\n").map((l) => l.trim());
    for (const p of ["node_modules", "dist", ".git"]) expect(ignored).toContain(p);
  });
});

describe("systemd unit", () => {
  const unit = read("deploy/systemd/deploy-agent.service");
  const directive = (key: string): string[] => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, "gm"))].map((m) => m[1]!.trim());

  it("restarts on failure, reads its env file, and gives an apply more time to stop than the agent's grace", () => {
    expect(directive("Restart")).toEqual(["on-failure"]);
    expect(directive("EnvironmentFile")).toEqual(["/etc/deploy-agent/env"]);
    expect(directive("KillMode")).toEqual(["mixed"]);
    const stopS = Number(/^(\d+)s?$/.exec(directive("TimeoutStopSec")[0] ?? "")?.[1]);
    const env = read("deploy/systemd/deploy-agent.env.example");
    const graceMs = Number(/^DEPLOY_AGENT_SHUTDOWN_GRACE_MS=(\d+)/m.exec(env)?.[1] ?? 30_000);
    const wayBackMs = Number(/^DEPLOY_AGENT_SHUTDOWN_WAY_BACK_MS=(\d+)/m.exec(env)?.[1] ?? DEFAULT_SHUTDOWN_WAY_BACK_MS);
    expect(stopS * 1000).toBeGreaterThan(graceMs + wayBackMs);
  });

  it("is hardened and may write only its state dir and release root", () => {
    expect(directive("ProtectSystem")).toEqual(["strict"]);
    expect(directive("PrivateTmp")).toEqual(["true"]);
    const rw = directive("ReadWritePaths").join(" ").split(/\s+/);
    const env = read("deploy/systemd/deploy-agent.env.example");
    for (const key of ["DEPLOY_AGENT_STATE_DIR", "DEPLOY_AGENT_ROOT"]) {
      const dir = new RegExp(`^${key}=(\\S+)`, "m").exec(env)?.[1];
      expect(rw, key).toContain(dir);
    }
    expect(directive("ExecStart")[0]).toMatch(/dist\/services\/agent\/src\/main\.js$/);
    expect(directive("User")[0], "not root").not.toMatch(/^(root|0)?$/);
  });

  it("runs as root only with the app-accounts drop-in (hooks as each app's own account, apps.<app>.user)", () => {
    const dropIn = read("deploy/systemd/deploy-agent.service.d/app-accounts.conf");
    expect([...dropIn.matchAll(/^(User|Group)=(.*)$/gm)].map((m) => `${m[1]}=${m[2]}`)).toEqual(["User=root", "Group=root"]);
    expect(read("deploy/systemd/deploy-agent.service.d/no-new-privileges.conf")).not.toMatch(/^User=/m);
  });
});
