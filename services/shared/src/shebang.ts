// A script's #! line saved with Windows line endings names "/bin/bash\r" as
// its interpreter. Shared by the upload's check of a bundle's hooks
// (bundle/inspect.ts) and the agent's account of a script that cannot start
// (agent runner.ts); no imports, so the agent's start loads nothing more.

/** The first line of `head` without its carriage return, when it is a #! line ending in one (CRLF); else undefined. */
export function crlfShebang(head: string): string | undefined {
  if (!head.startsWith("#!")) return undefined;
  const eol = head.indexOf("\n");
  return eol > 0 && head[eol - 1] === "\r" ? head.slice(0, eol - 1) : undefined;
}
