export { startAgent, type Agent, type AgentState, type StartAgentOptions } from "./agent.js";
export { loadAgentConfig, validateAgentConfig, type AgentConfig } from "./config.js";
