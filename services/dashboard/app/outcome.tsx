// How a deployment's targets turned out, as a bar coloured by outcome and a
// sentence ("2 succeeded, 2 failed of 4"), for the list and the deployment
// page alike. Never one "done" fill: a target that failed counts as failed,
// not as finished, so a FAILED or CANCELLED deployment cannot pass for a clean
// success.
import { short } from "./format.js";

type Part = "succeeded" | "failed" | "timedOut" | "cancelled" | "skipped" | "inProgress" | "pending";

const PART_OF: Record<string, Part> = {
  SUCCEEDED: "succeeded",
  FAILED: "failed",
  TIMED_OUT: "timedOut",
  CANCELLED: "cancelled",
  SKIPPED: "skipped",
  DISPATCHED: "inProgress",
  APPLYING: "inProgress",
  PENDING: "pending",
};

// Left to right in the bar, and the order of the sentence. `tone` picks the
// colour (style.css): green, red, grey, blue; pending is the empty track.
const PARTS: { part: Part; label: string; tone: "ok" | "bad" | "off" | "run" | "wait" }[] = [
  { part: "succeeded", label: "succeeded", tone: "ok" },
  { part: "failed", label: "failed", tone: "bad" },
  { part: "timedOut", label: "timed out", tone: "bad" },
  { part: "cancelled", label: "cancelled", tone: "off" },
  { part: "skipped", label: "skipped", tone: "off" },
  { part: "inProgress", label: "in progress", tone: "run" },
  { part: "pending", label: "pending", tone: "wait" },
];

export interface Outcome {
  counts: Record<Part, number>;
  total: number;
  text: string;
}

/** `states`: the targets' states, short or enum names; `deploymentState` likewise. */
export function outcomeOf(states: Iterable<string>, deploymentState: string): Outcome {
  const counts: Record<Part, number> = { succeeded: 0, failed: 0, timedOut: 0, cancelled: 0, skipped: 0, inProgress: 0, pending: 0 };
  let total = 0;
  for (const s of states) {
    total++;
    counts[PART_OF[short(s)] ?? "pending"]++;
  }
  const said = PARTS.filter((p) => counts[p.part] > 0).map((p) => `${counts[p.part]} ${p.label}`);
  let text = total === 0 ? "no targets" : `${said.join(", ")} of ${total}`;
  // A deployment that failed or was cancelled after every target it ran had
  // succeeded (a cancel lets running targets finish) still says so.
  const d = short(deploymentState);
  const unclean = counts.failed + counts.timedOut + counts.cancelled + counts.skipped > 0;
  if ((d === "FAILED" || d === "CANCELLED") && !unclean) text += `; deployment ${d.toLowerCase()}`;
  return { counts, total, text };
}

export function OutcomeBar({ outcome, textId }: { outcome: Outcome; textId?: string }) {
  return (
    <span class="outcome">
      <span class="outcome-bar" role="img" aria-label={outcome.text}>
        {PARTS.filter((p) => outcome.counts[p.part] > 0).map((p) => {
          const n = outcome.counts[p.part];
          // A CSSOM property, not a style attribute: the Content-Security-Policy allows no inline style.
          return <span key={p.part} class={`seg seg-${p.tone}`} data-part={p.part} data-count={n} title={`${n} ${p.label}`} style={{ flexGrow: String(n) }} />;
        })}
      </span>
      <span class="outcome-text" id={textId}>{outcome.text}</span>
    </span>
  );
}
