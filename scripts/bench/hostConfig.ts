// What an agent-host process (agentHost.ts) is told, and its agents' ids.
// Apart from stack.ts, so a host imports none of the bench's client code:
// through stack.ts it loaded grpc-js, proto-loader and the protos, 16 MB of
// RSS in every host, and a host's spawns cost more with its RSS.

export interface AgentHostConfig {
  natsUrl: string;
  /** Agent ids are `${prefix}${index}` (index zero-padded to 5 digits). */
  prefix: string;
  from: number;
  count: number;
  environment: string;
  /** Apps every agent serves; its deploy executable does nothing. */
  apps: string[];
  /** Apps of one agent only: index → apps (for the API bench). */
  appsByIndex?: Record<number, string[]>;
  stateRoot: string;
  heartbeatIntervalMs: number;
  /** Between idle heartbeats (the agent's idleHeartbeatIntervalMs); unset: heartbeatIntervalMs. */
  idleHeartbeatIntervalMs?: number;
  /** Agents started at once. */
  startConcurrency: number;
  deployExecutable: string;
  logLevel: string;
  /** Production mode (security.ts): each agent's nkey from `${credsDir}/agent-<id>.nk`, TLS to NATS, signed commands only. */
  secure?: SecureAgents;
  /** Commands the host's agents take past their journals at once (StartAgentOptions.admit); unset: all. */
  admitAtOnce?: number;
}

/** What agents need to run in production mode, from gen-credentials' output. */
export interface SecureAgents {
  credsDir: string;
  caFile: string;
  trustedSigner: string;
}

export const agentId = (prefix: string, i: number): string => `${prefix}${String(i).padStart(5, "0")}`;
