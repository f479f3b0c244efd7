/**
 * Sums a V8 CPU profile (`--cpu-prof`) by part of the alert path, per
 * alert: `deno run --allow-read bench/profile.ts FILE.cpuprofile ALERTS`.
 * The listener writes one when `LVALERTMP_CPU_PROF=DIR deno task bench xmpp`.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** The part of the path a frame belongs to, by its module. */
function part(url: string, name: string): string {
  if (name === "(garbage collector)") return "garbage collection";
  if (name === "(idle)") return "idle";
  if (name === "(program)" || name === "(root)") return "native (parser, ops, runtime)";
  if (/@xmpp|\/ltx\//.test(url)) return "XMPP client and XML parsing (@xmpp, ltx)";
  if (/node_modules|npm\//.test(url)) return "other npm modules";
  if (/^ext:|^node:|^internal/.test(url)) return "Deno runtime (streams, ops, postMessage)";
  const m = /\/lib\/([a-z_]+)\/([a-z_]+)\.ts/.exec(url);
  if (m) return `lib/${m[1]}/${m[2]}.ts`;
  if (/\/bench\//.test(url)) return "benchmark harness";
  return url === "" ? "native (parser, ops, runtime)" : url.replace(/^.*\//, "");
}

/** Microseconds of self time per part, summed over the profile. */
export function summarize(profile: Profile): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
  }
  const parts = new Map<string, number>();
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame;
    const key = part(frame.url, frame.functionName);
    parts.set(key, (parts.get(key) ?? 0) + us);
  }
  return parts;
}

/** The heaviest functions by self time. */
function functions(profile: Profile, top: number): [string, number][] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const f = byId.get(profile.samples[i]!)!.callFrame;
    const key = `${f.functionName || "(anonymous)"} ${f.url.replace(/^.*\//, "")}:${
      f.lineNumber + 1
    }`;
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
  }
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, top);
}

if (import.meta.main) {
  const [file, alerts] = Deno.args;
  if (!file || !alerts) {
    console.error("Usage: profile.ts FILE.cpuprofile ALERTS");
    Deno.exit(2);
  }
  const profile = JSON.parse(await Deno.readTextFile(file)) as Profile;
  const n = Number(alerts);
  const parts = [...summarize(profile)].filter(([k]) => k !== "idle").sort((a, b) => b[1] - a[1]);
  const busy = parts.reduce((s, [, us]) => s + us, 0);
  console.log(`busy ${(busy / n).toFixed(1)} µs/alert on the listener's thread`);
  for (const [k, us] of parts) {
    if (us / n >= 0.5) console.log(`  ${(us / n).toFixed(1).padStart(7)} µs  ${k}`);
  }
  console.log("heaviest functions (self time, µs/alert):");
  for (const [k, us] of functions(profile, 25)) {
    if (k.startsWith("(idle)")) continue;
    console.log(`  ${(us / n).toFixed(1).padStart(7)}  ${k}`);
  }
}
