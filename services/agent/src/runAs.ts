// The OS account an app's hooks and deploy executable run as
// (apps.<app>.user, CodeDeploy's `runas`), resolved once when the agent
// starts, so a name that does not exist stops the agent naming the key
// instead of failing every apply later.
//
// Resolved with getent(1), so users from NSS (LDAP, sssd) count, not only
// /etc/passwd.
import { execFileSync } from "node:child_process";

/** Who a process runs as: uid and gid for spawn(2), and what its environment says (HOME, USER, LOGNAME). */
export interface RunAs {
  uid: number;
  gid: number;
  user: string;
  home: string;
}

function getent(database: "passwd" | "group", key: string): string[] | undefined {
  try {
    const out = execFileSync("getent", [database, key], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const line = out.split("\n")[0] ?? "";
    return line === "" ? undefined : line.split(":");
  } catch (err) {
    // Exit 2: no such entry. Anything else (getent missing) is the agent's problem to report.
    if ((err as { status?: number }).status === 2) return undefined;
    throw new Error(`getent ${database} ${key} failed: ${(err as Error).message}`);
  }
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?$|^\d{1,10}$/;

/**
 * `user` (a name or a numeric uid) and `group` (a name or gid; default the
 * user's primary group) as a RunAs; throws a sentence naming what is wrong.
 * `self` is the agent's own uid: only root may run a process as another.
 */
export function resolveRunAs(user: string, group: string | undefined, self: number): RunAs {
  if (!NAME.test(user)) throw new Error(`"${user}" is not a user name or uid`);
  const pw = getent("passwd", user);
  if (!pw) throw new Error(`no user "${user}" on this machine (getent passwd ${user} finds none)`);
  const uid = Number(pw[2]);
  let gid = Number(pw[3]);
  if (group !== undefined) {
    if (!NAME.test(group)) throw new Error(`group "${group}" is not a group name or gid`);
    const gr = getent("group", group);
    if (!gr) throw new Error(`no group "${group}" on this machine (getent group ${group} finds none)`);
    gid = Number(gr[2]);
  }
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error(`getent gave no numeric uid and gid for "${user}"`);
  if (self !== 0 && uid !== self) throw new Error(`running hooks as ${pw[0]} (uid ${uid}) needs the agent to run as root; it runs as uid ${self}`);
  return { uid, gid, user: pw[0]!, home: pw[5] || "/" };
}

/** The environment a process run as `r` gets on top of the agent's base (runner.ts). */
export function runAsEnv(r: RunAs): Record<string, string> {
  return { HOME: r.home, USER: r.user, LOGNAME: r.user };
}
