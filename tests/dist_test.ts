/**
 * `deno task dist` makes one file that runs alone: built from the working tree, copied into
 * fresh mount, network and PID namespaces (`lo` only, `deno` hidden, an empty home), it
 * starts a server, lists it, runs a process and reads its output, passes exit codes and
 * SIGTERM through, and stops with `suicide`. Whatever way `dist` built it (`deno compile`
 * or self-extracting), this is the check.
 *
 * @module
 */

import { buildDist } from "../tools/dist.ts";
import { assert, missingTool, skipTest, TempDir } from "./_harness.ts";
import { netnsUnavailable } from "./_netns.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** The whole check may take this long (a build is a few seconds, a first start one). */
const CHECK_TIMEOUT_MS = 180_000;

/** The script run inside the namespaces; it prints `KEY value` lines or `FAIL why`. */
const SCRIPT = `${ROOT}/tests/_dist_check.sh`;

async function unavailable(): Promise<string | null> {
  return await netnsUnavailable() ?? await missingTool(["unshare", "sh"]);
}

/** Where deno lives, to hide inside the namespace: directories to cover and files to mask. */
async function denoLocations(): Promise<{ dirs: string[]; files: string[] }> {
  const systemBins = ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"];
  const dirs = new Set<string>(), files = new Set<string>();
  const exe = Deno.execPath();
  const real = await Deno.realPath(exe);
  for (const p of [exe, real]) {
    const dir = p.slice(0, p.lastIndexOf("/"));
    if (systemBins.includes(dir)) {
      // A symlink dangles once its target is hidden; a real file is masked.
      if (!(await Deno.lstat(p)).isSymlink) files.add(p);
    } else dirs.add(dir);
  }
  const home = Deno.env.get("HOME");
  const denoDir = Deno.env.get("DENO_DIR") ?? (home ? `${home}/.cache/deno` : undefined);
  for (const d of [denoDir, home ? `${home}/.deno` : undefined, ROOT]) {
    if (d && (await Deno.stat(d).catch(() => null))?.isDirectory) dirs.add(d);
  }
  // A mount over a directory hides what is under it: drop those already covered.
  const list = [...dirs].sort();
  return {
    dirs: list.filter((d) => !list.some((o) => o !== d && d.startsWith(o + "/"))),
    files: [...files].filter((f) => !list.some((o) => f.startsWith(o + "/"))),
  };
}

const NAME = "dist: dist/circuit runs alone (no deno, no network, no checkout, empty home)";
const why = await unavailable();
if (why) {
  skipTest(NAME, why);
} else {
  Deno.test(NAME, async () => {
    using tmp = new TempDir();
    const art = `${tmp.path}/circuit`;
    const built = await buildDist({ output: art, log: () => {} });
    const w = `${tmp.path}/ns`;
    await Deno.mkdir(w);
    const hide = await denoLocations();
    // The checkout is hidden inside, so the script runs from a copy.
    await Deno.copyFile(SCRIPT, `${tmp.path}/check.sh`);
    const child = new Deno.Command("unshare", {
      args: [
        "--mount",
        "--net",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "sh",
        `${tmp.path}/check.sh`,
        art,
        w,
        hide.dirs.join(" "),
        hide.files.join(" "),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C" },
      clearEnv: true,
    }).spawn();
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
    }, CHECK_TIMEOUT_MS);
    const o = await child.output().finally(() => clearTimeout(timer));
    const out = new TextDecoder().decode(o.stdout);
    const err = new TextDecoder().decode(o.stderr);
    const got = new Map<string, string>();
    for (const line of out.split("\n")) {
      const sp = line.indexOf(" ");
      if (line) got.set(sp < 0 ? line : line.slice(0, sp), sp < 0 ? "" : line.slice(sp + 1));
    }
    const ctx = `\n--- stdout\n${out}\n--- stderr\n${err}`;
    assert(!got.has("FAIL"), `the check failed: ${got.get("FAIL")}${ctx}`);
    assert(got.has("DONE") && o.code === 0, `the check did not finish (exit ${o.code})${ctx}`);
    assert(got.get("LINKS")?.trim() === "lo", `interfaces inside: ${got.get("LINKS")}${ctx}`);
    assert(got.get("HOME_BEFORE") === "0", `HOME was not empty${ctx}`);
    const url = got.get("URL") ?? "";
    assert(/^circuit:\/\/127\.0\.0\.1:\d+\/\d+\/Q[0-9a-f]{16}$/.test(url), `URL ${url}${ctx}`);
    const pid = url.split("/")[3];
    assert(pid === got.get("SPID"), `the server's PID ${pid} is not the launched PID${ctx}`);
    assert(got.get("LS") === "/X" + url.slice(-16), `ls printed ${got.get("LS")}${ctx}`);
    assert(got.get("OUT") === "hello from dist|DENO_DIR=unset|", `stdout ${got.get("OUT")}${ctx}`);
    assert(got.get("FALLBACK") === got.get("LS"), `with HOME empty: ${got.get("FALLBACK")}${ctx}`);
    if (built.method === "sfx") {
      assert(
        /^circuit-\d+ $/.test(got.get("TMP_CACHE") ?? ""),
        `tmp cache ${got.get("TMP_CACHE")}`,
      );
    }
    assert(got.get("BAD_RC") === "1", `a failing command exited ${got.get("BAD_RC")}${ctx}`);
    assert(/^1 \S/.test(got.get("BAD_ERR") ?? ""), `its stderr: ${got.get("BAD_ERR")}${ctx}`);
    const url2 = got.get("URL2") ?? "";
    assert(url2.split("/")[3] === got.get("TPID"), `second server's PID${ctx}`);
    assert(got.get("TERM_EXIT") === "0", `after SIGTERM the server exited ${got.get("TERM_EXIT")}`);
    assert(got.get("SERVER_EXIT") === "0", `after suicide it exited ${got.get("SERVER_EXIT")}`);
    console.log(
      `dist/circuit (${built.method}): ${(built.bytes / 1048576).toFixed(1)} MiB; ` +
        `first start ${got.get("FIRST_START_MS")} ms; cold ls ${got.get("LS_MS")} ms, ` +
        `then ${got.get("LS2_MS")} ms`,
    );
  });
}
