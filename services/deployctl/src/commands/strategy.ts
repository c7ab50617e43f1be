// The rollout strategy flags deploy and rollback share, and the Strategy
// message they become. Every flag left out is left out of the request, so
// the coordinator's default applies (and a retry hashes the same).
import { Option, type Command } from "commander";
import { amountText, type Amount } from "../../../shared/src/amounts.js";
import type { Duration } from "../../../shared/src/gen/google/protobuf/Duration.js";
import type { Strategy } from "../../../shared/src/gen/deploy/v1/Strategy.js";
import { protoTime } from "../../../shared/src/proto.js";
import { UsageError } from "../errors.js";
import { amountOption, durationOption } from "../options.js";

export interface StrategyOptions {
  maxConcurrency?: Amount;
  maxFailures?: Amount;
  /** The canary wave: a count or a percentage of the targets. */
  canary?: Amount;
  canarySoak?: number;
  autoRevert?: boolean;
  maxPause?: number;
  onlyOutdated?: boolean;
  ignoreStopFailures?: boolean;
  /** Bake time: a target that succeeded keeps its slot this long. */
  soak?: number;
  deliveryTimeout?: number;
  applyTimeout?: number;
}

export function withStrategyOptions(cmd: Command): Command {
  return cmd
    .option("--max-concurrency <n|p%>", "targets applying at once: a count, or a percentage of the targets such as 10% (server default 1)", amountOption(1))
    .option(
      "--max-failures <n|p%>",
      "failures the rollout goes on after, a count or a percentage such as 25%; one more stops it (server default 0). Any failure still fails the deployment",
      amountOption(0),
    )
    .option(
      "--canary <n|p%>",
      "deploy to this many targets first (or a percentage of them, at least 1), then wait for deployctl promote <id>; any canary that fails halts the rollout, whatever --max-failures says",
      amountOption(1),
    )
    .addOption(
      new Option("--canary-soak <duration>", "promote by itself once every canary succeeded and this long has passed without a failure (e.g. 10m); needs --canary")
        .argParser(durationOption),
    )
    .addOption(
      new Option(
        "--soak <duration>",
        "bake time: each target that succeeds keeps its --max-concurrency slot this long before the next target starts (e.g. 5m), time to watch the release before it goes further",
      ).argParser(durationOption),
    )
    .option("--auto-revert", "if the deployment FAILS, bring the targets it changed back to the release that was desired before it (a linked deployment)")
    .option(
      "--ignore-stop-failures",
      "when the release in place fails its stop hook, install the new one all the same (the way out of a broken stop hook); the target's message says so",
    )
    .option(
      "--only-outdated",
      "leave out the targets that already run this version and artifact: they are recorded SKIPPED (already on <release>) and count as done, so a retry after a partial failure deploys only to the rest",
    )
    .addOption(
      new Option(
        "--apply-timeout <duration>",
        "how long one target's apply may run (the deploy executable, or a bundle's hooks together) before its agent kills it and the target FAILS (e.g. 30m for a long migration; server default 10m, at most 168h)",
      ).argParser(durationOption),
    )
    .addOption(
      new Option(
        "--delivery-timeout <duration>",
        "how long a dispatched target may wait for its agent to start before it is TIMED_OUT (an agent that is down or stuck; server default 60s, at most 168h)",
      ).argParser(durationOption),
    )
    .addOption(
      new Option("--max-pause <duration>", "how long it may stay paused or wait for a promote before the rest is cancelled (server default 24h, at most 168h)")
        .argParser(durationOption),
    );
}

/** What the coordinator would refuse anyway, refused before a bundle is uploaded for nothing. */
export function checkStrategy(o: StrategyOptions): void {
  if (o.canarySoak !== undefined && o.canary === undefined) throw new UsageError("--canary-soak needs --canary (the wave it lets soak)");
}

const duration = (ms: number): Duration => protoTime(ms);

/** A count goes in the integer field, a percentage in its _percent twin ("10%"); neither when not given (the server's default). */
export function strategyOf(o: StrategyOptions): Strategy {
  const st: Strategy = {};
  if (o.maxConcurrency !== undefined) {
    if ("count" in o.maxConcurrency) st.maxConcurrency = o.maxConcurrency.count;
    else st.maxConcurrencyPercent = amountText(o.maxConcurrency);
  }
  if (o.maxFailures !== undefined) {
    if ("count" in o.maxFailures) st.maxFailures = o.maxFailures.count;
    else st.maxFailuresPercent = amountText(o.maxFailures);
  }
  if (o.canary !== undefined) {
    if ("count" in o.canary) st.canary = o.canary.count;
    else st.canaryPercent = amountText(o.canary);
  }
  if (o.canarySoak !== undefined) st.canarySoak = duration(o.canarySoak);
  if (o.autoRevert) st.autoRevert = true;
  if (o.onlyOutdated) st.onlyOutdated = true;
  if (o.ignoreStopFailures) st.ignoreStopFailures = true;
  if (o.maxPause !== undefined) st.maxPause = duration(o.maxPause);
  if (o.soak !== undefined) st.soak = duration(o.soak);
  if (o.applyTimeout !== undefined) st.applyTimeout = duration(o.applyTimeout);
  if (o.deliveryTimeout !== undefined) st.deliveryTimeout = duration(o.deliveryTimeout);
  return st;
}
