// ListDeployments' answer stays under gRPC's default 4 MiB receive limit
// whatever its deployments hold: each comes with its first targets while
// the page's shared budget (~2 MiB) lasts, then with none and a
// next_page_token (GetDeployment pages on); its counts are always whole.
// 20 deployments of 1,000 targets with typical messages were ~6 MB in one
// answer, and `deployctl list` failed with RESOURCE_EXHAUSTED.
import { describe, expect, it } from "vitest";
import { listPage, TARGET_PAGE_BYTES } from "../services/coordinator/src/grpc/convert.js";
import { foldEvent, makeEvent, type DeploymentRecord, type DeploymentSpec } from "../services/shared/src/index.js";

function bigDeployment(i: number): DeploymentRecord {
  const id = `d-0mx5mrff${String(i).padStart(2, "0")}-188a5428`;
  const targets = Array.from({ length: 1000 }, (_, k) => `agent-${String(k).padStart(5, "0")}`);
  const spec: DeploymentSpec = {
    id,
    requestId: `r-${i}`,
    requestHash: "h".repeat(64),
    app: "web",
    environment: "prod",
    changeset: { version: "v1" },
    strategy: { maxConcurrency: 1000, maxFailures: 0, deliveryTimeoutMs: 60_000, applyTimeoutMs: 60_000 },
    targets,
    requestedBy: "ci",
  };
  const time = new Date().toISOString();
  const rec = foldEvent(undefined, { seq: 1, time, source: "coordinator", event: makeEvent(id, { type: "deployment.created", spec }) }).record!;
  for (const t of Object.values(rec.targets)) Object.assign(t, { state: "SUCCEEDED", message: "m".repeat(150), lastOutput: "o".repeat(200), dispatchedAt: time, startedAt: time, finishedAt: time });
  return rec;
}

describe("a page of ListDeployments", () => {
  it("shares one budget of targets: the first deployments whole, the later ones with a token to page on, every count whole", () => {
    const page = listPage(Array.from({ length: 20 }, (_, i) => bigDeployment(i)));
    // JSON is longer than the protobuf gRPC sends.
    const bytes = JSON.stringify(page).length;
    console.log(`[list page] 20 deployments of 1,000 targets: ${bytes} bytes as JSON, targets ${page.map((d) => d.targets?.length ?? 0).join(" ")}`);
    expect(bytes).toBeLessThan(4 * 1024 * 1024);
    expect(page[0]!.targets).toHaveLength(1000);
    expect(page[0]!.nextPageToken).toBe("");
    const cut = page.findIndex((d) => (d.targets?.length ?? 0) < 1000);
    expect(cut).toBeGreaterThan(0);
    for (const d of page.slice(cut)) expect(d.nextPageToken).toBe(`t${d.targets?.length ?? 0}`);
    expect(page.at(-1)!.targets).toHaveLength(0);
    for (const d of page) expect(d.counts).toEqual([{ state: "TARGET_STATE_SUCCEEDED", count: 1000 }]);
    expect(TARGET_PAGE_BYTES).toBe(2 * 1024 * 1024);
  });
});
