/**
 * The benchmark's command line: bad arguments are refused at once, with one line on
 * stderr and exit 1, instead of starting an hour of measurements.
 */

import { assert, assertEquals, assertOneLineError, type CliResult } from "./_harness.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** `deno run -A bench/run.ts ARGS`, killed after 20 s (a bench that started runs long). */
async function bench(args: string[]): Promise<CliResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}bench/run.ts`, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGINT"), 20_000);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("bench: unknown flags and bad section numbers are one line on stderr, exit 1", async () => {
  for (const args of [["--bogus"], ["--only", "11"], ["--only", "2,x"], ["extra"], ["--only"]]) {
    assertOneLineError(await bench(args), /^bench: .*; usage: deno task bench /);
  }
  const help = await bench(["--", "--help"]);
  assertEquals(help.code, 0);
  assert(help.stdout.startsWith("usage: deno task bench "), help.stdout);
});
