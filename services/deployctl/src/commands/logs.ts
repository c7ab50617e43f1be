// deployctl logs <id> [--target AGENT] [--follow]: what the agents' applies
// printed (the deploy executable, or each hook of a bundle), read back from
// the deployment's events (target.progress) through WatchDeployment, so a
// failed hook's output is read without a shell on the VM (CodeDeploy's
// scripts.log). Each apply sends its first DEPLOY_AGENT_MAX_OUTPUT_LINES
// lines (200 by default; the rest are counted as cut), each line at most
// DEPLOY_AGENT_MAX_LINE_LENGTH characters, kept as long as the deployment's
// events (streams.eventsMaxAgeMs).
//
// stdout has the lines only, so they can be piped: `a1 | <line>` for every
// target, the bare line with --target. Without --follow it stops at the
// deployment's last event when asked; with it, at the deployment's end.
import type { Client, DeploymentEventMsg, DeploymentMsg } from "../client.js";
import { Backoff } from "../client.js";
import { CliError, EXIT, isRetryable, type ExitCode } from "../errors.js";
import { clientFor, type CommonOptions } from "../options.js";
import { isTerminalDeployment, shortState, tsMs } from "../render/format.js";

export interface LogsOptions extends CommonOptions {
  /** Only this target's lines, without the agent id in front. */
  target?: string;
  /** Go on printing lines as they come until the deployment ends. */
  follow?: boolean;
}

/** The largest page GetDeployment gives (proto: page_size at most 10,000). */
const TARGET_PAGE = 10_000;

/** The target `agentId` of `d`, looked for page by page (a deployment has up to 100,000 targets). */
async function findTarget(client: Client, d: DeploymentMsg, agentId: string): Promise<NonNullable<DeploymentMsg["targets"]>[number] | undefined> {
  let page: DeploymentMsg = d;
  for (;;) {
    const t = page.targets?.find((x) => x.agentId === agentId);
    if (t) return t;
    if (!page.nextPageToken) return undefined;
    page = await client.getDeployment(d.id ?? "", { pageSize: TARGET_PAGE, pageToken: page.nextPageToken });
  }
}

interface OutputLine {
  sequence: number;
  time: string;
  agentId: string;
  line: string;
}

export async function logsCommand(id: string, o: LogsOptions): Promise<ExitCode> {
  const client = clientFor(o);
  try {
    // Targets are read only to find --target's: otherwise a page of one.
    const pageSize = o.target === undefined ? 1 : TARGET_PAGE;
    const first = await client.getDeployment(id, { pageSize });
    if (o.target !== undefined && !(await findTarget(client, first, o.target))) {
      throw new CliError(`NOT_FOUND: agent ${o.target} is not a target of deployment ${id} (deployctl get ${id} lists them)`, EXIT.USAGE);
    }
    // Without --follow: up to the last event stored when asked.
    const upTo = o.follow ? Number.POSITIVE_INFINITY : Number(first.lastSequence ?? 0);
    const collected: OutputLine[] = [];
    const cut = new Map<string, number>();
    const onEvent = (e: DeploymentEventMsg): void => {
      const agent = e.agentId ?? "";
      if (o.target !== undefined && agent !== o.target) return;
      // Lines cut: past the agent's limit (said in the result's message:
      // "exit code 0; 5 output line(s) cut after 200"), or a batch over an
      // event's size (said in the progress event's).
      const n = /(\d+) output line\(s\) cut/.exec(e.message ?? "");
      if (n && (e.type === "target.progress" || e.type === "target.result")) cut.set(agent, (cut.get(agent) ?? 0) + Number(n[1]));
      if (e.type !== "target.progress") return;
      for (const line of e.lines ?? []) {
        if (o.json) collected.push({ sequence: Number(e.sequence ?? 0), time: timeOf(e), agentId: agent, line });
        else process.stdout.write(o.target !== undefined ? `${line}\n` : `${agent} | ${line}\n`);
      }
    };
    const last = await readEvents(client, id, upTo, onEvent);
    const d = await client.getDeployment(id, { pageSize });
    if (o.json) {
      process.stdout.write(JSON.stringify({ deploymentId: id, state: d.state, lastSequence: String(last), lines: collected }) + "\n");
      return EXIT.OK;
    }
    // What the lines do not say, on stderr: how the target ended, and lines the agents did not send.
    if (o.target !== undefined) {
      const t = await findTarget(client, d, o.target);
      process.stderr.write(`${o.target}: ${shortState(t?.state)}${t?.message ? `: ${t.message}` : ""}\n`);
    }
    for (const [agent, n] of cut) process.stderr.write(`${agent}: ${n} more output line(s) not sent by the agent (its DEPLOY_AGENT_MAX_OUTPUT_LINES)\n`);
    if (!o.follow && !isTerminalDeployment(d.state)) process.stderr.write(`deployment ${id} is ${shortState(d.state)}: more may come (deployctl logs ${id} --follow)\n`);
    return EXIT.OK;
  } finally {
    client.close();
  }
}

/** The event's time, RFC 3339 with milliseconds ("" when absent). */
function timeOf(e: DeploymentEventMsg): string {
  const ms = e.time ? tsMs(e.time) : undefined;
  return ms === undefined ? "" : new Date(ms).toISOString();
}

/**
 * The deployment's events after 0 through `onEvent`, until the one at
 * `upTo` (or the end of the stream: the server ends it after the terminal
 * event), reconnecting after the last one seen when the coordinator goes
 * away. Returns the last sequence seen.
 */
async function readEvents(client: Client, id: string, upTo: number, onEvent: (e: DeploymentEventMsg) => void): Promise<number> {
  let last = 0;
  const backoff = new Backoff(client.opts);
  for (;;) {
    if (last >= upTo) return last;
    const stop = new AbortController();
    try {
      await client.watchOnce(
        id,
        last,
        (e) => {
          const seq = Number(e.sequence ?? 0);
          if (seq <= last || stop.signal.aborted) return;
          last = seq;
          onEvent(e);
          backoff.reset();
          if (last >= upTo) stop.abort();
        },
        stop.signal,
      );
      if (stop.signal.aborted) return last;
      // The server ended the stream: after the terminal event, or early (a coordinator shutting down).
      const d = await client.getDeployment(id, { pageSize: 1 });
      if (isTerminalDeployment(d.state) && last >= Number(d.lastSequence ?? 0)) return last;
    } catch (err) {
      if (!isRetryable(err)) throw err;
      await backoff.wait(err);
    }
  }
}
