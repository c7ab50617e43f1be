export { startCoordinator, type Coordinator, type CoordinatorState } from "./coordinator.js";
export { loadCoordinatorConfig, type CoordinatorConfig } from "./config.js";
export { plan } from "./rollout/plan.js";
