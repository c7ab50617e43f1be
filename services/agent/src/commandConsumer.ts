// The agent's own durable pull consumer on its command queue,
// deploy.cmd.<agent>.queue (names.ts). The agent creates it (it is the
// agent's, not shared infrastructure). Under the least-privilege NATS users
// of scripts/gen-credentials.ts it may do so only through the create subject
// that carries its own name and a filter within deploy.cmd.<id>.>
// ($JS.API.CONSUMER.CREATE.DEPLOY_COMMANDS.agent-<id>.deploy.cmd.<id>.queue),
// which is the one the client uses whenever filter_subject is set.
//
// The filter is literal: nats-server then finds the consumer's next command
// in its per-subject index, where the wildcard of earlier versions,
// deploy.cmd.<agent>.>, made it match every subject stored after the
// consumer's position (docs/performance.md). The wildcard takes the queue's
// commands too, so an agent is never wrong to keep it; the literal filter
// misses a command a coordinator publishes on a deployment's own subject,
// which it does while the agent's entry does not say commandQueue. So the
// agent goes on the queue only where no coordinator can still do that
// (agent.ts): it makes its consumer on the queue when its entry already
// says commandQueue or there is no entry (nothing can target it yet); it
// moves one on the wildcard (made by an earlier version) only after its
// entry saying commandQueue is written, a moment later, and only when
// nothing is left for the wildcard (none pending, none unacknowledged);
// otherwise it keeps the wildcard until a later start.
//
// Its state (what was delivered and acknowledged) is kept in the server's
// memory by default, not in a file: the commands themselves are in the
// file-stored stream either way. With a file, every delivery and every ack
// rewrote the consumer's state file (a temporary file, an fsync, a rename):
// 18-30 % of nats-server's CPU in profiles of the bench's rollout to 10,000
// agents (docs/performance.md). The price is paid after a restart of a
// single nats-server (on a cluster, only when every server restarts): the
// consumer is gone, and the agent makes it again (agent.ts), from shortly
// before the last command it handled (CommandCursor). Whatever is delivered
// again is answered from the journal or declined by the race, as any
// redelivery is: nothing runs twice.
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AckPolicy, DeliverPolicy, type ConsumerConfig, type JetStreamManager } from "@nats-io/jetstream";
import { COMMANDS_STREAM, agentCommandFilter, agentCommandQueue, agentConsumerName, errorMessage } from "../../shared/src/index.js";

export type ConsumerStorage = "memory" | "file";

export interface CommandConsumerOptions {
  ackWaitMs: number;
  storage: ConsumerStorage;
  /** Made from scratch: start at commands stored from this time on, instead of every command the stream keeps. */
  startAt?: Date;
  /** Made from scratch on the wildcard, not the queue: a coordinator may still publish this agent's commands on deployments' subjects. */
  wildcard?: boolean;
  /** An existing consumer on the wildcard with nothing left for it is moved to the queue now; unset, it is only said to be movable. */
  move?: boolean;
}

/** What ensureCommandConsumer found: the consumer as it was, or made now. */
export interface EnsuredConsumer {
  created: boolean;
  /** The storage of the consumer in place, which may differ from the one asked for (an existing consumer keeps its own). */
  storage: ConsumerStorage;
  /** Its filter is the agent's command queue (the agent's entry says commandQueue); false: the wildcard of earlier versions. */
  queue: boolean;
  /** Moved from the wildcard to the queue now. */
  movedToQueue?: boolean;
  /** On the wildcard with nothing left for it: `move` would have moved it. */
  movable?: boolean;
  /** On the wildcard, and commands on it still pending or unacknowledged: kept there. */
  keptWildcard?: { pending: number; ackPending: number };
  /** Found in place: commands delivered and not acknowledged (by a run of this agent that ended without its ack). */
  ackPending?: number;
}

const nanos = (ms: number): number => ms * 1_000_000;

export async function ensureCommandConsumer(jsm: JetStreamManager, agentId: string, o: CommandConsumerOptions): Promise<EnsuredConsumer> {
  const name = agentConsumerName(agentId);
  try {
    const ci = await jsm.consumers.info(COMMANDS_STREAM, name);
    const queue = agentCommandQueue(agentId);
    const onQueue = ci.config.filter_subject === queue;
    // Left for the wildcard: what the server has yet to deliver to it, or
    // delivered and not acknowledged. Moved now, those would never come.
    const left = { pending: ci.num_pending, ackPending: ci.num_ack_pending };
    const wildcard = ci.config.filter_subject === agentCommandFilter(agentId);
    const movable = wildcard && left.pending === 0 && left.ackPending === 0;
    const move = movable && o.move === true;
    // Only what differs is updated: one JetStream call less per agent start.
    if (move || ci.config.ack_wait !== nanos(o.ackWaitMs) || ci.config.max_ack_pending !== 1) {
      await jsm.consumers.update(COMMANDS_STREAM, name, { ack_wait: nanos(o.ackWaitMs), max_ack_pending: 1, ...(move ? { filter_subject: queue } : {}) });
    }
    // Storage cannot be changed on a consumer; it is made again (with the
    // storage asked for) only when deleted, which an agent's own NATS user
    // may not do (docs/production.md: "Command consumers").
    const storage = ci.config.mem_storage === true ? "memory" : "file";
    const ackPending = ci.num_ack_pending;
    if (onQueue || move) return { created: false, storage, queue: true, ackPending, ...(move ? { movedToQueue: true } : {}) };
    return { created: false, storage, queue: false, ackPending, ...(movable ? { movable: true } : wildcard ? { keptWildcard: left } : {}) };
  } catch (err) {
    if ((err as { name?: string }).name !== "ConsumerNotFoundError") throw err;
  }
  const config: Partial<ConsumerConfig> = {
    durable_name: name,
    filter_subject: o.wildcard ? agentCommandFilter(agentId) : agentCommandQueue(agentId),
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(o.ackWaitMs),
    ...(o.startAt ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: o.startAt.toISOString() } : { deliver_policy: DeliverPolicy.All }),
    // One apply at a time per VM.
    max_ack_pending: 1,
    max_deliver: -1,
    ...(o.storage === "memory" ? { mem_storage: true } : {}),
  };
  await jsm.consumers.add(COMMANDS_STREAM, config);
  return { created: true, storage: o.storage, queue: !o.wildcard };
}

/**
 * A command an earlier run of this agent was delivered and never
 * acknowledged (it was killed, or its VM went down, before its ack) keeps
 * the consumer busy (max_ack_pending 1) until the server delivers it again,
 * ack_wait after its delivery: the restarted agent sat idle for up to 30 s,
 * and so did every command behind that one. An agent that finds one at its
 * start sets its consumer's ack_wait to RECLAIM_ACK_WAIT_MS: nats-server
 * looks at the consumer's unacknowledged commands 100 ms after an update
 * of ack_wait (consumer.go updateConfig) and delivers again, at once, the
 * one held longer than that. Its own ack_wait is put back before it
 * handles the first command it then gets, or after RECLAIM_RESTORE_MS if
 * none comes. What it gets again is answered as any redelivery is (the
 * journal, the race): nothing runs twice, even if the earlier run is in
 * fact alive (two processes with one agent id), whose start the race then
 * declines. An agent killed while the short ack_wait is in force leaves it
 * to its next start, which puts its own back (ensureCommandConsumer).
 */
export const RECLAIM_ACK_WAIT_MS = 1000;
/** How long the short ack_wait of a reclaim stays when no command comes (one acknowledged meanwhile). */
export const RECLAIM_RESTORE_MS = 10_000;

/** Sets the ack_wait of this agent's consumer (one info and one update). */
export async function setAckWait(jsm: JetStreamManager, agentId: string, ackWaitMs: number): Promise<void> {
  await jsm.consumers.update(COMMANDS_STREAM, agentConsumerName(agentId), { ack_wait: nanos(ackWaitMs) });
}

/**
 * How far this agent got through its commands, so that a consumer made
 * again (after a nats-server restart forgot one kept in memory) does not
 * deliver every command the stream keeps (7 days by default) a second time:
 * the stored time of the latest command whose handling ended in an ack or a
 * term, in <stateDir>/command-cursor.json. A time, not a stream sequence: a
 * stream made again from nothing starts its sequences at 1 again, while its
 * times go on. The consumer starts CURSOR_MARGIN_MS before it, which covers
 * a server clock stepped back by as much; anything before that was handled
 * (one apply at a time, in stream order: a later command is delivered only
 * after the ack of every earlier one). Lost or unreadable: every kept
 * command is delivered again, and answered as redeliveries are. So it is
 * written without an fsync, the latest value only, one write at a time, and
 * not at once: WRITE_AFTER_MS after the first command handled since the
 * last write (and at the agent's stop). A crash in between starts a
 * consumer made again from the cursor before, which only delivers a few
 * more commands again. Written after every command, it cost four file
 * operations (a write, a close, a rename, an open) per apply: in a CPU
 * profile of the bench's fan-out of 100 (one process hosting the 100
 * agents), 20 ms of the agent host's event loop over 200 applies.
 */
export class CommandCursor {
  static readonly FILE = "command-cursor.json";
  /** Delivered again from this long before the cursor: at most the commands of one minute. */
  static readonly CURSOR_MARGIN_MS = 60_000;
  /** How long after the first command handled since the last write the cursor is written. */
  static readonly WRITE_AFTER_MS = 1000;

  #storedAtMs: number;
  #writing: Promise<void> | undefined;
  #dirty = false;
  #timer: NodeJS.Timeout | undefined;

  private constructor(
    readonly file: string,
    storedAtMs: number,
    readonly onError: (message: string) => void,
  ) {
    this.#storedAtMs = storedAtMs;
  }

  static async open(stateDir: string, onError: (message: string) => void): Promise<CommandCursor> {
    const file = join(stateDir, CommandCursor.FILE);
    let at = 0;
    try {
      const v = (JSON.parse(await readFile(file, "utf8")) as { storedAt?: unknown }).storedAt;
      const ms = typeof v === "string" ? Date.parse(v) : NaN;
      if (Number.isFinite(ms)) at = ms;
      else onError(`${file}: no valid storedAt; a consumer made again will deliver every kept command`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") onError(`${file}: ${errorMessage(err)}; a consumer made again will deliver every kept command`);
    }
    return new CommandCursor(file, at, onError);
  }

  /** Where a consumer made again should start; undefined: from the first kept command. */
  startAt(): Date | undefined {
    return this.#storedAtMs > 0 ? new Date(this.#storedAtMs - CommandCursor.CURSOR_MARGIN_MS) : undefined;
  }

  /** The command stored at `storedAt` was acknowledged or terminated. */
  handled(storedAt: Date): void {
    const ms = storedAt.getTime();
    if (!(ms > this.#storedAtMs)) return;
    this.#storedAtMs = ms;
    this.#dirty = true;
    if (this.#writing || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#writing ??= this.#flush();
    }, CommandCursor.WRITE_AFTER_MS);
    // Never what keeps a stopping process alive: settled() writes at the stop.
    this.#timer.unref();
  }

  /** Writes the latest value now; resolves when it is on disk (or its write failed and was reported). */
  async settled(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      if (this.#dirty) this.#writing ??= this.#flush();
    }
    while (this.#writing) await this.#writing;
  }

  async #flush(): Promise<void> {
    try {
      while (this.#dirty) {
        this.#dirty = false;
        const tmp = `${this.file}.tmp`;
        await writeFile(tmp, `${JSON.stringify({ storedAt: new Date(this.#storedAtMs).toISOString() })}\n`);
        await rename(tmp, this.file);
      }
    } catch (err) {
      this.onError(`${this.file}: ${errorMessage(err)}`);
    } finally {
      this.#writing = undefined;
    }
  }
}
