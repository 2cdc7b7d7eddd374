/**
 * The POSIX sh launcher at the front of a self-extracting `dist/circuit`, and the
 * prelude prepended to the bundled program. Kept apart from the builder so the text that
 * runs on hosts can be read in one place.
 *
 * The file is this header, then the gzip of the Deno runtime, then the gzip of the bundled
 * program. The first run unpacks both into a per-version cache directory, checks their
 * SHA-256 against the header, and renames the directory into place (so a half-written
 * unpack is never used); every run then `exec`s the runtime on the program, so signals,
 * stdio and the exit code are the runtime's own.
 *
 * @module
 */

/** Variables the launcher sets for the runtime only; the prelude gives the caller's back. */
export const RUNTIME_ENV = ["DENO_DIR", "DENO_NO_UPDATE_CHECK"] as const;

/** Values the builder fills into {@linkcode launcherScript}. */
export interface LauncherFields {
  /** circuit's version, from deno.json. */
  version: string;
  /** The version directory's name: 16 hex digits of the two files' hashes. */
  id: string;
  /** Flags `deno run` gets before the program (e.g. `--unstable-net`). */
  runFlags: string[];
  /** SHA-256 (hex) of the uncompressed runtime. */
  denoSha: string;
  /** Byte length of the gzipped runtime. */
  denoGzLen: number;
  /** SHA-256 (hex) of the uncompressed program. */
  jsSha: string;
  /** Byte length of the gzipped program. */
  jsGzLen: number;
}

/** Width the payload offset is padded to, so the header's length does not depend on it. */
export const OFFSET_DIGITS = 12;

/** Minutes after which an unfinished unpack directory (from a crashed first run) is removed. */
export const STALE_UNPACK_MINUTES = 10;

/**
 * The launcher, with `@OFFSET@` standing for the payload's 1-based byte offset (padded to
 * {@linkcode OFFSET_DIGITS}; the builder replaces it once the header's length is known).
 *
 * @param f the values to fill in
 * @returns the script text, ending in a newline
 */
export function launcherScript(f: LauncherFields): string {
  for (const flag of f.runFlags) {
    if (!/^--[a-z0-9-]+$/.test(flag)) throw new Error(`unexpected deno flag ${flag}`);
  }
  const saves = RUNTIME_ENV.map((v) =>
    `if [ -n "\${${v}+x}" ]; then export CIRCUIT_DIST_SAVED_${v}="$${v}"; else unset_vars="$unset_vars ${v}"; fi`
  ).join("\n");
  return `#!/bin/sh
# circuit ${f.version}: one self-extracting executable for Linux x86_64, built by
# \`deno task dist\`. It carries a Deno runtime and the bundled circuit program. The first
# run unpacks them into \${XDG_CACHE_HOME:-$HOME/.cache}/circuit/${f.id} (or, when that is
# not writable, \${TMPDIR:-/tmp}/circuit-UID/${f.id}), checks their SHA-256 and renames the
# directory into place; every run then execs the runtime, nothing is fetched. Needs only
# sh, coreutils and gzip. The payload follows the line "exit 1" below.
id=${f.id}
off=@OFFSET@ # 1-based byte offset of the payload
deno_gz=${f.denoGzLen}
deno_sha=${f.denoSha}
js_gz=${f.jsGzLen}
js_sha=${f.jsSha}

die() {
  printf 'circuit: %s\\n' "$*" >&2
  exit 1
}

self=$0
case $self in
*/*) ;;
*) self=$(command -v "$self") || die "cannot find this executable ($0)" ;;
esac

# The cache directories to try, best first: $XDG_CACHE_HOME/circuit, $HOME/.cache/circuit.
# Both belong to the user; the shared-tmp fallback is checked in tmp_parent.
cands=
case \${XDG_CACHE_HOME:-} in /*) cands="$XDG_CACHE_HOME/circuit" ;; esac
case \${HOME:-} in /*) [ "$HOME" = / ] || cands="$cands
$HOME/.cache/circuit" ;; esac

# A parent under shared tmp is used only when it is a real directory we own, mode 0700.
tmp_parent() {
  uid=$(id -u) || return 1
  p="\${TMPDIR:-/tmp}/circuit-$uid"
  case $p in /*) ;; *) return 1 ;; esac
  (umask 077 && mkdir -p "$p") 2>/dev/null
  [ -d "$p" ] && [ ! -L "$p" ] && [ -O "$p" ] || return 1
  chmod 700 "$p" 2>/dev/null || return 1
  printf '%s\\n' "$p"
}

# Unpack into a fresh directory beside the final one, verify, rename into place.
unpack() {
  parent=$1
  case "$(uname -sm)" in
  "Linux x86_64") ;;
  *) die "this executable is for Linux x86_64, not $(uname -sm)" ;;
  esac
  (umask 077 && mkdir -p "$parent") 2>/dev/null && [ -w "$parent" ] || return 1
  find "$parent" -maxdepth 1 -name '.unpack.*' -mmin +${STALE_UNPACK_MINUTES} \\
    -exec rm -rf {} + 2>/dev/null
  tmp=$(umask 077 && mktemp -d "$parent/.unpack.XXXXXX") || return 1
  if tail -c +"$off" "$self" | head -c "$deno_gz" | gzip -dc 2>/dev/null >"$tmp/deno" &&
    tail -c +"$((off + deno_gz))" "$self" | head -c "$js_gz" | gzip -dc 2>/dev/null >"$tmp/circuit.js" &&
    [ "$(sha256sum <"$tmp/deno")" = "$deno_sha  -" ] &&
    [ "$(sha256sum <"$tmp/circuit.js")" = "$js_sha  -" ] &&
    chmod 700 "$tmp/deno" && mkdir "$tmp/deno_dir" && : >"$tmp/.ok"; then
    [ -e "$parent/$id" ] || mv "$tmp" "$parent/$id" 2>/dev/null
  else
    rm -rf "$tmp"
    why="unpacking into $parent failed: $self is damaged (its SHA-256 check failed) or the disk is full"
    return 1
  fi
  # Another run may have won the race: keep its directory, drop ours.
  rm -rf "$tmp" "$parent/$id/\${tmp##*/}"
  [ -f "$parent/$id/.ok" ]
}

dir=
why="no writable cache directory: set XDG_CACHE_HOME or HOME, or make \${TMPDIR:-/tmp} writable"
old_ifs=$IFS
IFS='
'
for c in $cands; do
  if [ -f "$c/$id/.ok" ]; then dir="$c/$id" && break; fi
done
if [ -z "$dir" ]; then
  for c in $cands; do
    if unpack "$c"; then dir="$c/$id" && break; fi
  done
fi
IFS=$old_ifs
if [ -z "$dir" ] && t=$(tmp_parent); then
  if [ -f "$t/$id/.ok" ] || unpack "$t"; then dir="$t/$id"; fi
fi
[ -n "$dir" ] || die "$why"

unset_vars=
${saves}
[ -z "$unset_vars" ] || export CIRCUIT_DIST_UNSET="\${unset_vars# }"
export DENO_DIR="$dir/deno_dir" DENO_NO_UPDATE_CHECK=1
exec "$dir/deno" run --allow-all ${
    f.runFlags.join(" ")
  } --no-config --no-lock --no-remote --no-npm --cached-only --no-prompt "$dir/circuit.js" "$@"
exit 1
`;
}

/**
 * JavaScript put before the bundled program: it restores the environment variables the
 * launcher set for the runtime (see {@linkcode RUNTIME_ENV}), so the server's processes
 * inherit the caller's environment unchanged.
 */
export const PRELUDE = `// circuit dist: give back the caller's environment (the launcher set ${
  RUNTIME_ENV.join(", ")
}).
{
  const unset = (Deno.env.get("CIRCUIT_DIST_UNSET") ?? "").split(" ");
  for (const name of ${JSON.stringify(RUNTIME_ENV)}) {
    const saved = Deno.env.get("CIRCUIT_DIST_SAVED_" + name);
    if (saved !== undefined) Deno.env.set(name, saved);
    else if (unset.includes(name)) Deno.env.delete(name);
    Deno.env.delete("CIRCUIT_DIST_SAVED_" + name);
  }
  Deno.env.delete("CIRCUIT_DIST_UNSET");
}
`;
