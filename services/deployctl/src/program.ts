// The command line: commander defines every command and option; usage
// errors are reported on one line and end with exit code 2.
import { Argument, Command, CommanderError, Option } from "commander";
import { cordonCommand, deregisterCommand, uncordonCommand, type CordonOptions } from "./commands/cordon.js";
import { agentsCommand, artifactsCommand, getCommand, listCommand, type GetOptions } from "./commands/inspect.js";
import { cancelCommand, type CancelOptions } from "./commands/cancel.js";
import { pauseCommand, promoteCommand, resumeDeploymentCommand, type PauseOptions } from "./commands/operate.js";
import { rollbackCommand, type RollbackOptions } from "./commands/rollback.js";
import { revertCommand, type RevertOptions } from "./commands/revert.js";
import { withBusyOptions } from "./commands/busy.js";
import { logsCommand, type LogsOptions } from "./commands/logs.js";
import { releasesCommand } from "./commands/releases.js";
import { statusCommand } from "./commands/status.js";
import { freezeCommand, freezesCommand, unfreezeCommand, type FreezeOptions } from "./commands/freeze.js";
import { policiesCommand, policyCommand, type PolicyOptions } from "./commands/policy.js";
import { SHELLS, completionCommand, type Shell } from "./commands/completion.js";
import { deployCommand, type DeployOptions } from "./commands/deploy.js";
import { watchCommand } from "./commands/watch.js";
import { withStrategyOptions } from "./commands/strategy.js";
import { EXIT, exitCodeOf, formatError, type ExitCode } from "./errors.js";
import { COMMAND_HELP_AFTER, PROGRAM_HELP_AFTER } from "./help.js";
import { durationOption, freezeDurationOption, policySoakOption, intOption, listOption, timeOption, parseDeploymentId, parseDeploymentState, parseTargetState, selectorOption, tokenOption, withCommonOptions, type CommonOptions } from "./options.js";

/**
 * A subcommand whose usage errors point at its own help (commander copies
 * the program's "(run … for usage)" line into every subcommand, which would
 * name no command), with its examples after the generated help.
 */
function subcommand(program: Command, name: string): Command {
  return program
    .command(name)
    .showHelpAfterError(`(run deployctl ${name} --help for usage)`)
    .addHelpText("after", (COMMAND_HELP_AFTER[name] ?? "").trimEnd());
}

export function buildProgram(setExit: (code: ExitCode) => void, version: string): Command {
  const program = new Command("deployctl")
    .description("Deploy bundles to VMs through the deployment coordinator; watch, inspect, pause, promote or cancel deployments; roll a release back.")
    .version(version, "-V, --cli-version", "print deployctl's version")
    // Program options only before the command: `deploy --version v1` is the deploy's own option.
    .enablePositionalOptions()
    .showHelpAfterError("(run deployctl --help for usage)")
    .addHelpText("after", PROGRAM_HELP_AFTER)
    .exitOverride()
    .configureOutput({ outputError: (s, write) => write(s.replace(/^error: /, "deployctl: ")) });

  const run = (p: Promise<ExitCode>): Promise<void> => p.then(setExit);

  withCommonOptions(
    withBusyOptions(withStrategyOptions(
      subcommand(program, "deploy")
        .description(
          "pack a directory (or take a .tar.gz) with deploy.yaml at its root, upload it, create a deployment and follow it; " +
            "with --executable, deploy without a bundle; with --from-env, deploy another environment's release as it is",
        )
        .argument("[bundle]", "directory or .tar.gz bundle (none with --executable or --from-env)")
        .requiredOption("--app <app>", "app to deploy (also the artifact name)", tokenOption)
        .requiredOption("--env <environment>", "environment to deploy to", tokenOption)
        .option("--version <version>", "version label (DEPLOY_VERSION on the agents); required but with --from-env")
        .option("--from-env <environment>", "no bundle: deploy the desired release of the app in this other environment as it is, the same version and bundle (build once, deploy many)", tokenOption)
        .addOption(
          new Option("--min-soak <duration>", "with --from-env: promote only a release whose deployment succeeded there at least this long ago (e.g. 2h); refused otherwise, naming when it can be")
            .argParser(durationOption),
        ),
    ))
      .option("--targets <ids>", "comma-separated agent ids (default: every live agent of the app and environment)", listOption)
      .addOption(
        new Option("--selector <selector>", "choose the targets by agent labels, Kubernetes syntax: role=web,zone in (a,b) (also k!=v, k notin (x,y), k, !k; comma = AND)")
          .argParser(selectorOption)
          .conflicts("targets"),
      )
      .option("--request-id <id>", "idempotency key: re-running with the same id never deploys twice (default: a new UUID, printed)")
      .option("--note <text>", "a note recorded with the deployment, beside who asked (that is your authenticated identity: token name or certificate); default user@host (deployctl)")
      // The old name of --note: it never was the identity the audit records.
      .addOption(new Option("--requested-by <text>", "old name of --note").hideHelp().conflicts("note"))
      .option("--executable", "no bundle: each agent runs the deploy executable configured for the app (DEPLOY_VERSION set to --version)")
      .option("--detach", "return once the deployment is created, without following it")
      .option("--dry-run", "check everything and show the targets and strategy it would have; upload and create nothing (the bundle is checked here)")
      .option("--override-freeze <reason>", "deploy although the environment is frozen (deployctl freezes), and why: recorded with the deployment"),
  ).action((bundle: string | undefined, o: DeployOptions) => run(deployCommand(bundle, o)));

  withCommonOptions(
    subcommand(program, "watch")
      .description("follow a deployment until it ends, from the last event deployctl printed for it")
      .argument("<id>", "deployment id", parseDeploymentId)
      .option("--after <sequence>", "show events after this sequence (0: the whole history)", intOption(0, Number.MAX_SAFE_INTEGER)),
  ).action((id: string, o: { after?: number; json?: boolean; coordinator?: string }) => run(watchCommand(id, o)));

  withCommonOptions(
    subcommand(program, "get")
      .description("show a deployment, its targets counted by state, and a page of its targets")
      .argument("<id>", "deployment id", parseDeploymentId)
      .option("--page-size <n>", "targets to show (default 1000, at most 10000)", intOption(1, 10_000))
      .option("--page-token <token>", "show the page of targets this token names (printed under a page that has more)")
      .option("--state <state>", "only targets in this state: pending, dispatched, applying, succeeded, failed, timed_out, cancelled, skipped", parseTargetState),
  ).action((id: string, o: GetOptions) => run(getCommand(id, o)));

  withCommonOptions(
    subcommand(program, "logs")
      .description("print what the agents' applies printed (deploy executable or hooks), read back from the deployment's events: no shell on the VM needed")
      .argument("<id>", "deployment id", parseDeploymentId)
      .option("--target <agent>", "only this target's lines, without the agent id in front")
      .option("--follow", "go on printing lines as they come, until the deployment ends"),
  ).action((id: string, o: LogsOptions) => run(logsCommand(id, o)));

  withCommonOptions(
    subcommand(program, "list")
      .description("list deployments, newest first")
      .option("--app <app>", "only this app")
      .option("--env <environment>", "only this environment")
      .option("--state <state>", "only this state: pending, running, succeeded, failed, cancelled", parseDeploymentState)
      .option("--agent <agent>", "only the deployments this agent was a target of (its history), with what each did on it: its state and message")
      .option("--limit <n>", "at most this many (default 20, at most 200)", intOption(1, 200)),
  ).action((o: Parameters<typeof listCommand>[0]) => run(listCommand(o)));

  withCommonOptions(
    subcommand(program, "cancel")
      .description("stop a deployment: targets not yet started are cancelled, in-flight applies finish")
      .argument("<id>", "deployment id", parseDeploymentId)
      .option("--reason <text>", "why (recorded in the audit log)")
      .option("--kill", "also kill the applies in flight (deploy executable or hook; a bundle goes back to its previous release): they end FAILED")
      .option(
        "--revert",
        "stop and roll back: once it is cancelled, bring the targets it changed back to the release desired before it (a linked deployment, as --auto-revert makes for a failed one)",
      ),
  ).action((id: string, o: CancelOptions) => run(cancelCommand(id, o)));

  withCommonOptions(
    subcommand(program, "promote")
      .description("let a deployment waiting after its canary wave go on to every target (also before the wave is done)")
      .argument("<id>", "deployment id", parseDeploymentId),
  ).action((id: string, o: CommonOptions) => run(promoteCommand(id, o)));

  withCommonOptions(
    subcommand(program, "pause")
      .description("stop dispatching new targets (in-flight applies finish and are reported) until deployctl resume; bounded by the deployment's max_pause")
      .argument("<id>", "deployment id", parseDeploymentId)
      .option("--reason <text>", "why (recorded in the audit log and shown to whoever follows it)"),
  ).action((id: string, o: PauseOptions) => run(pauseCommand(id, o)));

  withCommonOptions(
    subcommand(program, "resume")
      .description("dispatch again after deployctl pause (a canary wave still waits for its promote)")
      .argument("<id>", "deployment id", parseDeploymentId),
  ).action((id: string, o: CommonOptions) => run(resumeDeploymentCommand(id, o)));

  withCommonOptions(
    withBusyOptions(withStrategyOptions(
      subcommand(program, "rollback")
        .description(
          "deploy the release before the desired one of an app in an environment (or an earlier one, --to) to the agents the desired one covered, and follow it; " +
            "it becomes the desired release when it succeeds",
        )
        .argument("<app>", "app", tokenOption)
        .argument("<env>", "environment", tokenOption),
    ))
      .option("--to <deployment-id|version>", "the release to go back to, from deployctl releases <app> <env>: the deployment that made it, or its version (the newest of that version); default: the release before the desired one")
      .option("--request-id <id>", "idempotency key: re-running with the same id never rolls back twice (default: a new UUID, printed)")
      .option("--note <text>", "a note recorded with the deployment, beside who asked; default user@host (deployctl)")
      .option("--detach", "return once the deployment is created, without following it"),
  ).action((app: string, env: string, o: RollbackOptions) => run(rollbackCommand(app, env, o)));

  withCommonOptions(
    withBusyOptions(
      subcommand(program, "revert")
        .description(
          "bring the targets a FAILED or CANCELLED deployment changed back to the release desired before it (what --auto-revert or cancel --revert would have done), and follow it",
        )
        .argument("<id>", "deployment id", parseDeploymentId),
    )
      .option("--note <text>", "a note recorded with the revert, beside who asked; default user@host (deployctl)")
      .option("--detach", "return once the revert is created, without following it"),
  ).action((id: string, o: RevertOptions) => run(revertCommand(id, o)));

  withCommonOptions(
    subcommand(program, "agents")
      .description("list registered agents: labels, and per app the current release, the desired one and the status (current, outdated, offline)")
      .option("--app <app>", "only agents running this app")
      .option("--env <environment>", "only this environment")
      .addOption(new Option("--selector <selector>", "only the agents whose labels match: role=web,zone in (a,b)").argParser(selectorOption))
      .addOption(new Option("--status <status>", "only the agents with a release in this status (of --app when given)").choices(["current", "outdated", "offline", "none"])),
  ).action((o: Parameters<typeof agentsCommand>[0]) => run(agentsCommand(o)));

  withCommonOptions(
    subcommand(program, "cordon")
      .description("take an agent out of new deployments (a VM in maintenance): deployments to every agent or to a selector leave it out, naming it as a target is refused, convergence waits; running deployments go on")
      .argument("[agent]", "agent id (or --selector)", tokenOption)
      .option("--reason <text>", "why (recorded with who asked; shown by deployctl agents and in refusals)")
      .addOption(new Option("--selector <selector>", "every registered agent whose labels match instead (a zone in maintenance): role=web,zone in (a,b)").argParser(selectorOption))
      .option("--app <app>", "with --selector: only agents running this app", tokenOption)
      .option("--env <environment>", "with --selector: only this environment", tokenOption),
  ).action((agent: string | undefined, o: CordonOptions) => run(cordonCommand(agent, o)));

  withCommonOptions(
    subcommand(program, "uncordon")
      .description("let a cordoned agent take new deployments again; convergence then brings it to the desired release")
      .argument("[agent]", "agent id (or --selector)", tokenOption)
      .addOption(new Option("--selector <selector>", "every registered agent whose labels match instead").argParser(selectorOption))
      .option("--app <app>", "with --selector: only agents running this app", tokenOption)
      .option("--env <environment>", "with --selector: only this environment", tokenOption),
  ).action((agent: string | undefined, o: CordonOptions) => run(uncordonCommand(agent, o)));

  withCommonOptions(
    subcommand(program, "deregister")
      .description("forget an agent that is not live (a decommissioned VM): no longer listed, deployed to (not even as SKIPPED) or converged; it registers again if it starts again")
      .argument("<agent>", "agent id", tokenOption),
  ).action((agent: string, o: CommonOptions) => run(deregisterCommand(agent, o)));

  withCommonOptions(
    subcommand(program, "freeze")
      .description("freeze an environment (a release window, an incident): new deployments to it are refused unless they --override-freeze; rollbacks, automatic reverts and convergence still run; running deployments go on")
      .argument("<env>", "environment", tokenOption)
      .option("--reason <text>", "why (required: shown to everyone whose deployment is refused)")
      .option("--for <duration>", "how long: 30m, 2h, 3d (default: until deployctl unfreeze)", freezeDurationOption)
      .option("--until <time>", "when it ends, e.g. 2026-12-28T08:00:00Z (not with --for)", timeOption)
      .option("--name <name>", "a named freeze, beside the environment's others (a recurring window, an incident's); default: the unnamed one", tokenOption)
      .option("--window <window>", 'in force only within this weekly window: "fri 15:00-mon 08:00", or "18:00-08:00" every day (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
      .option("--tz <zone>", "the IANA time zone of --window (default UTC), e.g. Europe/Berlin")
      .option("--pause-running", "also pause the deployments running in the environment now (not rollbacks or reverts); deployctl resume <id> goes on"),
  ).action((env: string, o: FreezeOptions) => run(freezeCommand(env, o)));

  withCommonOptions(
    subcommand(program, "unfreeze")
      .description("lift an environment's freeze: deployments to it are accepted again (unless another of its freezes holds)")
      .argument("<env>", "environment", tokenOption)
      .option("--name <name>", "the named freeze to lift (default: the unnamed one)", tokenOption),
  ).action((env: string, o: CommonOptions & { name?: string }) => run(unfreezeCommand(env, o)));

  withCommonOptions(subcommand(program, "freezes").description("list the freezes that hold (in force now, or waiting for their next weekly window): who froze, since when, until when and why")).action((o: CommonOptions) =>
    run(freezesCommand(o)),
  );

  withCommonOptions(
    subcommand(program, "policy")
      .description("set what an environment accepts: only promotions from another environment (deploy --from-env), after a least soak there, or only deployments with a canary wave; others are refused, rollbacks, reverts and convergence still run. With --app, one app's policy there, on top of the environment's. Without options: show it")
      .argument("<env>", "environment", tokenOption)
      .option("--app <app>", "the policy of this app's deployments to the environment only; they must satisfy the environment's policy too", tokenOption)
      .option("--reason <text>", "why (required: shown to everyone whose deployment the policy refuses)")
      .option("--promote-from <env>", "accept only promotions of this environment's desired release (deployctl deploy --from-env <env>)", tokenOption)
      .option("--min-soak <duration>", "with --promote-from: only a release desired there at least this long (e.g. 2h, 1d; at most 30d)", policySoakOption)
      .option("--require-canary", "accept only deployments with a canary wave (deployctl deploy --canary)")
      .option("--clear", "lift every rule: every deployment is accepted again"),
  ).action((env: string, o: PolicyOptions) => run(policyCommand(env, o)));

  withCommonOptions(subcommand(program, "policies").description("list the policies, the environments' and their apps': what each accepts, who set it, when and why")).action((o: CommonOptions) =>
    run(policiesCommand(o)),
  );

  withCommonOptions(
    subcommand(program, "status")
      .description("one screen on an app in an environment: the desired release, the deployments running, the freezes, the policy, and the agents by release status (naming the outdated and offline ones)")
      .argument("<app>", "app", tokenOption)
      .argument("<env>", "environment", tokenOption),
  ).action((app: string, env: string, o: CommonOptions) => run(statusCommand(app, env, o)));

  withCommonOptions(
    subcommand(program, "releases")
      .description("show the desired release of an app in an environment (the last deployment that succeeded there) and the ones before it")
      .argument("<app>", "app", tokenOption)
      .argument("<env>", "environment", tokenOption),
  ).action((app: string, env: string, o: { json?: boolean; coordinator?: string }) => run(releasesCommand(app, env, o)));

  withCommonOptions(subcommand(program, "artifacts").description("list uploaded bundles").option("--name <name>", "only artifacts of this name").option("--app <app>", "only artifacts of this app", tokenOption)).action(
    (o: { name?: string; app?: string; json?: boolean; coordinator?: string }) => run(artifactsCommand(o)),
  );

  subcommand(program, "completion")
    .description("print a shell completion script for deployctl's commands and options")
    .addArgument(new Argument("<shell>", "bash or zsh").choices(SHELLS))
    .action((shell: Shell) => run(completionCommand(program, shell)));

  return program;
}

/** Runs deployctl with `argv` (without node and the script); resolves with the exit code. */
export async function run(argv: string[], version = "0.0.0"): Promise<ExitCode> {
  let code: ExitCode = EXIT.OK;
  const program = buildProgram((c) => (code = c), version);
  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE; // commander printed it
    process.stderr.write(formatError(err) + "\n");
    return exitCodeOf(err);
  }
}
