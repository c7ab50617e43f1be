// Summarises a .cpuprofile (node --cpu-prof): self time by function and by
// file, the top entries, so a bench run's hot spots can be read in a terminal.
//   node dist/scripts/bench/profileSummary.js <file.cpuprofile> [top]
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const file = process.argv[2];
const top = Number(process.argv[3] ?? 25);
if (!file) throw new Error("usage: profileSummary <file.cpuprofile> [top]");
const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
const total = (p.endTime - p.startTime) / 1000;
const short = (url: string): string => url.replace(/^file:\/\//, "").replace(/.*node_modules\//, "nm:").replace(/.*\/dist\//, "");
const fn = new Map<string, number>();
const files = new Map<string, number>();
for (const [id, us] of self) {
  const n = byId.get(id)!;
  const f = n.callFrame;
  const key = `${f.functionName || "(anonymous)"} ${short(f.url)}:${f.lineNumber + 1}`;
  fn.set(key, (fn.get(key) ?? 0) + us / 1000);
  const fk = f.url ? short(f.url) : f.functionName;
  files.set(fk, (files.get(fk) ?? 0) + us / 1000);
}
const show = (m: Map<string, number>, title: string): void => {
  console.log(`\n${title} (profile ${Math.round(total)} ms)`);
  for (const [k, ms] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms.toFixed(0).padStart(8)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}%  ${k}`);
};
show(fn, "self time by function");
show(files, "self time by file");
