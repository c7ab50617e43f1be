// deployctl freeze <env> | unfreeze <env> | freezes: an environment freeze
// (a release window, an incident). While it holds, deployments to the
// environment are refused unless `deploy --override-freeze "<why>"` (recorded
// with the deployment); rollbacks, automatic reverts and convergence still
// run, and deployments already running go on. Both are safe to repeat:
// freezing again replaces the reason and the end, unfreezing an environment
// that is not frozen changes nothing.
import { errorMessage } from "../../../shared/src/index.js";
import { EXIT, UsageError, type ExitCode } from "../errors.js";
import { withClient, type CommonOptions } from "../options.js";
import { duration, freezeLine, isoTime, shortState, table, tsMs, windowsLine } from "../render/format.js";
import { jsonDocument } from "../render/json.js";

export interface FreezeOptions extends CommonOptions {
  reason?: string;
  /** How long (ms), or --until; neither: until unfrozen. */
  for?: number;
  until?: number;
  /** A named freeze (a recurring window beside an incident's); absent: the environment's unnamed one. */
  name?: string;
  /** Weekly windows it is in force in ("fri 15:00-mon 08:00"); absent: all the time. */
  window?: string[];
  tz?: string;
  /** Also pause the deployments running in the environment (not rollbacks or reverts: the way back stays open). */
  pauseRunning?: boolean;
}

const print = (s: string): boolean => process.stdout.write(s + "\n");

export function freezeCommand(env: string, o: FreezeOptions): Promise<ExitCode> {
  if (!o.reason?.trim()) throw new UsageError("--reason is required: everyone whose deployment the freeze refuses reads it");
  if (o.for !== undefined && o.until !== undefined) throw new UsageError("give --for or --until, not both (neither: until deployctl unfreeze)");
  if (o.until !== undefined && o.until <= Date.now()) throw new UsageError(`--until ${new Date(o.until).toISOString()} has passed`);
  if (o.tz !== undefined && !o.window?.length) throw new UsageError("--tz only with --window (a freeze without windows holds all the time)");
  return withClient(o, async (c) => {
    const f = await c.freezeEnvironment(env, o.reason!, {
      ...(o.for !== undefined ? { forMs: o.for } : {}),
      ...(o.until !== undefined ? { untilMs: o.until } : {}),
      ...(o.name ? { name: o.name } : {}),
      ...(o.window?.length ? { windows: o.window } : {}),
      ...(o.tz ? { timeZone: o.tz } : {}),
    });
    if (o.json) {
      print(jsonDocument("deploy.v1.EnvironmentFreeze", f).trimEnd());
      return EXIT.OK;
    }
    const unfreeze = `deployctl unfreeze ${env}${f.name ? ` --name ${f.name}` : ""}`;
    print(
      `${env} is ${freezeLine(f)}${f.windows?.length ? ` (in force now: ${f.inForce ? "yes" : "no"})` : ""}.\n` +
        `${f.windows?.length ? "Within its windows, new" : "New"} deployments to ${env} are refused (deployctl deploy --override-freeze "<why>" goes through, recorded); ` +
        `rollbacks, automatic reverts and convergence still run. Lift it with: ${unfreeze}`,
    );
    // A freeze stops nothing that runs: say what does, so it can be paused
    // or cancelled; with --pause-running, pause them (a rollback or a revert
    // goes on: the way back stays open).
    const running = (await c.listDeployments({ environment: env, state: "DEPLOYMENT_STATE_RUNNING", pageSize: 200 })).deployments ?? [];
    if (running.length === 0) return EXIT.OK;
    const wayBack = (d: (typeof running)[number]): boolean => Boolean(d.restores?.release || d.reverts);
    if (!o.pauseRunning) {
      print(`Still running in ${env} (the freeze does not stop them; deployctl pause or cancel does, or freeze with --pause-running):`);
      for (const d of running) print(`  ${d.id}  ${d.app} ${d.changeset?.version ?? ""}  by ${d.requestedBy || "-"}`);
      return EXIT.OK;
    }
    let failed = 0;
    for (const d of running) {
      if (wayBack(d)) {
        print(`left running: ${d.id} (${d.app} ${d.changeset?.version ?? ""}) restores an earlier release`);
        continue;
      }
      try {
        const p = await c.pauseDeployment(d.id ?? "", `environment frozen: ${o.reason!} (deployctl freeze --pause-running)`);
        print(`paused ${d.id} (${d.app} ${d.changeset?.version ?? ""}): ${p.paused ? "its applies in flight finish, nothing new starts" : `now ${shortState(p.state)}`}; resume with: deployctl resume ${d.id}`);
      } catch (err) {
        failed++;
        process.stderr.write(`deployctl: pausing ${d.id}: ${errorMessage(err)}\n`);
      }
    }
    return failed > 0 ? EXIT.FAILED : EXIT.OK;
  });
}

export function unfreezeCommand(env: string, o: CommonOptions & { name?: string }): Promise<ExitCode> {
  return withClient(o, async (c) => {
    const all = (await c.listFreezes()).freezes ?? [];
    const before = all.find((f) => f.environment === env && (f.name ?? "") === (o.name ?? ""));
    const f = await c.unfreezeEnvironment(env, o.name);
    if (o.json) {
      print(jsonDocument("deploy.v1.EnvironmentFreeze", f).trimEnd());
      return EXIT.OK;
    }
    const what = o.name ? `${env}'s freeze "${o.name}"` : env;
    print(before ? `${what} is lifted (it was ${freezeLine(before)})` : `${what} was not frozen: nothing changed`);
    // Other freezes of the environment still hold: say so, or the operator believes it open.
    const others = all.filter((x) => x.environment === env && x !== before);
    for (const x of others) print(`${env} is still ${freezeLine(x)}${x.inForce ? " (in force now)" : " (not in force now)"}; lift it with: deployctl unfreeze ${env}${x.name ? ` --name ${x.name}` : ""}`);
    if (before && others.every((x) => !x.inForce)) print(`deployments to ${env} are accepted again`);
    return EXIT.OK;
  });
}

export function freezesCommand(o: CommonOptions): Promise<ExitCode> {
  return withClient(o, async (c) => {
    const res = await c.listFreezes();
    if (o.json) {
      print(jsonDocument("deploy.v1.ListFreezesResponse", res).trimEnd());
      return EXIT.OK;
    }
    const freezes = res.freezes ?? [];
    if (freezes.length === 0) {
      print("no environment is frozen");
      return EXIT.OK;
    }
    const now = Date.now();
    print(
      table(
        ["ENVIRONMENT", "NAME", "IN FORCE", "WHEN", "FROZEN BY", "SINCE", "UNTIL", "REASON"],
        freezes.map((f) => {
          const end = tsMs(f.until ?? null);
          return [
            f.environment ?? "",
            f.name || "-",
            f.inForce ? "yes" : "no",
            windowsLine(f) || "always",
            f.by || "-",
            isoTime(f.at ?? null),
            end === undefined ? "unfrozen" : `${isoTime(f.until ?? null)} (${duration(end - now)} left)`,
            f.reason ?? "",
          ];
        }),
      ),
    );
    return EXIT.OK;
  });
}
