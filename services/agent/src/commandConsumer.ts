// The agent's own durable pull consumer on deploy.cmd.<agent>.>. The agent
// creates it (it is the agent's, not shared infrastructure). Under the
// least-privilege NATS users of scripts/gen-credentials.ts it may do so only
// through the create subject that carries its own name and filter
// ($JS.API.CONSUMER.CREATE.DEPLOY_COMMANDS.agent-<id>.deploy.cmd.<id>.>),
// which is the one the client uses whenever filter_subject is set.
import { AckPolicy, DeliverPolicy, type JetStreamManager } from "@nats-io/jetstream";
import { COMMANDS_STREAM, agentCommandFilter, agentConsumerName } from "../../shared/src/index.js";

export async function ensureCommandConsumer(jsm: JetStreamManager, agentId: string, ackWaitMs: number): Promise<void> {
  const name = agentConsumerName(agentId);
  const config = {
    durable_name: name,
    filter_subject: agentCommandFilter(agentId),
    ack_policy: AckPolicy.Explicit,
    ack_wait: ackWaitMs * 1_000_000,
    deliver_policy: DeliverPolicy.All,
    // One apply at a time per VM.
    max_ack_pending: 1,
    max_deliver: -1,
  };
  try {
    await jsm.consumers.info(COMMANDS_STREAM, name);
    await jsm.consumers.update(COMMANDS_STREAM, name, { ack_wait: config.ack_wait, max_ack_pending: 1 });
  } catch (err) {
    if ((err as { name?: string }).name !== "ConsumerNotFoundError") throw err;
    await jsm.consumers.add(COMMANDS_STREAM, config);
  }
}
