/**
 * Cold start of the CLI and the library: what a command loads before it runs. Each
 * `node:` module brings up part of Deno's Node layer, and `node:crypto` alone costs 15–30
 * ms here, a third of the cold-command budget. These tests read the module graph Deno
 * resolves (`deno info --json`) and fail when a static import chain pulls such a module
 * into a path that does not need it.
 */

import { assert, assertEquals } from "./_harness.ts";

const ROOT = new URL("..", import.meta.url).pathname;

interface InfoDep {
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface InfoModule {
  specifier: string;
  dependencies?: InfoDep[];
}

/** Every module the entry point loads before it runs: static imports, transitively. */
async function staticClosure(entry: string): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", `${ROOT}deno.json`, `${ROOT}${entry}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(out.code === 0, `deno info failed: ${new TextDecoder().decode(out.stderr)}`);
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: InfoModule[];
  };
  const bySpec = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const todo = [...info.roots];
  while (todo.length) {
    const s = todo.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of bySpec.get(s)?.dependencies ?? []) {
      if (d.code && !d.isDynamic) todo.push(d.code.specifier);
    }
  }
  return seen;
}

function nodeModules(closure: Set<string>): string[] {
  return [...closure].filter((s) => s.startsWith("node:")).sort();
}

Deno.test("startup: the client library loads no node: module until a call needs one", async () => {
  // node:crypto loads at the first keyed dial, node:dgram at the first discover().
  assertEquals(nodeModules(await staticClosure("mod.ts")), []);
});

Deno.test("startup: a client command loads only node:util (its flag parser)", async () => {
  // cli.ts imports each command's module when the command runs.
  for (const entry of ["cli.ts", "cli/client_commands.ts", "cli/chan_commands.ts"]) {
    assertEquals(nodeModules(await staticClosure(entry)), ["node:util"], entry);
  }
});

Deno.test("startup: the check above sees node:crypto where it is imported", async () => {
  // The server does load node:crypto statically (membership datagrams), so a graph walk
  // that missed node: modules would fail here.
  assert(nodeModules(await staticClosure("server/mod.ts")).includes("node:crypto"));
});
