/**
 * `deno task dist`: build `dist/circuit`, one file that runs on a Linux x86_64 host with
 * no Deno, no network, no checkout and an empty home, as daemon and CLI alike.
 *
 * The program is first bundled into one module (`deno bundle`, which needs esbuild from
 * the npm registry once; it is cached afterwards). Then, with `--method auto` (the
 * default), `deno compile` is tried on that module; it needs Deno's `denort` runtime,
 * which it downloads from dl.deno.land unless it is cached. When it cannot, the same
 * artifact is built offline as a self-extracting executable: a POSIX sh launcher
 * (tools/dist_header.ts), then the gzipped runtime this builder runs on, then the gzipped
 * bundle.
 *
 * ```sh
 * deno task dist                              # dist/circuit
 * deno task dist --method sfx --output /tmp/c # force the self-extracting form
 * ```
 *
 * @module
 */

import { launcherScript, OFFSET_DIGITS, PRELUDE } from "./dist_header.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** Default output path, relative to the repository root. */
export const DEFAULT_OUTPUT = "dist/circuit";

/** How long `deno compile` may take (it may try the network) before we give up on it. */
export const COMPILE_TIMEOUT_MS = 120_000;

/** How long `deno bundle` may take. */
export const BUNDLE_TIMEOUT_MS = 120_000;

/** How the artifact is made: `compile` only, `sfx` (self-extracting) only, or either. */
export type DistMethod = "auto" | "compile" | "sfx";

/** Options of {@linkcode buildDist}. */
export interface DistOptions {
  /** Where to write the executable. @default {"dist/circuit" in the repository} */
  output?: string;
  /** Which way to build it. @default {"auto"} */
  method?: DistMethod;
  /** Progress lines go here. @default {a line on stderr} */
  log?: (line: string) => void;
}

/** What {@linkcode buildDist} made. */
export interface DistResult {
  /** The executable's path. */
  path: string;
  /** The way it was built. */
  method: "compile" | "sfx";
  /** Its size in bytes. */
  bytes: number;
}

interface RunResult {
  ok: boolean;
  output: string;
}

async function run(args: string[], timeoutMs: number): Promise<RunResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, timeoutMs);
  try {
    const o = await child.output();
    const dec = new TextDecoder();
    const output = (dec.decode(o.stdout) + dec.decode(o.stderr)).trim();
    return {
      ok: o.success,
      output: o.signal === "SIGKILL" ? `timed out after ${timeoutMs} ms\n${output}` : output,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The `--unstable-*` flags deno.json turns on (its `unstable` list). */
async function unstableFlags(): Promise<{ flags: string[]; version: string }> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const list: string[] = Array.isArray(config.unstable) ? config.unstable : [];
  return { flags: list.map((u) => `--unstable-${u}`), version: String(config.version ?? "0") };
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function firstLines(text: string, n = 3): string {
  return text.split("\n").filter((l) => l.trim() !== "").slice(0, n).join(" / ");
}

/** The line of a Deno error that says why: its second `Caused by` entry, else the first line. */
function cause(text: string): string {
  const lines = text.split("\n").map((l) => l.trim());
  const end = lines.findIndex((l) => l.startsWith("Stack backtrace"));
  const causes = lines.slice(0, end < 0 ? undefined : end).filter((l) => /^\d+: /.test(l));
  const why = causes[1] ?? causes[0];
  return why ? why.replace(/^\d+: /, "") : firstLines(text, 1);
}

async function bundle(dir: string): Promise<string> {
  const out = `${dir}/circuit.js`;
  const r = await run(
    ["bundle", "--quiet", "--platform", "deno", "--output", out, "cli.ts"],
    BUNDLE_TIMEOUT_MS,
  );
  if (!r.ok) throw new Error(`deno bundle failed: ${firstLines(r.output)}`);
  await Deno.writeTextFile(out, PRELUDE + (await Deno.readTextFile(out)));
  return out;
}

async function compile(js: string, output: string, flags: string[]): Promise<RunResult> {
  return await run(
    ["compile", "--quiet", "--allow-all", ...flags, "--no-check", "--output", output, js],
    COMPILE_TIMEOUT_MS,
  );
}

async function selfExtracting(js: string, output: string, flags: string[], version: string) {
  const deno = await Deno.readFile(await Deno.realPath(Deno.execPath()));
  const program = await Deno.readFile(js);
  const [denoSha, jsSha, denoGz, jsGz] = await Promise.all([
    sha256(deno),
    sha256(program),
    gzip(deno),
    gzip(program),
  ]);
  const id = (await sha256(new TextEncoder().encode(denoSha + jsSha))).slice(0, 16);
  const template = launcherScript({
    version,
    id,
    runFlags: flags,
    denoSha,
    denoGzLen: denoGz.length,
    jsSha,
    jsGzLen: jsGz.length,
  });
  const placeholder = "@OFFSET@".padEnd(OFFSET_DIGITS);
  const sized = template.replace("@OFFSET@", placeholder);
  const headerLen = new TextEncoder().encode(sized).length;
  const header = sized.replace(placeholder, String(headerLen + 1).padEnd(OFFSET_DIGITS));
  const file = await Deno.open(output, { write: true, create: true, truncate: true, mode: 0o755 });
  try {
    for (const part of [new TextEncoder().encode(header), denoGz, jsGz]) {
      let done = 0;
      while (done < part.length) done += await file.write(part.subarray(done));
    }
  } finally {
    file.close();
  }
  await Deno.chmod(output, 0o755);
}

/**
 * Build the executable.
 *
 * @param opts output path, method and logging
 * @returns where it is, how it was made and its size
 * @throws {Error} when bundling fails, or when the chosen method cannot build
 */
export async function buildDist(opts: DistOptions = {}): Promise<DistResult> {
  const output = opts.output ?? `${ROOT}${DEFAULT_OUTPUT}`;
  const method = opts.method ?? "auto";
  const log = opts.log ?? ((l: string) => console.error(l));
  const { flags, version } = await unstableFlags();
  const outDir = output.includes("/") ? output.slice(0, output.lastIndexOf("/")) : ".";
  await Deno.mkdir(outDir || "/", { recursive: true });
  const work = await Deno.makeTempDir({ prefix: "circuit-dist-" });
  const tmpOut = `${output}.tmp-${Deno.pid}`;
  try {
    const js = await bundle(work);
    let made: "compile" | "sfx" | null = null;
    if (method !== "sfx") {
      const r = await compile(js, tmpOut, flags);
      if (r.ok) made = "compile";
      else if (method === "compile") {
        throw new Error(`deno compile failed: ${cause(r.output)}`);
      } else log(`deno compile cannot build here (${cause(r.output)}); self-extracting`);
    }
    if (made === null) {
      await selfExtracting(js, tmpOut, flags, version);
      made = "sfx";
    }
    await Deno.rename(tmpOut, output);
    const bytes = (await Deno.stat(output)).size;
    log(`wrote ${output} (${made}, ${(bytes / 1048576).toFixed(1)} MiB)`);
    return { path: output, method: made, bytes };
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
    await Deno.remove(tmpOut).catch(() => {});
  }
}

function usage(): never {
  console.error("usage: deno task dist [--output PATH] [--method auto|compile|sfx]");
  Deno.exit(1);
}

if (import.meta.main) {
  const opts: DistOptions = {};
  const args = [...Deno.args];
  while (args.length > 0) {
    const a = args.shift()!;
    const [flag, inline] = a.includes("=") ? a.split(/=(.*)/s, 2) : [a, undefined];
    const value = () => inline ?? args.shift() ?? usage();
    if (flag === "--output" || flag === "-o") opts.output = value();
    else if (flag === "--method") {
      const m = value();
      if (m !== "auto" && m !== "compile" && m !== "sfx") usage();
      opts.method = m;
    } else usage();
  }
  try {
    await buildDist(opts);
  } catch (err) {
    console.error(`dist: ${(err as Error).message.split("\n")[0]}`);
    Deno.exit(1);
  }
}
