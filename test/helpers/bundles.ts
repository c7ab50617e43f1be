// The bundle builder lives with the scripts (the fault suite installs bundles too).
export * from "../../scripts/lib/bundles.js";
