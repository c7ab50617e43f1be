// Writing decisions. The plan's decisions for a deployment are appended in
// two ways:
// - a delivery timeout or a cancel of a dispatched target races its agent's
//   start on the target's own subject (js/raceForTarget.ts): each expects the
//   last sequence the record knows there, and is refused when the agent
//   started (or anyone wrote there) since;
// - every other decision is chained on the deployment's coordinator subject:
//   each append expects the previous one to be the last coordinator event,
//   so another coordinator's decision in between makes ours fail instead of
//   doubling it.
import {
  COORDINATOR_SOURCE,
  ConflictError,
  appendEvent,
  turns,
  type DeploymentRecord,
  type EventBody,
  type JsContext,
  type Logger,
} from "../../../shared/src/index.js";
import type { CoordinatorMetrics } from "../metrics.js";
import { COMMANDS_IN_FLIGHT } from "./commands.js";

/**
 * Race decisions awaiting their acknowledgement at once, per process, for
 * the reason commands have a window (COMMANDS_IN_FLIGHT): a cancel of
 * 10,000 dispatched targets is 10,000 appends, stored one fsync after
 * another, and sent all at once the last would wait past the publish
 * timeout.
 */
const racesInFlight = turns(COMMANDS_IN_FLIGHT);

/**
 * Appends each race decision on its target's own subject. Returns the last
 * sequence stored, and whether any was refused (then the record must be
 * caught up to what won).
 */
export async function appendRaces(
  ctx: JsContext,
  record: DeploymentRecord,
  races: EventBody[],
  log: Logger,
  metrics?: CoordinatorMetrics,
): Promise<{ lastSeq: number; lost: boolean }> {
  let lastSeq = 0;
  let lost = false;
  await Promise.all(
    races.map(async (d) => {
      if (!("agentId" in d)) return;
      const done = await racesInFlight();
      try {
        const seq = await appendEvent(ctx, record.spec.id, d, {
          source: d.agentId,
          expectLastSubjectSeq: record.targets[d.agentId]?.subjectSeq ?? 0,
          cancelRequested: record.cancelRequested,
        });
        lastSeq = Math.max(lastSeq, seq);
        metrics?.decisions.inc({ type: d.type });
        log.debug({ type: d.type, agentId: d.agentId, seq }, "race decision appended");
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        lost = true;
        metrics?.casConflicts.inc();
        log.debug({ type: d.type, agentId: d.agentId }, "the agent (or another coordinator) wrote on the target first; reloading");
      } finally {
        done();
      }
    }),
  );
  return { lastSeq, lost };
}

/**
 * Appends `decisions` chained on the coordinator subject, after the last
 * coordinator event the record knows; `onStored` is called for each one
 * stored (its commands can go out at once). Returns the sequence of the last
 * one stored, or undefined when another coordinator decided first (then the
 * record must be caught up to the last event).
 */
export async function appendChained(
  ctx: JsContext,
  record: DeploymentRecord,
  decisions: EventBody[],
  onStored: (d: EventBody) => void,
  log: Logger,
  metrics?: CoordinatorMetrics,
): Promise<number | undefined> {
  let expect = record.lastCoordinatorSeq;
  try {
    for (const d of decisions) {
      expect = await appendEvent(ctx, record.spec.id, d, { source: COORDINATOR_SOURCE, expectLastSubjectSeq: expect, cancelRequested: record.cancelRequested, killRequested: record.killRequested === true });
      onStored(d);
      metrics?.decisions.inc({ type: d.type });
      log.debug({ type: d.type, agentId: "agentId" in d ? d.agentId : undefined, seq: expect }, "decision appended");
    }
    return expect;
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
    metrics?.casConflicts.inc();
    log.debug("another coordinator decided first; reloading");
    return undefined;
  }
}
