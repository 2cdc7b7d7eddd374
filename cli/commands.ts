/**
 * The command table: every subcommand of the contract with its usage (written once here,
 * for help and for errors), argument count, help and flags. Command bodies live in other
 * modules and are imported only when run, so a cold `circuit ls` loads neither the
 * server nor the help of other commands; they import `cli/command.ts`, never this table.
 *
 * @module
 */

import { type FlagSpec, UsageError } from "./args.ts";
import { type ClientBody, type Command, usageLine } from "./command.ts";

export type { Command } from "./command.ts";

/** Flags every client command takes. */
export const CLIENT_FLAGS: Record<string, FlagSpec> = {
  dial: {
    type: "string",
    short: "d",
    value: "URL",
    help: "server to dial (else $CIRCUIT, else discovery)",
  },
  discover: {
    type: "string",
    value: "GROUP:PORT",
    help: "find a server by multicast (env CIRCUIT_DISCOVER)",
  },
  hmac: { type: "string", value: "KEYFILE", help: "cluster key file (env CIRCUIT_HMAC)" },
  timeout: {
    type: "string",
    value: "DURATION",
    help: "give up after this long, e.g. 500ms, 10s, 2m",
  },
};

/** `wait -x`, `waitall -x`: the process's exit status becomes the command's. */
const EXIT_FLAG: FlagSpec = {
  type: "boolean",
  short: "x",
  help: "exit with the process's exit status (signal n: 128+n)",
};

/** `--json` of the commands that print element state: one compact JSON line. */
const JSON_FLAG: FlagSpec = {
  type: "boolean",
  help: "print the JSON on one line (compact) instead of indented",
};

const HELP_FLAG: Record<string, FlagSpec> = {
  help: { type: "boolean", short: "h", help: "show this help" },
};

const client = (name: string) => async (): Promise<ClientBody> => {
  const m = await import("./client_commands.ts");
  return m.CLIENT_COMMANDS[name] ?? m.PROC_COMMANDS[name];
};

const chan = (name: string) => async (): Promise<ClientBody> =>
  (await import("./chan_commands.ts")).CHAN_COMMANDS[name];

const dns = (name: string) => async (): Promise<ClientBody> =>
  (await import("./dns_commands.ts")).DNS_COMMANDS[name];

/** Every subcommand, by name. */
export const COMMANDS: Record<string, Command> = {
  start: {
    args: "",
    summary: "run a server; print its URL as the only stdout line, then serve",
    details:
      "Without -a or --if the server binds loopback when there is no key, else the address of\n" +
      "the default-route interface. Binding a non-loopback address without a key is refused\n" +
      "unless --insecure is given. Stops cleanly on SIGTERM, SIGINT or `circuit suicide`,\n" +
      "ending its processes. Fixes: the printed URL is always dialable (never 0.0.0.0 or\n" +
      "[::]); --if is honoured; $CIRCUIT_HMAC works.",
    flags: {
      addr: {
        type: "string",
        short: "a",
        value: "HOST:PORT",
        help: "address to bind (port 0: any)",
      },
      if: { type: "string", value: "IFACE", help: "bind this interface's IPv4 address, any port" },
      join: {
        type: "string",
        short: "j",
        value: "SEED",
        help: "join the cluster of this member (URL or HOST:PORT; repeatable)",
      },
      discover: {
        type: "string",
        value: "GROUP:PORT",
        help: "multicast discovery (env CIRCUIT_DISCOVER)",
      },
      hmac: { type: "string", value: "KEYFILE", help: "cluster key file (env CIRCUIT_HMAC)" },
      docker: { type: "boolean", help: "enable Docker elements" },
      var: {
        type: "string",
        value: "DIR",
        help: "lock, server log and operation log (one server per DIR)",
      },
      insecure: { type: "boolean", help: "allow a non-loopback address without a key" },
      "output-bound": {
        type: "string",
        value: "BYTES",
        help: "stdout/stderr kept per process, e.g. 4MiB (default 4MiB)",
      },
      "output-hold": {
        type: "string",
        value: "DURATION",
        help: "how long a full stdout/stderr waits for its first reader before dropping " +
          "(default 5s; 0: never waits)",
      },
      "scrub-grace": {
        type: "string",
        value: "DURATION",
        help: "time between TERM and KILL when a process is scrubbed (default 5s)",
      },
      membership: {
        type: "string",
        value: "PROFILE",
        help: "failure-detection timings: lan (default), wan or test (ten times faster)",
      },
      "log-level": {
        type: "string",
        value: "LEVEL",
        help: "lowest level logged: debug, info (default), warn or error",
      },
      "log-format": {
        type: "string",
        value: "FORMAT",
        help: "text (default) or json (one object per line: time, level, category, message)",
      },
      "log-file": {
        type: "string",
        value: "PATH",
        help: "also write the log to PATH; none: stderr only (default: server.log in the " +
          "var dir, none under the systemd journal)",
      },
      metrics: {
        type: "string",
        value: "HOST:PORT",
        help: "serve /metrics (Prometheus) and /health there (off by default; " +
          "non-loopback needs a key)",
      },
    },
    client: false,
    load: async () => (await import("./start.ts")).runStart,
  },
  keygen: {
    args: "",
    summary: "print a new key: base64 of 64 random bytes",
    flags: {},
    client: false,
    load: async () => (await import("./keygen.ts")).runKeygen,
  },
  ls: {
    args: "[-l] [--depth] GLOB",
    arity: [1, 1],
    summary: "list anchors: / servers, /X… children, /X…/... every descendant, /... the cluster",
    details: "Paths print absolute, sorted by name, parents before children (--depth: children\n" +
      "first). -l prints the kind of each: server chan proc dns docker @join @leave, or ·.\n" +
      "--json prints one compact JSON object per line instead, in the same order (JSON Lines).\n" +
      "Fix: printed paths are absolute (the original printed them relative).",
    flags: {
      long: { type: "boolean", short: "l", help: "print each anchor's kind" },
      depth: { type: "boolean", help: "children before parents" },
      json: {
        type: "boolean",
        help: 'one JSON object per line: {"path", "kind"} (and "error" for a server that failed)',
      },
    },
    client: true,
    load: client("ls"),
  },
  peek: {
    args: "ANCHOR",
    arity: [1, 1],
    summary: "print element state as JSON (null for an empty anchor)",
    flags: { json: JSON_FLAG },
    client: true,
    load: client("peek"),
  },
  scrub: {
    args: "ANCHOR",
    arity: [1, 1],
    summary: "abort and remove the element (a process is killed)",
    details: "Fix: scrub of a process kills its whole process group (TERM, then KILL after\n" +
      "start --scrub-grace); the original left it running. Scrub of an empty anchor does nothing.",
    flags: {},
    client: true,
    load: client("scrub"),
  },
  stk: {
    args: "SERVER",
    arity: [1, 1],
    summary: "print a diagnostic dump of that server",
    flags: { json: JSON_FLAG },
    client: true,
    load: client("stk"),
  },
  join: {
    args: "SERVER URL",
    arity: [2, 2],
    summary: "make that server join the cluster of URL (merge)",
    flags: {},
    client: true,
    load: client("join"),
  },
  suicide: {
    args: "SERVER",
    arity: [1, 1],
    summary: "stop that server cleanly",
    details: "Fix: the server stops cleanly (announces its leave, ends its processes, exits 0);\n" +
      "the original printed a stack trace instead.",
    flags: {},
    client: true,
    load: client("suicide"),
  },
  "mk@join": {
    args: "ANCHOR",
    arity: [1, 1],
    summary: "subscription element of server join events",
    flags: {},
    client: true,
    load: chan("mk@join"),
  },
  "mk@leave": {
    args: "ANCHOR",
    arity: [1, 1],
    summary: "subscription element of server leave events",
    flags: {},
    client: true,
    load: chan("mk@leave"),
  },
  mkchan: {
    args: "ANCHOR CAP",
    arity: [2, 2],
    summary: "channel with buffer capacity CAP ≥ 0",
    flags: {},
    client: true,
    load: chan("mkchan"),
  },
  send: {
    args: "CHAN",
    arity: [1, 1],
    summary: "send stdin (whole, to EOF) as one message",
    details:
      "The message is stdin to EOF, delivered whole or not at all. Fix: a sender that dies\n" +
      "mid-message leaves nothing behind. Blocks while the buffer is full (CAP 0: until a\n" +
      "receiver takes it) unless --timeout is given.",
    flags: {},
    client: true,
    load: chan("send"),
  },
  recv: {
    args: "CHAN|SUBSCRIPTION",
    arity: [1, 1],
    summary: "receive one message to stdout; one event and a newline",
    details: "Prints one message (raw bytes), or one event and a newline. Fix: a recv that dies\n" +
      "while blocked or mid-message consumes nothing; the next message goes to a live\n" +
      "receiver.",
    flags: {},
    client: true,
    load: chan("recv"),
  },
  close: {
    args: "CHAN",
    arity: [1, 1],
    summary: "close after buffered messages are received",
    flags: {},
    client: true,
    load: chan("close"),
  },
  mkdns: {
    args: "ANCHOR [ADDR]",
    arity: [1, 2],
    summary: "DNS server element on ADDR (default: any interface, free port)",
    details: "ADDR is HOST:PORT, :PORT or HOST. Without ADDR it binds every interface on a port\n" +
      "free for both UDP and TCP, and peek shows the server's advertised host. Fix: answers\n" +
      "by query type, NXDOMAIN for unknown names, case-insensitive names, UDP and TCP, EDNS0\n" +
      "and truncation (TC) of large UDP answers; no packet and no scrub can crash the server.",
    flags: {},
    client: true,
    load: dns("mkdns"),
  },
  set: {
    args: 'DNS "RR"',
    arity: [2, 2],
    summary: "add a resource record in zone-file syntax",
    details: 'RR is "NAME [TTL] [CLASS] TYPE DATA", e.g. "miek.nl. 3600 IN MX 10 mx.miek.nl.".\n' +
      "Types: A AAAA CNAME MX NS PTR SOA SRV TXT. A relative name is completed with the root\n" +
      "(foo is foo.); TTL defaults to 3600, class to IN. A record that does not parse is an\n" +
      "error naming the problem. A CNAME cannot share its name with other records.",
    flags: {},
    client: true,
    load: dns("set"),
  },
  unset: {
    args: "DNS NAME",
    arity: [2, 2],
    summary: "remove all records of NAME",
    details: "NAME is matched case-insensitively, with or without the trailing dot.",
    flags: {},
    client: true,
    load: dns("unset"),
  },
  mkdkr: {
    args: "[--scrub] ANCHOR < JSON",
    arity: [1, 1],
    summary: "Docker container element (needs start --docker)",
    details: "Fix: stdin reaches the container and scrub stops and removes it.",
    flags: { scrub: { type: "boolean", help: "remove the element once the container exits" } },
    client: true,
    load: async () => (await import("./docker_commands.ts")).DOCKER_COMMANDS.mkdkr,
  },
  mkproc: {
    args: "[--scrub] ANCHOR < JSON",
    arity: [1, 1],
    summary: "process element",
    details: 'Reads the command as JSON on stdin: {"Env", "Dir", "Path", "Args", "Scrub"} (keys\n' +
      "case-insensitive; Env absent or null inherits the server's environment; Path is used\n" +
      "as given, no $PATH search). An exec failure prints `exec error: …` and exits 1.\n" +
      "Fixes: wait, exit status and --scrub do not depend on stdin or output; scrub kills\n" +
      "the process group; a server that stops ends its processes.",
    flags: { scrub: { type: "boolean", help: "remove the element once the process exits" } },
    client: true,
    load: client("mkproc"),
  },
  signal: {
    args: "SIGNAL PROC",
    arity: [2, 2],
    summary: "send a signal, name first: signal TERM /X…/p",
    details: "Names case-insensitive, with or without SIG (TERM, sigkill, HUP, …). The signal\n" +
      "reaches the process's whole group.",
    flags: {},
    client: true,
    load: client("signal"),
  },
  wait: {
    args: "[-x] PROC",
    arity: [1, 1],
    summary: "wait for exit, print the same JSON as peek",
    details: "Fix: returns as soon as the process has exited, whether or not anyone closed its\n" +
      "stdin or read its output. Waits as long as it takes unless --timeout is given.\n" +
      "With -x (--exit) the command exits with the process's exit status (a signal n is\n" +
      "128+n, a process that never started 127); without it, 0 as the original did.",
    flags: { exit: EXIT_FLAG, json: JSON_FLAG },
    client: true,
    load: client("wait"),
  },
  waitall: {
    args: "[-x] < anchors, one a line",
    arity: [0, 0],
    summary: "wait for all",
    details: "With -x (--exit) the command exits with the highest exit status of the processes\n" +
      "(as wait -x counts them); without it, 0 as the original did.",
    flags: { exit: EXIT_FLAG },
    client: true,
    load: client("waitall"),
  },
  stdin: {
    args: "PROC",
    arity: [1, 1],
    summary: "copy our stdin to the process's stdin, then close it",
    flags: {},
    client: true,
    load: client("stdin"),
  },
  stdout: {
    args: "PROC",
    arity: [1, 1],
    summary: "copy the process's stdout to our stdout",
    details: "Fix: output arrives as it is written (not in 32 KB chunks) and is kept after the\n" +
      "process exits (start --output-bound per stream); any number of readers may read,\n" +
      "each from the oldest retained byte, and a reader that dies loses nothing for the\n" +
      "next. If bytes were dropped before this read (nobody was reading), stderr says so.",
    flags: {},
    client: true,
    load: client("stdout"),
  },
  stderr: {
    args: "PROC",
    arity: [1, 1],
    summary: "copy the process's stderr to our stdout",
    details: "Same rules as stdout (fix: delivered as written, retained, many readers).",
    flags: {},
    client: true,
    load: client("stderr"),
  },
  run: {
    args: "[SERVER…|/] [flags] -- PATH [ARGS…]",
    arity: [1, Number.MAX_SAFE_INTEGER],
    summary: "run a command on every server (or the ones named) at once; exit: the highest status",
    details:
      "Starts PATH ARGS… under /X…/run/<random> on each selected server (default and /: every\n" +
      "member; /X…: that server), prints their stdout and stderr live, each line prefixed\n" +
      "with the server, and scrubs what it started. Exits 0 when every process exited 0, else\n" +
      "with the highest exit status (signal n: 128+n; a server that could not run it: 255),\n" +
      "and prints one line per failed server on stderr. --timeout stops what still runs\n" +
      "(TERM, then KILL 2s later), as Ctrl-C does. Without --stdin the processes' stdin is\n" +
      "closed; with it, our stdin is read to its end and sent to every process. Put -- before\n" +
      "the command when it has flags of its own.",
    flags: {
      "no-prefix": { type: "boolean", help: "print output lines without the server's path" },
      stdin: { type: "boolean", help: "send our stdin to every process" },
      parallel: { type: "string", value: "N", help: "start on at most N servers at once" },
      json: {
        type: "boolean",
        help: "print one JSON result per server (server, path, exit, signal, status, error)",
      },
      capture: { type: "boolean", help: "with --json: include each server's stdout and stderr" },
    },
    client: true,
    load: async () => (await import("./run_commands.ts")).runCommand,
  },
  help: {
    args: "[COMMAND]",
    arity: [0, 1],
    summary: "help",
    flags: {},
    client: false,
    load: () => Promise.resolve(runHelp),
  },
};

/**
 * Every flag a command accepts.
 *
 * @param c the command
 * @returns its flags, client flags and -h
 */
export function flagsOf(c: Command): Record<string, FlagSpec> {
  return { ...(c.client ? CLIENT_FLAGS : {}), ...c.flags, ...HELP_FLAG };
}

function flagLine(name: string, f: FlagSpec): string {
  const left = `  ${f.short ? `-${f.short}, ` : "    "}--${name}${f.value ? ` ${f.value}` : ""}`;
  return `${left.padEnd(34)} ${f.help}`;
}

/**
 * Help text: the command list, or one command's usage.
 *
 * @param name a command, or none for the list
 * @returns the text
 */
export function helpText(name?: string): string {
  const c = name ? COMMANDS[name] : undefined;
  if (!c) {
    const lines = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`);
    return [
      "circuit: cluster orchestration: processes, channels, DNS and containers on every host",
      "",
      "usage: circuit COMMAND [flags] [arguments]",
      "",
      "commands:",
      ...lines,
      "",
      "Client commands dial -d URL, else the URL in the file named by $CIRCUIT, else",
      "--discover / $CIRCUIT_DISCOVER (fix: $CIRCUIT works even when a discover default is",
      "set). Every dial times out (fix: the original hung forever); blocking commands wait",
      "unless --timeout is given. Errors are one line on stderr and exit 1. Flags take one",
      "or two dashes. `circuit help COMMAND` shows a command's flags; `circuit version`",
      "(or --version) prints the release.",
    ].join("\n") + "\n";
  }
  const flags = Object.entries(flagsOf(c)).map(([n, f]) => flagLine(n, f));
  return [
    usageLine(name!, c),
    "",
    c.summary,
    ...(c.details ? ["", c.details] : []),
    "",
    "flags:",
    ...flags,
  ].join("\n") + "\n";
}

/**
 * Print help to stdout.
 *
 * @param name a command, or none
 * @returns exit code 0
 */
export function printHelp(name?: string): number {
  Deno.stdout.writeSync(new TextEncoder().encode(helpText(name)));
  return 0;
}

/** Help of `circuit version`, which is not in the table (its list is the contract's). */
const VERSION_HELP = "usage: circuit version\n\n" +
  "print `circuit VERSION (deno DENO_VERSION, OS/ARCH)`; also --version and -version\n";

/** `circuit help [COMMAND]`: the list, or one command's usage. */
function runHelp([name]: string[]): Promise<number> {
  if (name === "version") {
    Deno.stdout.writeSync(new TextEncoder().encode(VERSION_HELP));
    return Promise.resolve(0);
  }
  if (name !== undefined && !Object.hasOwn(COMMANDS, name)) {
    throw new UsageError(`unknown command "${name}"; see circuit help`);
  }
  return Promise.resolve(printHelp(name));
}
