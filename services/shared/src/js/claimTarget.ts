// The claim on a dispatched target: exactly one of "its agent starts it" and
// "a coordinator times it out or cancels it" happens, decided by one KV create
// in deploy_claims. The agent claims before it runs anything; a coordinator
// claims before it appends target.timed_out (delivery) or target.cancelled.
// Whoever loses does nothing: the agent declines, the coordinator waits for
// the agent's result (or its silence, which times the apply out).
//
// This costs O(1) per target; it replaced a check that read the whole
// deployment back (O(targets) per agent, O(targets²) per rollout: 35% of the
// agents' CPU at 1,000 targets in the benchmark).
import { claimKey } from "../names.js";
import type { JsContext } from "./context.js";

/**
 * An agent's claim carries a nonce made for this one attempt: when the reply
 * to its create is lost (a saturated server), the retry finds the claim and
 * knows it is its own, instead of reading it as a claim from a lost journal.
 */
export type ClaimOwner = { by: "agent"; nonce?: string } | { by: "coordinator"; reason: "timeout" | "cancel" };

export interface ClaimResult {
  won: boolean;
  owner: ClaimOwner;
}

function parseOwner(text: string): ClaimOwner | undefined {
  try {
    const v = JSON.parse(text) as ClaimOwner;
    if (v?.by === "agent") return typeof v.nonce === "string" ? { by: "agent", nonce: v.nonce } : { by: "agent" };
    if (v?.by === "coordinator" && (v.reason === "timeout" || v.reason === "cancel")) return v;
  } catch {
    // fall through
  }
  return undefined;
}

/**
 * Claims (deployment, agent) for `owner`. A coordinator also "wins" a claim
 * another coordinator holds (their decisions are serialised by the event
 * stream's compare-and-set); an agent wins only a fresh claim, or the one
 * its own attempt made (same nonce) whose reply was lost: any other existing
 * agent claim without a journal entry means the journal was lost, and running
 * again could apply twice.
 */
export async function claimTarget(ctx: Pick<JsContext, "claims">, deploymentId: string, agentId: string, owner: ClaimOwner): Promise<ClaimResult> {
  const key = claimKey(deploymentId, agentId);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await ctx.claims.create(key, JSON.stringify(owner));
      return { won: true, owner };
    } catch (err) {
      const e = await ctx.claims.get(key);
      if (!e || e.operation !== "PUT") {
        if (attempt === 2) throw err;
        continue; // deleted meanwhile (bucket age limit): try again
      }
      const held = parseOwner(e.string()) ?? { by: "agent" }; // unreadable: assume the agent's, the safe side
      const ours = owner.by === "agent" && held.by === "agent" && owner.nonce !== undefined && held.nonce === owner.nonce;
      return { won: ours || (owner.by === "coordinator" && held.by === "coordinator"), owner: held };
    }
  }
  throw new Error("unreachable");
}

/** Who holds the claim, if anyone. */
export async function claimOwner(ctx: Pick<JsContext, "claims">, deploymentId: string, agentId: string): Promise<ClaimOwner | undefined> {
  const e = await ctx.claims.get(claimKey(deploymentId, agentId));
  return e && e.operation === "PUT" ? (parseOwner(e.string()) ?? { by: "agent" }) : undefined;
}
