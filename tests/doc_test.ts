/**
 * The package README's examples run against a real server: each `ts` code block that
 * reads `CIRCUIT_URL` is run as a program with the URL of a fresh server.
 *
 * @module
 */

import { assert } from "./_assert.ts";
import { Server } from "./_harness.ts";

const README = new URL("../client/README.md", import.meta.url);
const ROOT = new URL("..", import.meta.url);

/** The `ts` blocks (not `ts ignore`) of a Markdown file that use `CIRCUIT_URL`. */
function liveBlocks(markdown: string): string[] {
  const blocks = [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
  return blocks.filter((b) => b.includes('Deno.env.get("CIRCUIT_URL")!'));
}

/** Run a program from stdin in the repository, so `@circuit/client` is this package. */
async function runProgram(code: string, url: string): Promise<{ ok: boolean; out: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--unstable-net", "-"],
    cwd: ROOT,
    env: { CIRCUIT_URL: url, NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(code));
  await w.close();
  const r = await child.output();
  const d = new TextDecoder();
  return { ok: r.success, out: d.decode(r.stdout) + d.decode(r.stderr) };
}

Deno.test("client/README.md examples run against a real server", async () => {
  const blocks = liveBlocks(await Deno.readTextFile(README));
  assert(blocks.length >= 1, "the README has a live example");
  await using server = await Server.start();
  for (const code of blocks) {
    const r = await runProgram(code, server.url);
    assert(r.ok, `README example failed:\n${code}\n--- output:\n${r.out}`);
  }
});
