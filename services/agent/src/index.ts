export { startAgent, type Agent, type AgentState } from "./agent.js";
export { loadAgentConfig, validateAgentConfig, type AgentConfig } from "./config.js";
