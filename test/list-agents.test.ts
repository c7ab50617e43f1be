// ListAgents at fleet size: pages (in id order, a token that is the last id
// of the page, a total over every page), a label selector and a release
// status filter, on a real nats-server, coordinator and agents from dist/.
// A page also ends before ~2 MiB, so a fleet of 10,000 agents never makes
// an answer over gRPC's default 4 MiB a client receives (this used to fail
// `deployctl agents`): the byte cap is checked on the function, with agents
// whose labels make each one ~10 KB. deployctl agents follows the pages and
// takes --selector and --status.
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ListAgentsResponse__Output } from "../services/shared/src/gen/deploy/v1/ListAgentsResponse.js";
import { listAgentsPage } from "../services/coordinator/src/queries/listAgents.js";
import type { ReleaseBook } from "../services/coordinator/src/releases/releaseBook.js";
import type { AgentView, Registry } from "../services/coordinator/src/registry.js";
import { validateListAgents } from "../services/coordinator/src/requests.js";
import { AGENT_SCHEMA } from "../services/shared/src/index.js";
import { grpcError, type DeployClient } from "./helpers/client.js";
import { runCli, type CliResult } from "./helpers/deployctl.js";
import { Stack } from "./helpers/stack.js";

const ids = (r: ListAgentsResponse__Output): string[] => (r.agents ?? []).map((a) => a.id ?? "");

describe("ListAgents pages and filters", () => {
  let stack: Stack;
  let client: DeployClient;
  const list = (req: object): Promise<ListAgentsResponse__Output> => client.call("ListAgents", req);
  const cli = (args: string[]): Promise<CliResult> =>
    runCli(args, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmpdir(), DEPLOY_COORDINATOR: stack.address, DEPLOYCTL_RETRY_BUDGET_MS: "2000" } });

  beforeAll(async () => {
    stack = await Stack.start({ agents: [] });
    client = stack.client();
    for (const [id, zone] of [["b1", "x"], ["b2", "y"], ["b3", "x"], ["b4", "y"], ["b5", "x"]] as const) {
      await stack.startAgent(id, { env: { DEPLOY_AGENT_LABELS: JSON.stringify({ zone }) } });
    }
    // b1, b2 on v1 (the desired release); the others have nothing yet.
    const d = await client.create({ requestId: `v1-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v1" }, strategy: { maxConcurrency: 2 }, targets: ["b1", "b2"] });
    expect((await client.waitTerminal(d.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("pages in id order: the token is the page's last id, the total counts every page, the last page has no token", async () => {
    const first = await list({ pageSize: 2 });
    expect(ids(first)).toEqual(["b1", "b2"]);
    expect(first.nextPageToken).toBe("b2");
    expect(first.total).toBe(5);
    const second = await list({ pageSize: 2, pageToken: first.nextPageToken });
    expect(ids(second)).toEqual(["b3", "b4"]);
    const last = await list({ pageSize: 2, pageToken: second.nextPageToken });
    expect(ids(last)).toEqual(["b5"]);
    expect(last.nextPageToken).toBe("");
    // Without a page size: up to 1,000, here every agent on one page.
    const all = await list({});
    expect(ids(all)).toEqual(["b1", "b2", "b3", "b4", "b5"]);
    expect(all.nextPageToken).toBe("");
    // A token past every agent: an empty last page.
    const past = await list({ pageToken: "zzz" });
    expect(ids(past)).toEqual([]);
    expect(past).toMatchObject({ nextPageToken: "", total: 5 });
  });

  it("a selector and a release status filter, together and with pages", async () => {
    expect(ids(await list({ selector: "zone=x" }))).toEqual(["b1", "b3", "b5"]);
    expect(ids(await list({ app: "web", status: "RELEASE_STATUS_CURRENT" }))).toEqual(["b1", "b2"]);
    expect(ids(await list({ app: "web", status: "RELEASE_STATUS_OUTDATED" }))).toEqual(["b3", "b4", "b5"]);
    const page = await list({ app: "web", status: "RELEASE_STATUS_OUTDATED", selector: "zone=x", pageSize: 1 });
    expect(page).toMatchObject({ nextPageToken: "b3", total: 2 });
    expect(ids(page)).toEqual(["b3"]);
  });

  it("bad filters and pages are INVALID_ARGUMENT naming the field", async () => {
    for (const [req, field] of [
      [{ pageSize: 10_001 }, "page_size"],
      [{ pageToken: "not an id" }, "page_token"],
      [{ selector: "zone in (" }, "selector"],
    ] as const) {
      const err = await grpcError(list(req));
      expect(err.code, JSON.stringify(req)).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.details).toContain(field);
    }
    // An enum name the client does not know is sent as 0 by grpc-js: checked on the validation itself.
    expect(() => validateListAgents({ status: "RELEASE_STATUS_MAYBE" })).toThrow(/status: unknown release status RELEASE_STATUS_MAYBE/);
  });

  it("deployctl agents follows the pages and takes --selector and --status", async () => {
    const out = await cli(["agents", "--app", "web", "--status", "outdated", "--selector", "zone=x"]);
    expect(out.code, out.stderr).toBe(0);
    const rows = out.stdout.split("\n").filter((l) => /^b\d/.test(l)).map((l) => l.split(/\s+/)[0]);
    expect(rows).toEqual(["b3", "b5"]);
    const json = JSON.parse((await cli(["agents", "--json"])).stdout) as ListAgentsResponse__Output;
    expect(ids(json)).toEqual(["b1", "b2", "b3", "b4", "b5"]);
  });

  it("a page ends before ~2 MiB whatever the page size: 300 agents of ~10 KB each take two pages or more", async () => {
    const labels = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`label-${i}`, "v".repeat(250)]));
    const views: AgentView[] = Array.from({ length: 300 }, (_, i) => ({
      record: { schema: AGENT_SCHEMA, id: `big-${String(i).padStart(3, "0")}`, environment: "prod", apps: ["web"], host: "h", version: "1", labels, currentReleases: {}, startedAt: new Date().toISOString() },
      heartbeatAt: Date.now(),
      revision: 1,
    }) as unknown as AgentView);
    const registry = {
      hearing: () => Promise.resolve(),
      clock: { now: () => Date.now() },
      list: () => views,
      isLive: () => true,
      cordonOf: () => undefined,
    } as unknown as Registry;
    const releases = { get: () => undefined } as unknown as ReleaseBook;
    let token: string | undefined;
    const pages: number[] = [];
    do {
      const page = await listAgentsPage(registry, releases, validateListAgents({ pageSize: 10_000, pageToken: token ?? "" }));
      expect(page.total).toBe(300);
      expect(JSON.stringify(page.agents).length).toBeLessThanOrEqual(2 * 1024 * 1024 + 20_000);
      pages.push(page.agents.length);
      token = page.nextPageToken || undefined;
    } while (token !== undefined);
    expect(pages.length).toBeGreaterThanOrEqual(2);
    expect(pages.reduce((a, b) => a + b, 0)).toBe(300);
  });
});
