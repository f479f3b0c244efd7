/**
 * The architecture, checked from the real module graph (`deno info
 * --json`): no import cycle anywhere; each subsystem of `lib/` imports only
 * itself and lower layers; handlers import only the handler API
 * (`lib/mod.ts`) and the GraceDB client (`lib/gracedb/mod.ts`).
 */

import assert from "node:assert/strict";
import { relative } from "node:path";
import { ROOT } from "./helpers.ts";

/**
 * Layers of `lib/`, lowest first. A module may import its own folder and
 * folders of a lower rank; never a higher or an equal one beside it.
 */
const RANK: Record<string, number> = {
  core: 0,
  config: 1,
  gracedb: 1,
  queue: 2,
  durability: 3,
  xmpp: 4,
  child: 4,
  listener: 5,
  http: 6,
  tools: 7,
  release: 8,
};

interface Module {
  specifier: string;
  dependencies?: { code?: { specifier?: string }; type?: { specifier?: string } }[];
}

async function graph(roots: string[]): Promise<Map<string, string[]>> {
  const edges = new Map<string, string[]>();
  for (const root of roots) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", root],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: Module[] };
    for (const m of info.modules) {
      if (!m.specifier.startsWith("file://")) continue;
      const from = relative(ROOT, new URL(m.specifier).pathname);
      // Type-only imports count too: they tie the layers together as much.
      const to = (m.dependencies ?? [])
        .flatMap((d) => [d.code?.specifier, d.type?.specifier])
        .filter((s): s is string => typeof s === "string" && s.startsWith("file://"))
        .map((s) => relative(ROOT, new URL(s).pathname));
      edges.set(from, [...new Set([...(edges.get(from) ?? []), ...to])]);
    }
  }
  return edges;
}

async function roots(): Promise<string[]> {
  const files = ["main.ts", "workers/child.ts", "lib/mod.ts"];
  for (const dir of ["workers/handlers", "lib"]) {
    for await (const entry of walk(dir)) files.push(entry);
  }
  return files;
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(`${ROOT}/${dir}`)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(path);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}

function findCycle(edges: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    state.set(node, "open");
    stack.push(node);
    for (const next of edges.get(node) ?? []) {
      if (state.get(next) === "open") return [...stack.slice(stack.indexOf(next)), next];
      if (!state.has(next)) {
        const cycle = visit(next);
        if (cycle) return cycle;
      }
    }
    stack.pop();
    state.set(node, "done");
    return undefined;
  };
  for (const node of edges.keys()) {
    if (!state.has(node)) {
      const cycle = visit(node);
      if (cycle) return cycle;
    }
  }
  return undefined;
}

/** The subsystem folder of a lib/ module (`lib/xmpp/source.ts` -> `xmpp`). */
function subsystem(path: string): string | undefined {
  const m = /^lib\/([^/]+)\//.exec(path);
  return m?.[1];
}

const edges = await graph(await roots());

Deno.test("the module graph has no import cycle", () => {
  assert.ok(edges.size > 40, `only ${edges.size} modules found`);
  const cycle = findCycle(edges);
  assert.equal(cycle, undefined, `import cycle: ${cycle?.join(" -> ")}`);
});

Deno.test("every lib/ subsystem has a known layer and an entry module saying what it does", async () => {
  for await (const entry of Deno.readDir(`${ROOT}/lib`)) {
    if (!entry.isDirectory) continue;
    assert.ok(entry.name in RANK, `lib/${entry.name}/ has no layer in tests/layering_test.ts`);
    const text = await Deno.readTextFile(`${ROOT}/lib/${entry.name}/mod.ts`);
    assert.match(text, /^\/\*\*\n \* .+/, `lib/${entry.name}/mod.ts must open with a doc comment`);
    assert.match(
      text,
      /imports? only|may import/i,
      `lib/${entry.name}/mod.ts must say what it may import`,
    );
  }
});

Deno.test("lower layers never import higher ones", () => {
  const bad: string[] = [];
  for (const [from, tos] of edges) {
    const a = subsystem(from);
    if (a === undefined) continue;
    for (const to of tos) {
      const b = subsystem(to);
      if (b === undefined || a === b) continue;
      if (!(RANK[b]! < RANK[a]!)) bad.push(`${from} -> ${to} (${a} may not import ${b})`);
    }
  }
  assert.deepEqual(bad, []);
});

Deno.test("handlers import only the handler API and the GraceDB client from lib/", () => {
  const allowed = new Set(["lib/mod.ts", "lib/gracedb/mod.ts"]);
  const bad: string[] = [];
  for (const [from, tos] of edges) {
    if (!from.startsWith("workers/handlers/")) continue;
    for (const to of tos) {
      if (to.startsWith("lib/") && !allowed.has(to)) bad.push(`${from} -> ${to}`);
    }
  }
  assert.deepEqual(bad, []);
});
