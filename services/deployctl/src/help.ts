// Help text shown after commander's generated usage: exit codes and the
// environment for the program, and examples for every command (as kubectl
// and nomad print them).

export const PROGRAM_HELP_AFTER = `
Exit codes:
  0    succeeded: every target succeeded
  1    the deployment failed (any target failed or timed out, even within --max-failures)
       or was cancelled (or an unexpected error)
  2    usage or validation error (also INVALID_ARGUMENT, ALREADY_EXISTS,
       FAILED_PRECONDITION, NOT_FOUND, UNAUTHENTICATED, PERMISSION_DENIED from the coordinator)
  3    cannot reach the coordinator, or it cannot record the request (UNAVAILABLE / DEADLINE_EXCEEDED / ABORTED after retries)
  4    the environment is frozen (deployctl freezes): nothing was created; --override-freeze "<why>" deploys anyway
  130  Ctrl-C while following (the deployment goes on; resume with deployctl watch <id>)
  141  stdout was closed by its reader (e.g. | head); the deployment goes on

Environment:
  DEPLOY_COORDINATOR         coordinator address (default 127.0.0.1:50051)
  DEPLOY_TOKEN               bearer token (role viewer reads; deployer also deploys, cancels,
                             pauses, resumes, promotes, rolls back, uploads)
  DEPLOY_TLS, DEPLOY_CA      use TLS (1); CA file to trust (implies TLS)
  DEPLOY_CLIENT_CERT, DEPLOY_CLIENT_KEY  client certificate and key (mutual TLS)
  DEPLOYCTL_CALL_TIMEOUT_MS  deadline of one call (default 15000)
  DEPLOYCTL_RETRY_BUDGET_MS  time retries of one call may take (default 20000)
  XDG_STATE_HOME             where the last event seen per deployment is kept (deployctl/<id>)

--json prints one JSON document on stdout (proto3 JSON: RFC 3339 times, durations
as "60s", enum names, 64-bit integers as strings); progress lines go to stderr.
Shell completion: deployctl completion bash|zsh (deployctl completion --help).
`;

const FOLLOW_DOCUMENT = `
--json prints one document when following is over:
  {"requestId": …, "artifact": {…}, "deployment": {…}, "events": [{…}, …], "following": "ended"}
  requestId (deploy and rollback) and artifact (deploy only; none with --executable);
  deployment: the final state (as get --json prints it), as created with --detach, or as
  last read when following stopped early; events: those received while following;
  following: "ended", "detached" or "stopped" (Ctrl-C or the coordinator lost: exit 130
  or 3). Progress lines go to stderr.`;

/** Examples per command, shown by `deployctl <command> --help`. */
export const COMMAND_HELP_AFTER: Record<string, string> = {
  deploy: `${FOLLOW_DOCUMENT}

Examples:
  # pack ./site, upload it, roll it out to every live agent of web in prod, two at a time
  $ deployctl deploy ./site --app web --env prod --version v1.4.2 --max-concurrency 2
  # a prebuilt bundle, to two agents only, returning once the deployment is created
  $ deployctl deploy web-1.4.2.tar.gz --app web --env prod --version v1.4.2 --targets web-1,web-2 --detach
  # no bundle: each agent runs the deploy executable it has configured for the app
  $ deployctl deploy --executable --app web --env prod --version v1.4.2
  # the agents labelled role=web in zone a or b, a quarter of them at a time, going on after up to 10% fail
  $ deployctl deploy ./site --app web --env prod --version v1.4.2 --selector 'role=web,zone in (a,b)' --max-concurrency 25% --max-failures 10%
  # in a script: one JSON document on stdout
  $ deployctl deploy ./site --app web --env prod --version v1.4.2 --json | jq -r .deployment.state
  # one canary first; the rest waits for: deployctl promote <id>
  $ deployctl deploy ./site --app web --env prod --version v1.4.2 --canary 1
  # 10% of the agents first, going on by itself after 15 minutes without a failure
  $ deployctl deploy ./site --app web --env prod --version v1.4.2 --canary 10% --canary-soak 15m
  # if it fails, bring the agents it changed back to the release desired before it
  $ deployctl deploy ./site --app web --env prod --version v1.4.2 --auto-revert
  # what staging runs (its desired release: the same version and bundle), to prod, a quarter at a time
  $ deployctl deploy --app web --env prod --from-env staging --max-concurrency 25%
  # the same, only if that release succeeded in staging at least 2 hours ago
  $ deployctl deploy --app web --env prod --from-env staging --min-soak 2h
  # again after a partial failure: only the agents not on v1.4.2 yet (the others are SKIPPED, already on it)
  $ deployctl deploy ./site --app web --env prod --version v1.4.2 --only-outdated
  # from a pipeline: if another deployment of web in prod is running, wait for it (up to 30 minutes), then deploy
  $ deployctl deploy ./site --app web --env prod --version v1.4.2 --wait-active 30m
  # or replace it: cancel the running one, wait for its applies in flight, then deploy
  $ deployctl deploy ./site --app web --env prod --version v1.4.2 --cancel-active

Following goes on while the deployment is paused or waits for a promote; the
lines say who paused or promoted it, and what to run next.
`,
  watch: `${FOLLOW_DOCUMENT}

Examples:
  # follow from the last event deployctl printed for it (Ctrl-C stops following only)
  $ deployctl watch d-0mwxzpgab-3e1e5ad5
  # the whole history again
  $ deployctl watch d-0mwxzpgab-3e1e5ad5 --after 0
  $ deployctl watch d-0mwxzpgab-3e1e5ad5 --json | jq '.events | length'
`,
  get: `
Examples:
  $ deployctl get d-0mwxzpgab-3e1e5ad5
  $ deployctl get d-0mwxzpgab-3e1e5ad5 --json | jq -r '.targets[] | "\\(.agentId) \\(.state)"'
`,
  logs: `
Each apply sends its first 200 output lines (the agent's DEPLOY_AGENT_MAX_OUTPUT_LINES;
the rest are counted as cut, said on stderr), kept as long as the deployment's
events. stdout has the lines only: "<agent> | <line>", or the bare line with
--target, whose state and message then follow on stderr.

Examples:
  # why did web-2 fail? its hook's output, without SSH
  $ deployctl logs d-0mwxzpgab-3e1e5ad5 --target web-2
  $ deployctl logs d-0mwxzpgab-3e1e5ad5 | grep -i error
  # as it happens, until the deployment ends
  $ deployctl logs d-0mwxzpgab-3e1e5ad5 --follow
`,
  list: `
Examples:
  $ deployctl list --app web --env prod
  $ deployctl list --state failed --limit 5
  $ deployctl list --agent web-3 --limit 50      # what was deployed to one VM, and how it went there
  $ deployctl list --json | jq -r '.deployments[].id'
`,
  cancel: `
Examples:
  $ deployctl cancel d-0mwxzpgab-3e1e5ad5 --reason "wrong version"
  # and stop the applies running now (a bundle goes back to its previous release)
  $ deployctl cancel d-0mwxzpgab-3e1e5ad5 --reason "hangs in migrate" --kill
  # stop and roll back: the targets it changed go back to the release desired before it
  $ deployctl cancel d-0mwxzpgab-3e1e5ad5 --reason "error rate alarm" --kill --revert
  # then see it end
  $ deployctl watch d-0mwxzpgab-3e1e5ad5
`,
  promote: `
Promoting a deployment already promoted is a no-op. Refused (FAILED_PRECONDITION,
exit 2) without a canary wave, or once it ended, is being cancelled or halted
(a canary failed).

Examples:
  $ deployctl promote d-0mwxzpgab-3e1e5ad5
  $ deployctl watch d-0mwxzpgab-3e1e5ad5
`,
  pause: `
Pausing a paused deployment (or one that ended) changes nothing. A deployment
paused longer than its max_pause (default 24h) is cancelled: every deployment ends.

Examples:
  $ deployctl pause d-0mwxzpgab-3e1e5ad5 --reason "error rate up on web-1"
  $ deployctl resume d-0mwxzpgab-3e1e5ad5
`,
  resume: `
Examples:
  $ deployctl resume d-0mwxzpgab-3e1e5ad5
`,
  rollback: `${FOLLOW_DOCUMENT}

The release rolled back to is the one before the desired release, or the one
--to names (deployctl releases <app> <env> lists them). Exit codes as deploy:
0 when it succeeded.

Examples:
  $ deployctl rollback web prod
  # further back: the release of a deployment, or the newest of a version
  $ deployctl rollback web prod --to d-0mwxzpgab-3e1e5ad5
  $ deployctl rollback web prod --to v1.4.0
  # a canary first, then the rest after deployctl promote <id>
  $ deployctl rollback web prod --canary 1 --note "v1.4.2 breaks logins"
  $ deployctl rollback web prod --detach --json | jq -r .deployment.id
`,
  revert: `${FOLLOW_DOCUMENT}

For a deployment that ended FAILED or CANCELLED without a revert: the targets
it changed go back to the release desired before it, which stays the desired
release (rollback would move it one further back). One revert per deployment:
re-running follows the one made. Exit codes as deploy: 0 when it succeeded.

Examples:
  $ deployctl revert d-0mwxzpgab-3e1e5ad5
  $ deployctl revert d-0mwxzpgab-3e1e5ad5 --note "v3 breaks logins" --detach
`,
  agents: `
Status, per app: current (on the desired release), outdated (live, on another
release or none), offline (not live), none (no deployment has succeeded yet).

Examples:
  $ deployctl agents --env prod
  $ deployctl agents --app web --json | jq -r '.agents[] | select(.live) | .id'
  # the agents not on the desired release of web, and those in one zone
  $ deployctl agents --app web --status outdated
  $ deployctl agents --app web --selector 'zone=eu-1a'
  $ deployctl agents --app web --status outdated --json | jq -r '.agents[].id'
`,
  cordon: `
A cordoned agent takes no new deployment: a deployment to every agent of its
app and environment, or to a selector, leaves it out (a validate_only/--dry-run
answer names it), one naming it in --targets is refused (exit 2), and
convergence leaves it on its release. Deployments already created go on.
Cordoning again replaces the reason. deployctl agents shows who cordoned it,
when and why.

Examples:
  $ deployctl cordon web-3 --reason "disk replacement, ticket OPS-1234"
  # every agent of a zone in maintenance (one line each; exit 1 if one failed)
  $ deployctl cordon --selector zone=eu-1a --env prod --reason "zone maintenance"
  $ deployctl uncordon --selector zone=eu-1a --env prod
  $ deployctl agents --env prod --json | jq -r '.agents[] | select(.cordon) | .id'
  $ deployctl uncordon web-3
`,
  uncordon: `
Uncordoning an agent that is not cordoned changes nothing. Once uncordoned,
convergence brings it to the desired release of each app it serves (when
convergence is on for its environment and the desired release covers it).

Examples:
  $ deployctl uncordon web-3
`,
  deregister: `
Only an agent that is not live can be deregistered (FAILED_PRECONDITION,
exit 2, while it is: stop it first, or cordon it to keep it out of
deployments while it runs). Its registry entry and command consumer are
deleted and a cordon is lifted; deployments already created keep it as a
target (a dead one times out). An agent that starts again registers again.

Examples:
  $ deployctl agents --env prod --json | jq -r '.agents[] | select(.live | not) | .id'
  $ deployctl deregister web-7
`,
  freeze: `
While an environment is frozen, deployctl deploy to it is refused (exit 4,
naming who froze it, why and until when), and so is any other client's
CreateDeployment. deployctl rollback, automatic reverts (--auto-revert) and
convergence still run: a freeze must not close the way back. Deployments
already running go on (the answer lists them; --pause-running pauses them,
rollbacks and reverts left running; deployctl resume <id> goes on). deploy --override-freeze "<why>" goes through and records who, why and
which freeze with the deployment (deployctl get shows it). Freezing again
replaces the reason and the end; without --for or --until it lasts until
deployctl unfreeze. --window makes it recurring: in force only within weekly
windows of --tz ("fri 15:00-mon 08:00", or "18:00-08:00" every day); give it
a --name so an incident's freeze does not replace it. The deploy_freezes KV
bucket keeps each freeze's last 16 changes.

Examples:
  $ deployctl freeze prod --reason "incident INC-204: checkout errors" --for 2h --pause-running
  $ deployctl freeze prod --reason "year-end change freeze" --until 2027-01-04T08:00:00Z
  $ deployctl freeze prod --name weekends --window "fri 15:00-mon 08:00" --tz Europe/Berlin --reason "no weekend deploys"
  $ deployctl freezes
  $ deployctl deploy ./site --app web --env prod --version v1.4.3 --override-freeze "hotfix for INC-204"
  $ deployctl unfreeze prod
`,
  policy: `
An environment's policy says what deployments to it the coordinator
accepts; any other CreateDeployment (deployctl's or another client's) is
refused with exit 2, naming the rule, who set it and why, and nothing is
created. --promote-from <env>: only promotions of that environment's
desired release (deployctl deploy --from-env <env>: the same version and
bundle, never one packed again); --min-soak: only once that release has
been desired there this long (the larger of this and deploy --min-soak
applies); --require-canary: only deployments with --canary. deployctl
rollback, deployctl revert, automatic reverts and convergence still run:
they bring back or spread a release the environment already had, and a
policy must not close the way back. Deployments already running go on.
Setting a policy replaces the environment's rules; --clear lifts them;
without options, deployctl policy <env> shows what the environment accepts.
With --app, the policy is one app's in the environment: that app's
deployments there must satisfy it as well as the environment's own (it
adds rules, never lifts them). Anyone who may deploy may change it (it
guards against mistakes, not against a deployer; a token scoped to an app
may change that app's policy only); the deploy_policies KV bucket keeps
each policy's last 16 changes, who made them and why.

Examples:
  $ deployctl policy prod --promote-from staging --min-soak 2h --require-canary --reason "prod runs only what staging ran for 2h"
  $ deployctl policy prod --app payments --require-canary --reason "payments canaries first"
  $ deployctl deploy --app web --env prod --from-env staging --canary 1
  $ deployctl policies
  $ deployctl policy prod
  $ deployctl policy prod --clear --reason "hotfix INC-204 straight from a build"
`,
  unfreeze: `
Unfreezing an environment that is not frozen changes nothing. A freeze given
--for or --until ends by itself. Other freezes of the environment (named
ones) still hold: the answer lists them.

Examples:
  $ deployctl unfreeze prod
  $ deployctl unfreeze prod --name weekends
`,
  freezes: `
Freezes in force are listed, and recurring ones between their windows
(IN FORCE no); one that has ended is not.

Examples:
  $ deployctl freezes
  $ deployctl freezes --json | jq -r '.freezes[].environment'
`,
  status: `
Four reads, nothing written: GetRelease, ListDeployments (running),
ListFreezes and ListAgents, then GetDeployment for the deployments outdated
agents run (up to 5). Outdated and offline agents are named (the first 10,
then counted), and a deployment that ended FAILED or CANCELLED leaving agents
on its release, not reverted, with "deployctl revert <id>". Exit 0 whatever it
shows; --json gives the same as one document (release, running, freezes,
agents by status, unreverted).

Examples:
  $ deployctl status web prod
  $ deployctl status web prod --json | jq -r '.agents.outdated[]'
`,
  releases: `
The first row (*) is the desired release: agents that register or come back on
another release are brought to it (convergence), unless it is off for the
environment. The others are the desired releases before it, newest first.

Examples:
  $ deployctl releases web prod
  # the release to roll back to
  $ deployctl releases web prod --json | jq -r '.desired.previous.deploymentId'
`,
  artifacts: `
Examples:
  $ deployctl artifacts
  $ deployctl artifacts --app web      # the bundles web's agents may read (bucket deploy_artifacts_web)
  $ deployctl artifacts --name web --json | jq -r '.artifacts[].digest'
`,
  completion: `
Examples:
  # this shell only
  $ source <(deployctl completion bash)
  # every new bash (bash-completion's directory)
  $ deployctl completion bash > ~/.local/share/bash-completion/completions/deployctl
  # zsh, from a directory on $fpath (compinit must be loaded), then start a new shell
  $ deployctl completion zsh > "\${fpath[1]}/_deployctl"
  # or in ~/.zshrc, after compinit
  $ source <(deployctl completion zsh)
`,
};
