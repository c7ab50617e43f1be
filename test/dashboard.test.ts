// The web dashboard (services/dashboard, served by the coordinator's HTTP
// server) in a real browser against a real stack: Debian's Chromium driven by
// playwright-core. A deployment started through the gRPC API appears; its
// targets turn green live; the lists follow changes without a reload; the
// first paint shows the deployment, not "loading…"; a failing target shows
// its hook output and a bar coloured by outcome; a rollback is marked and the
// newest output line is in view; a dropped event stream (the page's or the
// coordinator's) resumes without gaps or repeats; tokens gate the page and a
// deployer cancels, pauses, promotes and resumes from it; an automatic
// revert links both ways.
import { createHash, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeBundle, script } from "./helpers/bundles.js";
import { DeployClient } from "./helpers/client.js";
import { freePort } from "./helpers/nats-server.js";
import { rawClient } from "./helpers/security.js";
import { Stack } from "./helpers/stack.js";
import { until } from "./helpers/wait.js";

const ROOT = resolve(import.meta.dirname, "..");
const CHROMIUM = [process.env.CHROMIUM_BIN ?? "", "/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => p && existsSync(p));
if (!CHROMIUM) console.warn("test/dashboard.test.ts SKIPPED: no chromium (apt-get install -y chromium; .ci/run installs it), or set CHROMIUM_BIN");
const describeIfChromium = CHROMIUM ? describe : describe.skip;

// The README's screenshot: written to docs/dashboard.png when missing or with
// DASHBOARD_SCREENSHOT=1, so an ordinary test run leaves the work tree alone.
const SCREENSHOT = !existsSync(join(ROOT, "docs/dashboard.png")) || process.env.DASHBOARD_SCREENSHOT === "1" ? join(ROOT, "docs/dashboard.png") : join(tmpdir(), `dashboard-${process.pid}.png`);

async function launch(): Promise<Browser> {
  // launch() gives every browser a fresh temporary profile (--user-data-dir).
  return chromium.launch({
    executablePath: CHROMIUM!,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** Sequences the page's event stream delivered, duplicates included. */
// The page's test hook (services/dashboard/app/pages/Deployment.tsx). Tests
// are compiled without the DOM library, hence globalThis; and no string
// evaluation, which the dashboard's Content-Security-Policy forbids.
type PageGlobals = { __dashboard?: { received: number[]; reconnect(): void }; __marker?: number };
const received = (page: Page): Promise<number[]> => page.evaluate(() => (globalThis as unknown as PageGlobals).__dashboard?.received.slice() ?? []);
const reconnect = (page: Page): Promise<void> => page.evaluate(() => (globalThis as unknown as PageGlobals).__dashboard?.reconnect());

// Tests are compiled without the DOM library: elements are opaque here.
type El = Record<string, unknown>;
type Styled = { getComputedStyle(e: unknown): { backgroundColor: string } };
const backgroundOf = (page: Page, selector: string): Promise<string> =>
  page.locator(selector).first().evaluate((el) => (globalThis as unknown as Styled).getComputedStyle(el).backgroundColor);
/** Tags an element; `isTagged` later tells whether the page kept that very node (updated in place, no flicker). */
const tag = (page: Page, selector: string): Promise<void> => page.locator(selector).evaluate((el) => void ((el as unknown as El).__kept = true));
const isTagged = (page: Page, selector: string): Promise<boolean> => page.locator(selector).evaluate((el) => (el as unknown as El).__kept === true);
// style.css: --succeeded, --failed, --applying.
const GREEN = "rgb(34, 160, 107)";
const RED = "rgb(220, 53, 69)";
const BLUE = "rgb(59, 130, 246)";

/** A bundle whose start hook prints `lines` numbered lines with $DEPLOY_VERSION (as the "[start] starting web v3.1.0"); `failValidate`: its validate hook fails. */
function startBundle(version: string, lines: number, failValidate: boolean): Promise<Buffer> {
  return makeBundle([
    { name: "deploy.yaml", content: "version: 1\nhooks:\n  start: { run: hooks/start.sh, timeout: 30s }\n  validate: { run: hooks/validate.sh, timeout: 30s }\nkeep_releases: 3\n" },
    { name: "hooks/start.sh", mode: 0o755, content: script(`for i in $(seq 1 ${lines}); do echo "starting web $DEPLOY_VERSION ($i/${lines}) from ${version}"; done`) },
    { name: "hooks/validate.sh", mode: 0o755, content: script(failValidate ? 'echo "health check failed" >&2\nexit 3' : 'echo "healthy"') },
  ]);
}

async function grpcSequences(client: DeployClient, id: string): Promise<number[]> {
  return (await client.events(id)).map((e) => Number(e.sequence));
}

/** Waits until the page's deployment is terminal and its stream has ended. */
async function waitFinished(page: Page, timeoutMs = 60_000): Promise<void> {
  await page.waitForSelector('#live-status:text("finished")', { timeout: timeoutMs });
}

async function sseIds(url: string, headers: Record<string, string> = {}): Promise<{ ids: number[]; ended: boolean }> {
  const res = await fetch(url, { headers: { Accept: "text/event-stream", ...headers } });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
  const text = await res.text(); // the server ends the stream after the terminal event
  return { ids: [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])), ended: /^event: end$/m.test(text) };
}

describeIfChromium("dashboard in a browser", () => {
  let stack: Stack;
  let browser: Browser;
  let page: Page;
  let base: string;
  let httpPort: number;
  const agents = ["a1", "a2", "a3", "a4"];

  beforeAll(async () => {
    httpPort = await freePort();
    stack = await Stack.start({ agents, coordinatorEnv: { DEPLOY_HTTP_LISTEN: `127.0.0.1:${httpPort}` } });
    base = `http://127.0.0.1:${httpPort}/`;
    browser = await launch();
    page = await browser.newPage({ viewport: { width: 1180, height: 900 } });
    page.on("pageerror", (err) => console.error("page error:", err));
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it("a deployment started through the API appears, and its targets turn green live", async () => {
    const client = stack.client();
    await page.goto(`${base}#/`);
    await page.waitForSelector("h1:text('Deployments')");
    // Long enough that a page loaded under a full suite's load still sees a
    // target running (1.2 s, two waves: one run in a full suite found it all green).
    for (const a of agents) await stack.control(a, { sleep: 3 });
    const d = await client.create({ requestId: `dash-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v1" }, strategy: { maxConcurrency: 2 }, requestedBy: "alice" });
    // No Refresh: the list follows.
    await page.click(`tr[data-deployment="${d.id}"] a`, { timeout: 20_000 });
    await page.waitForSelector(`.tile[data-agent="a4"]`);
    await page.evaluate(() => void ((globalThis as unknown as PageGlobals).__marker = 1));
    // Seen running, then green: the page follows the rollout without a reload.
    await page.waitForSelector('.tile[data-state="APPLYING"]', { timeout: 20_000 });
    await expect.poll(() => page.locator('.tile[data-state="SUCCEEDED"]').count(), { timeout: 60_000, interval: 100 }).toBe(4);
    await waitFinished(page);
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).__marker)).toBe(1);
    expect(await page.textContent("#deployment-state")).toBe("SUCCEEDED");
    expect(await page.textContent("#progress-text")).toBe("4 succeeded of 4");
    expect(await page.textContent(".facts")).toContain("alice");
    expect(await page.textContent(".facts")).toContain("2 at a time");
    // The log is exactly WatchDeployment's events.
    const seqs = (await page.locator("#events tr[data-seq] td:first-child").allTextContents()).map(Number);
    expect(seqs).toEqual(await grpcSequences(client, d.id!));
    expect(await page.textContent(`pre[data-output="a1"]`)).toContain("applying web v1 on a1");

    // Filters go into the URL and to ListDeployments.
    await page.goto(`${base}#/?app=web&env=prod&state=SUCCEEDED`);
    await page.waitForSelector(`tr[data-deployment="${d.id}"]`);
    await page.goto(`${base}#/?state=FAILED`);
    await page.waitForSelector("text=No deployment matches.");

    await page.goto(`${base}#/agents`);
    await page.waitForSelector('tr[data-agent="a4"]');
    for (const a of agents) expect(await page.textContent(`tr[data-agent="${a}"]`)).toMatch(/live.*prod.*web/);
    // An agent's id opens its history: the deployments it was a target of, with what each did on it.
    await page.click('tr[data-agent="a2"] a');
    await page.waitForSelector(`tr[data-deployment="${d.id}"] td[data-on-agent="SUCCEEDED"]`);
    expect(page.url()).toContain("#/?agent=a2");
    expect(await page.inputValue("input[name=agent]")).toBe("a2");
    await page.goto(`${base}#/agents`);
    await page.waitForSelector('tr[data-agent="a4"]');
    // A cordoned agent says so (the page polls), with who and why on hover; gone once uncordoned.
    const cordon = (method: "CordonAgent" | "UncordonAgent"): Promise<unknown> =>
      new Promise((resolve, reject) => {
        const c = stack.client();
        const fn = c.raw[method] as (req: object, cb: (e: Error | null, r: unknown) => void) => void;
        fn.call(c.raw, { agentId: "a4", reason: "disk swap" }, (e, r) => (e ? reject(e) : resolve(r)));
      });
    await cordon("CordonAgent");
    const badge = await page.waitForSelector('tr[data-agent="a4"] [data-cordoned]');
    expect(await badge.getAttribute("title")).toMatch(/^cordoned by anonymous \(development mode\) at .+: disk swap: takes no new deployment$/);
    await cordon("UncordonAgent");
    await page.waitForSelector('tr[data-agent="a4"] [data-cordoned]', { state: "detached" });
    // Filtered on the coordinator (a fleet of 10,000 is a page of 1,000 at a time): a selector no agent matches, then every agent again.
    await page.fill('input[name="selector"]', "zone=nowhere");
    await page.click('form.filters button[type="submit"]');
    await page.waitForSelector("text=No agent matches.");
    expect(page.url()).toContain("#/agents?selector=zone%3Dnowhere");
    await page.goto(`${base}#/agents?selector=${encodeURIComponent("!zone")}`);
    await page.waitForSelector('tr[data-agent="a4"]');
    expect(await page.textContent("#agents-count")).toMatch(/^4 of 4 live/);
  });

  it("the deployments and agents lists follow changes without a reload, in place, keeping their filters", async () => {
    const client = stack.client();
    await page.goto(`${base}#/?app=web&env=prod`);
    await page.waitForSelector("h1:text('Deployments')");
    await page.evaluate(() => void ((globalThis as unknown as PageGlobals).__marker = 2));
    // Applies long enough that the list sees the deployment before it ends.
    for (const a of agents) await stack.control(a, { sleep: 4 });
    const d = await client.create({ requestId: `dash-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v1-live" }, strategy: { maxConcurrency: 4 } });
    const row = `tr[data-deployment="${d.id}"]`;
    await page.waitForSelector(`${row} .state:text-matches("PENDING|RUNNING")`, { timeout: 20_000 });
    await tag(page, row);
    await tag(page, "table.deployments");
    await page.waitForSelector(`${row} .state:text("SUCCEEDED")`, { timeout: 60_000 });
    expect(await page.textContent(`${row} .outcome-text`)).toBe("4 succeeded of 4");
    // The same row and table, updated in place; no reload; the filters still applied and shown.
    expect(await isTagged(page, row)).toBe(true);
    expect(await isTagged(page, "table.deployments")).toBe(true);
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).__marker)).toBe(2);
    expect(await page.inputValue("input[name=app]")).toBe("web");
    expect(await page.inputValue("input[name=env]")).toBe("prod");

    // Agents: the current release (<version>-<end of the deployment id>) moves on without a reload.
    for (const a of agents) await stack.control(a, { sleep: 0.3 });
    await page.goto(`${base}#/agents`);
    await page.waitForSelector('tr[data-agent="a4"]');
    await tag(page, 'tr[data-agent="a1"]');
    const next = await client.create({ requestId: `dash-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v1-next" }, strategy: { maxConcurrency: 4 } });
    await page.waitForSelector(`tr[data-agent="a1"]:has-text("web: v1-next-${next.id!.slice(-8)}")`, { timeout: 30_000 });
    expect(await isTagged(page, 'tr[data-agent="a1"]')).toBe(true);
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).__marker)).toBe(2);
    await client.waitTerminal(next.id!);
  });

  it("the first paint of a running deployment shows its id at once and its targets from the first answer, not \"loading…\"", async () => {
    const client = stack.client();
    for (const a of agents) await stack.control(a, { sleep: 2 });
    const d = await client.create({ requestId: `dash-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v1-paint" }, strategy: { maxConcurrency: 2 } });
    // A fresh page: a full load, as a headless screenshot tool does it.
    const fresh = await browser.newPage({ viewport: { width: 1180, height: 900 } });
    try {
      await fresh.goto(`${base}#/deployments/${d.id}`);
      // Right after the load event, before any answer: the shell and the id.
      expect(await fresh.textContent("main h1")).toBe(d.id);
      expect(await fresh.textContent("body")).not.toContain("loading…");
      // The first JSON answer draws the targets (the event stream may not have said anything yet).
      await fresh.waitForSelector('#targets .tile[data-agent="a4"]');
      await fresh.screenshot({ path: join(tmpdir(), `dashboard-first-paint-${process.pid}.png`) });
      expect(await fresh.textContent("body")).not.toContain("loading…");
      expect(await fresh.locator("#targets .tile").count()).toBe(4);
      expect(await fresh.textContent("#deployment-state")).toMatch(/PENDING|RUNNING/);
      expect(await fresh.textContent("#progress-text")).toMatch(/ of 4$/);
    } finally {
      await fresh.close();
    }
    await client.waitTerminal(d.id!);
  });

  it("a failing target shows its hook output (and the README's screenshot)", async () => {
    const client = stack.client();
    for (const a of agents) await stack.control(a, { sleep: 0.3 });
    await stack.control("a3", "fail");
    try {
      const d = await client.create({ requestId: `dash-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v2" }, strategy: { maxConcurrency: 4 }, requestedBy: "bob" });
      await page.goto(`${base}#/deployments/${d.id}`);
      await page.waitForSelector('.tile[data-agent="a3"][data-state="FAILED"]', { timeout: 30_000 });
      await waitFinished(page);
      expect(await page.textContent('pre[data-output="a3"]')).toContain("validation failed on a3");
      expect(await page.textContent('tr[data-agent="a3"]')).toMatch(/exit code 3|exit/);
      expect(await page.locator('.tile[data-state="SUCCEEDED"]').count()).toBe(3);
      // The bar says how it turned out: green and red, nothing blue, no "done".
      expect(await page.textContent("#deployment-state")).toBe("FAILED");
      expect(await page.textContent("#progress-text")).toBe("3 succeeded, 1 failed of 4");
      expect(await page.locator('.outcome [data-part="failed"]').getAttribute("data-count")).toBe("1");
      expect(await backgroundOf(page, '.outcome [data-part="failed"]')).toBe(RED);
      expect(await backgroundOf(page, '.outcome [data-part="succeeded"]')).toBe(GREEN);
      for (const seg of await page.locator(".outcome .seg").all()) expect(await seg.evaluate((el) => (globalThis as unknown as Styled).getComputedStyle(el).backgroundColor)).not.toBe(BLUE);
      expect(await page.textContent(".progress")).not.toMatch(/\bdone\b/);
      await mkdir(join(ROOT, "docs"), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: false });

      // The list: not a full bar, the failed count, in red.
      await page.goto(`${base}#/?state=FAILED`);
      const row = `tr[data-deployment="${d.id}"]`;
      await page.waitForSelector(row);
      expect(await page.textContent(`${row} .outcome-text`)).toBe("3 succeeded, 1 failed of 4");
      expect(await backgroundOf(page, `${row} [data-part="failed"]`)).toBe(RED);
      expect(await page.locator(`${row} .seg-run`).count()).toBe(0);
    } finally {
      await stack.control("a3", "fail", false);
    }
  });

  it("a rollback is marked on its target, and the output box keeps the newest line in view", async () => {
    const client = stack.client();
    const deployBundle = async (version: string, failValidate: boolean): Promise<string> => {
      const art = await client.upload("web", await startBundle(version, 14, failValidate));
      const d = await client.create({
        requestId: `dash-${randomUUID()}`, app: "web", environment: "prod", changeset: { version, artifact: { name: "web", digest: art.digest } }, targets: ["a1"],
      });
      return d.id!;
    };
    const good = await deployBundle("v3.0.0", false);
    expect((await client.waitTerminal(good)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const bad = await deployBundle("v3.1.0", true);
    await page.goto(`${base}#/deployments/${bad}`);
    await waitFinished(page);
    expect(await page.textContent("#deployment-state")).toBe("FAILED");
    expect(await page.textContent("#progress-text")).toBe("1 failed of 1");
    // The record says the target rolled back: marked on the tile and the row.
    await page.waitForSelector('.tile[data-agent="a1"] .rolled-back');
    await page.waitForSelector('tr[data-agent="a1"] .rolled-back');
    expect(await page.textContent('tr[data-agent="a1"]')).toMatch(/validate hook failed.*rolled back/);
    // The rollback's start hook (the previous release's) is labelled as such, not as the new release's start.
    expect(await page.textContent('tr[data-agent="a1"] .rollback-note')).toContain("[rollback:start]");

    // The newest line: inside the box's visible rectangle, although the box overflows.
    const out = 'pre[data-output="a1"]';
    const last = page.locator(`${out} .line`).last();
    expect(await last.textContent()).toBe("[rollback:start] starting web v3.1.0 (14/14) from v3.0.0");
    expect(await page.locator(out).evaluate((el) => (el as unknown as { scrollHeight: number; clientHeight: number }).scrollHeight > (el as unknown as { clientHeight: number }).clientHeight)).toBe(true);
    const box = (await page.locator(out).boundingBox())!;
    const line = (await last.boundingBox())!;
    expect(line.height).toBeGreaterThan(0);
    expect(line.y).toBeGreaterThanOrEqual(box.y - 0.5);
    expect(line.y + line.height).toBeLessThanOrEqual(box.y + box.height + 0.5);
  });

  it("a dropped event stream resumes without gaps or repeats: from the page, and across a coordinator restart", async () => {
    let client = stack.client();
    for (const a of agents) await stack.control(a, { sleep: 0.8 });
    const d = await client.create({ requestId: `dash-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v3" }, strategy: { maxConcurrency: 1 } });
    await page.goto(`${base}#/deployments/${d.id}`);
    await expect.poll(async () => (await received(page)).length, { timeout: 20_000, interval: 100 }).toBeGreaterThanOrEqual(4);
    // The page drops its EventSource and resumes from the last id (?after=).
    await reconnect(page);
    await page.waitForSelector('.tile[data-agent="a2"][data-state="APPLYING"]', { timeout: 30_000 });
    await reconnect(page);
    // The coordinator dies mid-rollout: the browser reconnects with Last-Event-ID
    // to the restarted one (same HTTP port), which resumes the rollout too.
    await stack.coordinators[0]!.kill("SIGKILL");
    await new Promise((r) => setTimeout(r, 1500));
    const restarted = await stack.startCoordinator();
    client = stack.client(stack.coordinatorAddress(restarted));
    await waitFinished(page, 90_000);
    const got = await received(page);
    const want = await grpcSequences(client, d.id!);
    expect(got).toEqual(want);
    for (let i = 1; i < got.length; i++) expect(got[i]!).toBeGreaterThan(got[i - 1]!);
    expect(await page.textContent("#deployment-state")).toBe("SUCCEEDED");
  });

  it("a frozen environment is shown above the deployments; a deployment through the freeze says so", async () => {
    const client = stack.client(stack.coordinatorAddress(stack.coordinators.at(-1)!));
    await client.call("FreezeEnvironment", { environment: "prod", reason: "incident INC-7", duration: { seconds: "3600" } });
    try {
      expect(((await (await fetch(`${base}api/freezes`)).json()) as { freezes: { environment: string; reason: string }[] }).freezes).toEqual([
        expect.objectContaining({ environment: "prod", frozen: true, reason: "incident INC-7", by: "anonymous (development mode)" }),
      ]);
      await page.goto(`${base}#/`);
      const banner = await page.waitForSelector('[data-frozen="prod"]');
      expect(await banner.textContent()).toMatch(/^prod is frozen: new deployments to it are refused \(rollbacks and convergence still run\)\. frozen by anonymous \(development mode\) at .+ until .+: incident INC-7$/);
      const d = await until("the override accepted", () =>
        client.create({ requestId: `freeze-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v-hotfix" }, freezeOverrideReason: "hotfix for INC-7" }).catch(() => undefined),
      );
      await client.waitTerminal(d.id!);
      await page.waitForSelector(`tr[data-deployment="${d.id}"] [data-freeze-override]`);
      await page.goto(`${base}#/deployments/${d.id}`);
      expect(await (await page.waitForSelector("#freeze-override")).textContent()).toMatch(/^deployed through a freeze of prod \(frozen by anonymous \(development mode\) at .+: incident INC-7\), by anonymous \(development mode\): hotfix for INC-7$/);
    } finally {
      await client.call("UnfreezeEnvironment", { environment: "prod" });
    }
    await page.goto(`${base}#/`);
    await page.waitForSelector('[data-frozen="prod"]', { state: "detached" });
  });

  it("an environment's policy, and an app's there, are shown above the deployments, and go when they are cleared", async () => {
    const client = stack.client(stack.coordinatorAddress(stack.coordinators.at(-1)!));
    await client.call("SetEnvironmentPolicy", { environment: "prod", promoteFrom: "staging", minSoak: { seconds: "7200" }, requireCanary: true, reason: "prod runs what staging ran" });
    try {
      expect(((await (await fetch(`${base}api/policies`)).json()) as { policies: object[] }).policies).toEqual([
        expect.objectContaining({ environment: "prod", promoteFrom: "staging", requireCanary: true, reason: "prod runs what staging ran", by: "anonymous (development mode)" }),
      ]);
      await page.goto(`${base}#/`);
      const banner = await page.waitForSelector('[data-policy="prod"]');
      expect(await banner.textContent()).toMatch(
        /^prod accepts only promotions from staging, desired there at least 2h; a canary wave: other deployments to it are refused \(rollbacks, reverts and convergence still run\)\. Set by anonymous \(development mode\) at .+: prod runs what staging ran \(deployctl policy\)$/,
      );
      // One app's policy has a banner of its own, naming the app.
      await client.call("SetEnvironmentPolicy", { environment: "prod", app: "web", requireCanary: true, reason: "web canaries first" });
      const own = await page.waitForSelector('[data-policy="prod.web"]', { timeout: 15_000 });
      expect(await own.textContent()).toMatch(/^web in prod accepts a canary wave: other deployments of web to it are refused \(rollbacks, reverts and convergence still run\)\. Set by .+: web canaries first \(deployctl policy\)$/);
    } finally {
      await client.call("SetEnvironmentPolicy", { environment: "prod", reason: "dashboard test done" });
      await client.call("SetEnvironmentPolicy", { environment: "prod", app: "web", reason: "dashboard test done" });
    }
    await page.waitForSelector('[data-policy="prod"]', { state: "detached", timeout: 15_000 });
    await page.waitForSelector('[data-policy="prod.web"]', { state: "detached", timeout: 15_000 });
  });

  it("serves the API as JSON and the event stream with Last-Event-ID", async () => {
    const client = stack.client(stack.coordinatorAddress(stack.coordinators.at(-1)!));
    const list = (await (await fetch(`${base}api/deployments?app=web&env=prod`)).json()) as { deployments: { id: string; state: string }[] };
    const grpcList = await client.list({ app: "web", environment: "prod" });
    expect(list.deployments.map((x) => x.id)).toEqual(grpcList.deployments.map((x) => x.id));
    const id = list.deployments[0]!.id;
    expect(((await (await fetch(`${base}api/deployments/${id}`)).json()) as { state: string }).state).toBe((await client.get(id)).state);
    const agentsJson = (await (await fetch(`${base}api/agents`)).json()) as { agents: { id: string; live: boolean }[] };
    expect(agentsJson.agents.map((a) => a.id)).toEqual(agents);
    // A page at a time, as ListAgents: the token is the page's last id.
    const first = (await (await fetch(`${base}api/agents?pageSize=3`)).json()) as { agents: { id: string }[]; nextPageToken: string; total: number; live: number };
    expect(first).toMatchObject({ nextPageToken: "a3", total: 4, live: 4 });
    const rest = (await (await fetch(`${base}api/agents?pageSize=3&pageToken=${first.nextPageToken}`)).json()) as { agents: { id: string }[]; nextPageToken: string };
    expect(rest.agents.map((a) => a.id)).toEqual(["a4"]);
    expect((await fetch(`${base}api/agents?selector=${encodeURIComponent("zone in (")}`)).status).toBe(400);

    const all = await grpcSequences(client, id);
    const mid = all[Math.floor(all.length / 2)]!;
    expect(await sseIds(`${base}api/deployments/${id}/events`)).toEqual({ ids: all, ended: true });
    expect(await sseIds(`${base}api/deployments/${id}/events?after=${mid}`)).toEqual({ ids: all.filter((s) => s > mid), ended: true });
    // The header wins over ?after: it is what a reconnecting EventSource sends.
    expect(await sseIds(`${base}api/deployments/${id}/events?after=0`, { "Last-Event-ID": String(mid) })).toEqual({ ids: all.filter((s) => s > mid), ended: true });

    expect((await fetch(`${base}api/deployments/d-nope/events`)).status).toBe(404);
    expect((await fetch(`${base}api/deployments/${id}/events?after=-1`)).status).toBe(400);
    expect((await fetch(`${base}api/deployments?state=BOGUS`)).status).toBe(400);
    expect((await fetch(`${base}api/nothing`)).status).toBe(404);
    // No tokens configured: read-only.
    const cancel = await fetch(`${base}api/deployments/${id}/cancel`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    expect(cancel.status).toBe(403);
    const index = await fetch(base);
    expect(index.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect((await fetch(`${base}../../etc/passwd`)).status).toBe(404);
  });

  it("a promotion says which environment's release it deployed and when that release succeeded there", async () => {
    const client = stack.client(stack.coordinatorAddress(stack.coordinators.at(-1)!));
    await stack.startAgent("s1", { environment: "staging" });
    const staged = await client.create({ requestId: `dash-${randomUUID()}`, app: "web", environment: "staging", changeset: { version: "v-stage" } });
    expect((await client.waitTerminal(staged.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    const promoted = await client.create({ requestId: `dash-${randomUUID()}`, app: "web", environment: "prod", promoteFrom: "staging", targets: ["a1"] });
    expect((await client.waitTerminal(promoted.id!)).state).toBe("DEPLOYMENT_STATE_SUCCEEDED");
    await page.goto(`${base}#/deployments/${promoted.id}`);
    const row = await page.waitForSelector("#promoted-from");
    expect(await row.textContent()).toMatch(new RegExp(`^staging: its desired release v-stage \\(release v-stage-${staged.id!.slice(-8)}, from ${staged.id}, succeeded there .+\\)$`));
  });

  it("a result an agent reported after its target timed out is shown on the target's row", async () => {
    const client = stack.client(stack.coordinatorAddress(stack.coordinators.at(-1)!));
    await stack.control("a4", { sleep: 6 });
    const d = await client.create({ requestId: `dash-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v-late" }, targets: ["a4"] });
    await until("a4 applying", async () => (await client.get(d.id!)).targets?.[0]?.state === "TARGET_STATE_APPLYING");
    // Its agent stops heartbeating (paused) while its deploy executable goes on: the target times out.
    stack.agent("a4").signal("SIGSTOP");
    try {
      expect((await client.waitTerminal(d.id!, 60_000)).targets?.[0]?.state).toBe("TARGET_STATE_TIMED_OUT");
      // The page, open before the agent is back, shows its result when it comes, with no reload.
      await page.goto(`${base}#/deployments/${d.id}`);
      await page.waitForSelector('.tile[data-agent="a4"][data-state="TIMED_OUT"]');
    } finally {
      stack.agent("a4").signal("SIGCONT");
    }
    const late = await until("a4's late result", async () => (await client.get(d.id!)).targets?.[0]?.lateResult || undefined, 60_000);
    const note = await page.waitForSelector('tr[data-agent="a4"] [data-late-result]', { timeout: 60_000 });
    expect(await note.textContent()).toBe(`Then its agent reported, after the target was TIMED_OUT: ${late}`);
    // And a page opened after it shows it too.
    await page.goto("about:blank");
    await page.goto(`${base}#/deployments/${d.id}`);
    const again = await page.waitForSelector('tr[data-agent="a4"] [data-late-result]');
    expect(await again.textContent()).toBe(`Then its agent reported, after the target was TIMED_OUT: ${late}`);
    await stack.control("a4", { sleep: 0 });
  });
});

describeIfChromium("dashboard with tokens", () => {
  const viewer = `viewer-${randomUUID()}`;
  const deployer = `deployer-${randomUUID()}`;
  const sha = (t: string): string => createHash("sha256").update(t).digest("hex");
  let stack: Stack;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    const httpPort = await freePort();
    stack = await Stack.start({
      agents: ["a1", "a2", "a3"],
      coordinatorEnv: { DEPLOY_HTTP_LISTEN: `127.0.0.1:${httpPort}`, DEPLOY_GRPC_TOKENS: `ann:viewer:${sha(viewer)},dan:deployer:${sha(deployer)}` },
      // The page's cancel kills a1's apply within this.
      agentEnv: { DEPLOY_AGENT_KILL_LOOK_MS: "200" },
    });
    base = `http://127.0.0.1:${httpPort}/`;
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it("asks for a token; a viewer sees, a deployer cancels from the page", async () => {
    expect((await fetch(`${base}api/deployments`)).status).toBe(401);
    expect((await fetch(`${base}api/deployments`, { headers: { Authorization: "Bearer wrong" } })).status).toBe(401);
    expect((await fetch(`${base}api/deployments`, { headers: { Authorization: `Bearer ${viewer}` } })).status).toBe(200);

    const grpcClient = rawClient(stack.address, { token: deployer });
    // a1 applies until the page's cancel kills it.
    await stack.control("a1", { sleep: 60 });
    const d = await grpcClient.unary<{ id: string }>("CreateDeployment", {
      requestId: `dash-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v1" }, strategy: { maxConcurrency: 1 }, targets: ["a1", "a2", "a3"],
    });
    const viewerCancel = await fetch(`${base}api/deployments/${d.id}/cancel`, { method: "POST", headers: { Authorization: `Bearer ${viewer}`, "Content-Type": "application/json" }, body: "{}" });
    expect(viewerCancel.status).toBe(403);
    const badKill = await fetch(`${base}api/deployments/${d.id}/cancel`, { method: "POST", headers: { Authorization: `Bearer ${deployer}`, "Content-Type": "application/json" }, body: '{"kill":"yes"}' });
    expect(badKill.status).toBe(400);
    expect(await badKill.json()).toMatchObject({ error: "kill: must be true or false" });
    const badRevert = await fetch(`${base}api/deployments/${d.id}/cancel`, { method: "POST", headers: { Authorization: `Bearer ${deployer}`, "Content-Type": "application/json" }, body: '{"revert":1}' });
    expect(badRevert.status).toBe(400);
    expect(await badRevert.json()).toMatchObject({ error: "revert: must be true or false" });

    const page = await browser.newPage();
    try {
      await page.goto(`${base}#/deployments/${d.id}`);
      await page.fill("input[name=token]", "not-a-token");
      await page.click("button:text('Log in')");
      await page.waitForSelector("text=invalid token");
      await page.fill("input[name=token]", viewer);
      await page.click("button:text('Log in')");
      await page.waitForSelector('.tile[data-agent="a1"]');
      expect(await page.$("#cancel")).toBeNull();
      await page.click("button:text('log out')");
      await page.fill("input[name=token]", deployer);
      await page.click("button:text('Log in')");
      await page.click("#cancel");
      await page.fill(".cancel input", "wrong build");
      // And kill a1's apply (it sleeps 60 s), not wait for it.
      await page.check("#cancel-kill");
      // (Not rolled back: the box stays unticked.)
      expect(await page.isChecked("#cancel-revert")).toBe(false);
      await page.click("#confirm-cancel");
      await page.waitForSelector('#deployment-state:text("CANCELLED")', { timeout: 30_000 });
      const final = await grpcClient.unary<{ state: string; message: string; requestedBy: string; cancelledBy: string; killRequested: boolean; targets: { agentId: string; state: string; message: string }[] }>(
        "GetDeployment",
        { deploymentId: d.id },
      );
      expect(final.state).toBe("DEPLOYMENT_STATE_CANCELLED");
      expect(final.killRequested).toBe(true);
      expect(final.targets.find((t) => t.agentId === "a1")).toMatchObject({ state: "TARGET_STATE_FAILED", message: "killed: the deployment was cancelled with kill_running by dan" });
      expect(await page.textContent("#kill-requested")).toBe("the applies in flight are killed");
      expect(final.message).toContain("wrong build (from the dashboard)");
      // Who: the dashboard token's name; the deployment was created with the gRPC deployer token, also dan.
      expect(final.cancelledBy).toBe("dan");
      expect(final.requestedBy).toBe("dan");
      expect(await page.textContent("#cancelled-by")).toBe("dan");
    } finally {
      await page.close();
      grpcClient.close();
    }
  });

  it("a deployer freezes an environment from the page and lifts the freeze; a viewer may not; bad input is refused, naming it", async () => {
    const post = (path: string, token: string, body: object): Promise<Response> =>
      fetch(`${base}${path}`, { method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const byViewer = await post("api/freezes", viewer, { environment: "dash-freeze", reason: "no" });
    expect(byViewer.status).toBe(403);
    expect(await byViewer.json()).toMatchObject({ error: "freezing needs role deployer; ann has role viewer" });
    expect((await post("api/freezes/unfreeze", viewer, { environment: "dash-freeze" })).status).toBe(403);
    for (const [body, error] of [
      [{ environment: "dash-freeze" }, /^reason: is required/],
      [{ environment: "dash-freeze", reason: "x", for: "2 weeks" }, /^for: "2 weeks" is not a duration such as 30m, 2h or 3d/],
      [{ environment: "dash-freeze", reason: "x", windows: ["sat 00:00-sun 00:00"] }, /^windows: a recurring freeze is set with deployctl freeze --window/],
      [{ environment: "dash freeze", reason: "x" }, /^environment: /],
    ] as const) {
      const r = await post("api/freezes", deployer, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(((await r.json()) as { error: string }).error).toMatch(error);
    }
    const grpcClient = rawClient(stack.address, { token: deployer });
    type FreezeMsg = { environment: string; reason: string; by: string; until?: { seconds: string } };
    const frozen = async (): Promise<FreezeMsg[]> => (await grpcClient.unary<{ freezes?: FreezeMsg[] }>("ListFreezes", {})).freezes?.filter((f) => f.environment === "dash-freeze") ?? [];
    expect(await frozen()).toEqual([]);

    const page = await browser.newPage();
    try {
      await page.goto(base);
      await page.fill("input[name=token]", deployer);
      await page.click("button:text('Log in')");
      await page.click("#freeze");
      await page.fill("#freeze-env", "dash-freeze");
      await page.fill("#freeze-reason", "INC-9: error rate up");
      await page.fill("#freeze-for", "2h");
      await page.click("#confirm-freeze");
      const banner = await page.waitForSelector('[data-frozen="dash-freeze"]');
      expect(await banner.textContent()).toMatch(/^dash-freeze is frozen: new deployments to it are refused .* by dan at .+ until .+: INC-9: error rate up/);
      const [f] = await frozen();
      expect(f).toMatchObject({ reason: "INC-9: error rate up", by: "dan" });
      // 2 h from now, within the minute.
      expect(Math.abs(Number(f!.until!.seconds) * 1000 - Date.now() - 2 * 3_600_000)).toBeLessThan(60_000);
      // New deployments to it are refused, as from deployctl.
      await expect(grpcClient.unary("CreateDeployment", { requestId: `dash-${randomUUID()}`, app: "web", environment: "dash-freeze", changeset: { version: "v1" } })).rejects.toThrow(/frozen/);

      await page.click('[data-frozen="dash-freeze"] button.unfreeze');
      await page.click('[data-frozen="dash-freeze"] .confirm-unfreeze');
      await page.waitForSelector('[data-frozen="dash-freeze"]', { state: "detached" });
      expect(await frozen()).toEqual([]);
    } finally {
      await page.close();
      grpcClient.close();
    }
  });

  it("a deployer pauses, promotes and resumes a canary deployment from the page; the list marks it; a FAILED auto_revert links its revert; a FAILED one without it is reverted from the page", async () => {
    const grpcClient = rawClient(stack.address, { token: deployer });
    await stack.control("a1", { sleep: 3 }, false);
    const d = await grpcClient.unary<{ id: string }>("CreateDeployment", {
      requestId: `dash-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v2" }, strategy: { maxConcurrency: 3, canary: 1 }, targets: ["a1", "a2", "a3"],
    });
    const asViewer = (what: string): Promise<Response> =>
      fetch(`${base}api/deployments/${d.id}/${what}`, { method: "POST", headers: { Authorization: `Bearer ${viewer}`, "Content-Type": "application/json" }, body: "{}" });
    for (const what of ["pause", "resume", "promote"]) expect((await asViewer(what)).status, what).toBe(403);

    const page = await browser.newPage();
    try {
      await page.goto(`${base}#/deployments/${d.id}`);
      await page.fill("input[name=token]", deployer);
      await page.click("button:text('Log in')");
      await page.waitForSelector("#awaiting-badge", { timeout: 30_000 });
      expect(await page.textContent("#canary")).toMatch(/^a1 succeeded; awaiting promotion$/);
      await page.goto(`${base}#/`);
      await page.waitForSelector(`tr[data-deployment="${d.id}"] .badge:text("awaiting promotion")`);

      await page.goto(`${base}#/deployments/${d.id}`);
      await page.click("#pause");
      await page.fill(".pause input", "checking graphs");
      await page.click("#confirm-pause");
      await page.waitForSelector('#paused-by:has-text("dan")');
      await page.click("#promote");
      await page.waitForSelector('#promoted-by:text("promoted by dan")');
      // Promoted but paused: nothing beyond the canary is dispatched (the fold refuses it).
      const held = await grpcClient.unary<{ paused: boolean; targets: { agentId: string; state: string }[] }>("GetDeployment", { deploymentId: d.id });
      expect(held.paused).toBe(true);
      expect(held.targets.find((t) => t.agentId === "a2")?.state).toBe("TARGET_STATE_PENDING");
      await page.click("#resume");
      await page.waitForSelector('#deployment-state:text("SUCCEEDED")', { timeout: 30_000 });
      await page.waitForSelector('#events td:text("checking graphs (from the dashboard)")');

      // v2 is the desired release now: a FAILED deployment with auto_revert is reverted to it.
      await stack.control("a2", "fail");
      let failedId = "";
      try {
        const bad = await grpcClient.unary<{ id: string }>("CreateDeployment", {
          requestId: `dash-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v3" }, strategy: { maxConcurrency: 1, autoRevert: true }, targets: ["a1", "a2", "a3"],
        });
        failedId = bad.id;
        await page.goto(`${base}#/deployments/${bad.id}`);
        await page.waitForSelector('#deployment-state:text("FAILED")', { timeout: 30_000 });
      } finally {
        await stack.control("a2", "fail", false);
      }
      // reverted_by shows once the revert exists (made as the deployment finished): reload until it does.
      let revertId = "";
      for (let i = 0; i < 100 && !revertId; i++) {
        const got = (await (await fetch(`${base}api/deployments/${failedId}`, { headers: { Authorization: `Bearer ${viewer}` } })).json()) as { revertedBy?: string };
        revertId = got.revertedBy ?? "";
        if (!revertId) await new Promise((r) => setTimeout(r, 100));
      }
      expect(revertId).toMatch(/^d-/);
      await page.reload();
      await page.waitForSelector(`#reverted-by a:text("${revertId}")`);
      await page.click(`#reverted-by a`);
      await page.waitForSelector(`#reverts a:text("${failedId}")`);
      expect(await page.textContent("#restores")).toMatch(/^v2 \(release v2-\S+, from d-\S+\)$/);
      await page.waitForSelector('#deployment-state:text("SUCCEEDED")', { timeout: 30_000 });

      // Without auto_revert: reverted from the page afterwards (RevertDeployment), by a deployer only.
      await stack.control("a2", "fail");
      let v4 = "";
      try {
        v4 = (await grpcClient.unary<{ id: string }>("CreateDeployment", {
          requestId: `dash-${randomUUID()}`, app: "web", environment: "prod", changeset: { version: "v4" }, strategy: { maxConcurrency: 1 }, targets: ["a1", "a2", "a3"],
        })).id;
        await page.goto(`${base}#/deployments/${v4}`);
        await page.waitForSelector('#deployment-state:text("FAILED")', { timeout: 30_000 });
      } finally {
        await stack.control("a2", "fail", false);
      }
      expect((await fetch(`${base}api/deployments/${v4}/revert`, { method: "POST", headers: { Authorization: `Bearer ${viewer}`, "Content-Type": "application/json" }, body: "{}" })).status).toBe(403);
      await page.click("#revert");
      await page.click("#confirm-revert");
      await page.waitForSelector(`#reverts a:text("${v4}")`);
      expect(await page.textContent("#restores")).toMatch(/^v2 \(release v2-\S+, from d-\S+\)$/);
      await page.waitForSelector('#deployment-state:text("SUCCEEDED")', { timeout: 30_000 });
      await page.goto(`${base}#/deployments/${v4}`);
      await page.waitForSelector('#reverted-by:has-text("asked after it ended")');
      expect(await page.$("#revert")).toBeNull();
    } finally {
      await page.close();
      grpcClient.close();
    }
  });

  it("a deployer promotes the release of a deployment that SUCCEEDED to another environment from its page; a viewer may not; one its environment has moved on from is refused", async () => {
    const grpcClient = rawClient(stack.address, { token: deployer });
    await stack.startAgent("s1", { environment: "staging" });
    const stage = async (version: string): Promise<string> => {
      const { id } = await grpcClient.unary<{ id: string }>("CreateDeployment", { requestId: `dash-${randomUUID()}`, app: "web", environment: "staging", changeset: { version } });
      for (let i = 0; (await grpcClient.unary<{ state: string }>("GetDeployment", { deploymentId: id })).state !== "DEPLOYMENT_STATE_SUCCEEDED"; i++) {
        if (i > 300) throw new Error(`${id} did not succeed in staging`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return id;
    };
    const staged = await stage("v-stage");
    const post = (token: string, body: object): Promise<Response> =>
      fetch(`${base}api/promotions`, { method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const body = { requestId: `dash-${randomUUID()}`, app: "web", environment: "prod", from: "staging", deploymentId: staged, maxConcurrency: "3" };
    const byViewer = await post(viewer, body);
    expect(byViewer.status).toBe(403);
    expect(await byViewer.json()).toMatchObject({ error: "promoting a release needs role deployer; ann has role viewer" });
    for (const [bad, status, error] of [
      [{ ...body, maxConcurrency: "lots" }, 400, /^maxConcurrency: "lots" is neither a count nor a percentage/],
      [{ ...body, canary: "a few" }, 400, /^canary: "a few" is neither a count nor a percentage/],
      [{ ...body, from: undefined }, 400, /^from: is required/],
      [{ ...body, minSoak: "2 weeks" }, 400, /^minSoak: "2 weeks" is not a duration/],
      [{ ...body, minSoak: "2h" }, 409, /^promote_min_soak: the desired release of app web in staging \(v-stage, /],
    ] as const) {
      const r = await post(deployer, bad);
      expect(r.status, JSON.stringify(bad)).toBe(status);
      expect(((await r.json()) as { error: string }).error).toMatch(error);
    }

    const page = await browser.newPage();
    try {
      await page.goto(`${base}#/deployments/${staged}`);
      await page.fill("input[name=token]", deployer);
      await page.click("button:text('Log in')");
      await page.click("#promote-release");
      await page.fill("#promote-env", "prod");
      await page.fill("#promote-at", "3");
      await page.click("#confirm-promote-release");
      const row = await page.waitForSelector("#promoted-from");
      expect(await row.textContent()).toMatch(new RegExp(`^staging: its desired release v-stage \\(release v-stage-${staged.slice(-8)}, from ${staged}, succeeded there .+\\)$`));
      const promoted = decodeURIComponent(new URL(page.url()).hash.replace("#/deployments/", ""));
      await page.waitForSelector('#deployment-state:text("SUCCEEDED")', { timeout: 30_000 });
      const d = await grpcClient.unary<{ requestedBy: string; requestedByNote: string; changeset: { version: string }; strategy: { maxConcurrency: number } }>("GetDeployment", { deploymentId: promoted });
      expect(d).toMatchObject({ requestedBy: "dan", requestedByNote: "from the dashboard", changeset: { version: "v-stage" }, strategy: { maxConcurrency: 3 } });

      // Staging moves on: the old page's promotion is refused, naming the release staging has now.
      const next = await stage("v-stage2");
      await page.goto(`${base}#/deployments/${staged}`);
      await page.click("#promote-release");
      await page.fill("#promote-env", "prod");
      await page.click("#confirm-promote-release");
      const error = await page.waitForSelector("p.error");
      expect(await error.textContent()).toContain(`the desired release of web in staging is now v-stage2 (deployment ${next}), not ${staged}'s: promote from its page`);

      // With a canary wave, as a policy asking for one needs: it waits for its promote.
      const withCanary = await post(deployer, { requestId: `dash-${randomUUID()}`, app: "web", environment: "prod", from: "staging", deploymentId: next, maxConcurrency: "3", canary: "1" });
      expect(withCanary.status).toBe(200);
      const canaried = (await withCanary.json()) as { id: string; strategy: { canary?: number } };
      expect(canaried.strategy.canary).toBe(1);
      await grpcClient.unary("CancelDeployment", { deploymentId: canaried.id, reason: "test done" });
    } finally {
      await page.close();
      grpcClient.close();
    }
  });
});
