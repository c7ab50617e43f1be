// deployctl completion bash|zsh: a completion script generated from the
// commander definition itself (commands, their options and arguments), so it
// cannot drift from what deployctl accepts. Values are completed where they
// come from a fixed set (--state, the shell) or are files (the bundle, --ca,
// --cert, --key); app names, ids and versions are the user's to type, so
// nothing is offered there (completing them would mean calling the
// coordinator on every Tab).
import type { Command, Option } from "commander";
import { EXIT, type ExitCode } from "../errors.js";
import { DEPLOYMENT_STATES } from "../options.js";

export const SHELLS = ["bash", "zsh"] as const;
export type Shell = (typeof SHELLS)[number];

type Values = { files: true } | { words: readonly string[] } | undefined;

/** Values of options whose parser is custom (so commander knows no choices). */
const OPTION_VALUES: Record<string, Values> = {
  "--state": { words: DEPLOYMENT_STATES },
  "--ca": { files: true },
  "--cert": { files: true },
  "--key": { files: true },
};
/** Positional arguments that are files, by argument name. */
const FILE_ARGUMENTS = new Set(["bundle"]);

interface OptionSpec {
  flags: string[];
  description: string;
  takesValue: boolean;
  values: Values;
}
interface ArgumentSpec {
  name: string;
  values: Values;
}
interface CommandSpec {
  name: string;
  description: string;
  options: OptionSpec[];
  arguments: ArgumentSpec[];
}

const HELP_OPTION: OptionSpec = { flags: ["-h", "--help"], description: "display help for command", takesValue: false, values: undefined };

function optionSpec(o: Option): OptionSpec {
  return {
    flags: [o.short, o.long].filter((f): f is string => f !== undefined),
    description: o.description,
    takesValue: o.required || o.optional,
    values: o.argChoices ? { words: o.argChoices } : OPTION_VALUES[o.long ?? ""],
  };
}

function commandSpecs(program: Command): CommandSpec[] {
  return program.commands.map((c) => ({
    name: c.name(),
    description: c.description(),
    options: [...c.options.filter((o) => !o.hidden).map(optionSpec), HELP_OPTION],
    arguments: c.registeredArguments.map((a) => ({
      name: a.name(),
      values: a.argChoices ? { words: a.argChoices } : FILE_ARGUMENTS.has(a.name()) ? { files: true } : undefined,
    })),
  }));
}

export function completionScript(program: Command, shell: Shell): string {
  const commands = commandSpecs(program);
  const programOptions = [...program.options.map(optionSpec), HELP_OPTION];
  return shell === "bash" ? bashScript(commands, programOptions) : zshScript(commands, programOptions);
}

export function completionCommand(program: Command, shell: Shell): Promise<ExitCode> {
  process.stdout.write(completionScript(program, shell));
  return Promise.resolve(EXIT.OK);
}

// ---- bash ---------------------------------------------------------------

function bashValues(v: Values, indent: string): string {
  if (v === undefined) return `${indent}return 0 ;; # a value to type: nothing to offer`;
  if ("files" in v) return `${indent}compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return 0 ;;`;
  return `${indent}mapfile -t COMPREPLY < <(compgen -W "${v.words.join(" ")}" -- "$cur"); return 0 ;;`;
}

function bashCommand(c: CommandSpec): string {
  const valued = c.options.filter((o) => o.takesValue);
  // Options with the same kind of value share a case branch.
  const branches = new Map<string, { flags: string[]; values: Values }>();
  for (const o of valued) {
    const key = JSON.stringify(o.values ?? null);
    const branch = branches.get(key) ?? { flags: [], values: o.values };
    branch.flags.push(...o.flags);
    branches.set(key, branch);
  }
  const valueCases = [...branches.values()].map((b) => `        ${b.flags.join("|")})\n${bashValues(b.values, "          ")}`);
  const words = c.options.flatMap((o) => o.flags).join(" ");
  const positional = c.arguments[0]?.values;
  const positionalLine =
    positional === undefined
      ? ""
      : "files" in positional
        ? `      compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur")\n`
        : `      mapfile -t COMPREPLY < <(compgen -W "${positional.words.join(" ")}" -- "$cur")\n`;
  return [
    `    ${c.name})`,
    ...(valueCases.length > 0 ? [`      case "$prev" in`, ...valueCases, `      esac`] : []),
    `      if [[ "$cur" == -* ]]; then`,
    `        mapfile -t COMPREPLY < <(compgen -W "${words}" -- "$cur")`,
    `        return 0`,
    `      fi`,
    positionalLine + `      ;;`,
  ].join("\n");
}

function bashScript(commands: CommandSpec[], programOptions: OptionSpec[]): string {
  return `# bash completion for deployctl. Load it with: source <(deployctl completion bash)
_deployctl() {
  local cur prev cmd i
  COMPREPLY=()
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  # The command is the first word that is not an option (the program's own
  # options take no value).
  cmd=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      -*) ;;
      *) cmd="\${COMP_WORDS[i]}"; break ;;
    esac
  done
  if [[ -z "$cmd" ]]; then
    if [[ "$cur" == -* ]]; then
      mapfile -t COMPREPLY < <(compgen -W "${programOptions.flatMap((o) => o.flags).join(" ")}" -- "$cur")
    else
      mapfile -t COMPREPLY < <(compgen -W "${commands.map((c) => c.name).join(" ")}" -- "$cur")
    fi
    return 0
  fi
  case "$cmd" in
${commands.map(bashCommand).join("\n")}
  esac
  return 0
}
complete -F _deployctl deployctl
`;
}

// ---- zsh ----------------------------------------------------------------

/** Inside a single-quoted zsh word, and inside _arguments' [description]. */
function zq(s: string): string {
  return s.replace(/'/g, `'\\''`);
}
function zdesc(s: string): string {
  return zq(s.replace(/\\/g, "\\\\").replace(/([[\]:])/g, "\\$1"));
}

function zshAction(v: Values): string {
  if (v === undefined) return " ";
  if ("files" in v) return "_files";
  return `(${v.words.join(" ")})`;
}

function zshOption(o: OptionSpec): string[] {
  const value = o.takesValue ? `:${o.flags.at(-1)!.replace(/^-+/, "")}:${zshAction(o.values)}` : "";
  // Both spellings of one option exclude each other.
  const exclusion = o.flags.length > 1 ? `(${o.flags.join(" ")})` : "";
  return o.flags.map((f) => `'${exclusion}${f}[${zdesc(o.description)}]${zq(value)}'`);
}

function zshCommand(c: CommandSpec): string {
  const specs = [...c.options.flatMap(zshOption), ...c.arguments.map((a, i) => `'${i + 1}:${zq(a.name)}:${zq(zshAction(a.values))}'`)];
  return `        ${c.name})\n          _arguments -s \\\n            ${specs.join(" \\\n            ")}\n          ;;`;
}

function zshScript(commands: CommandSpec[], programOptions: OptionSpec[]): string {
  return `#compdef deployctl
# zsh completion for deployctl. Put it on $fpath as _deployctl
# (deployctl completion zsh > "\${fpath[1]}/_deployctl"), or after compinit:
# source <(deployctl completion zsh)
_deployctl() {
  local curcontext="$curcontext" state line
  typeset -A opt_args
  _arguments -C \\
    ${programOptions.flatMap(zshOption).join(" \\\n    ")} \\
    '1: :->command' \\
    '*:: :->args'
  case $state in
    command)
      local -a commands
      commands=(
${commands.map((c) => `        '${zq(c.name)}:${zq(c.description)}'`).join("\n")}
      )
      _describe -t commands 'deployctl command' commands
      ;;
    args)
      case $line[1] in
${commands.map(zshCommand).join("\n")}
      esac
      ;;
  esac
}

if [[ "\${funcstack[1]}" == "_deployctl" ]]; then
  _deployctl "$@"
else
  compdef _deployctl deployctl
fi
`;
}
