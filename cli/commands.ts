/**
 * The command table: every subcommand of the contract with its usage, help and flags.
 * Command bodies live in other modules and are imported only when run, so a cold
 * `circuit ls` loads neither the server nor the help of other commands.
 *
 * @module
 */

import { type FlagSpec, type Parsed, UsageError } from "./args.ts";

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

const HELP_FLAG: Record<string, FlagSpec> = {
  help: { type: "boolean", short: "h", help: "show this help" },
};

/** Runs a parsed command; returns the exit code. */
export type Runner = (p: Parsed) => Promise<number>;

/** One subcommand. */
export interface Command {
  /** Arguments, for the usage line. */
  args: string;
  /** One-line summary. */
  summary: string;
  /** Extra help paragraphs. */
  details?: string;
  /** Flags it takes (client flags are added for client commands). */
  flags: Record<string, FlagSpec>;
  /** Whether it talks to a server (takes -d/--discover/--hmac/--timeout). */
  client: boolean;
  /** Loads and runs the body. */
  run(): Promise<Runner>;
}

const client = (name: string) => async (): Promise<Runner> => {
  const m = await import("./client_commands.ts");
  return m.CLIENT_COMMANDS[name] ?? m.PROC_COMMANDS[name];
};

const chan = (name: string) => async (): Promise<Runner> =>
  (await import("./chan_commands.ts")).CHAN_COMMANDS[name];

const dns = (name: string) => async (): Promise<Runner> =>
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
      join: { type: "string", short: "j", value: "URL", help: "join the cluster of this member" },
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
    },
    client: false,
    run: async () => (await import("./start.ts")).runStart,
  },
  keygen: {
    args: "",
    summary: "print a new key: base64 of 64 random bytes",
    flags: {},
    client: false,
    run: async () => {
      const { runKeygen } = await import("./keygen.ts");
      return (p) => {
        if (p.positionals.length > 1) throw new UsageError("keygen takes no arguments");
        return runKeygen();
      };
    },
  },
  ls: {
    args: "[-l] [--depth] GLOB",
    summary: "list anchors: / servers, /X… children, /X…/... every descendant, /... the cluster",
    details: "Paths print absolute, sorted by name, parents before children (--depth: children\n" +
      "first). -l prints the kind of each: server chan proc dns docker @join @leave, or ·.\n" +
      "Fix: printed paths are absolute (the original printed them relative).",
    flags: {
      long: { type: "boolean", short: "l", help: "print each anchor's kind" },
      depth: { type: "boolean", help: "children before parents" },
    },
    client: true,
    run: client("ls"),
  },
  peek: {
    args: "ANCHOR",
    summary: "print element state as JSON (null for an empty anchor)",
    flags: {},
    client: true,
    run: client("peek"),
  },
  scrub: {
    args: "ANCHOR",
    summary: "abort and remove the element (a process is killed)",
    details: "Fix: scrub of a process kills its whole process group (TERM, then KILL after\n" +
      "start --scrub-grace); the original left it running. Scrub of an empty anchor does nothing.",
    flags: {},
    client: true,
    run: client("scrub"),
  },
  stk: {
    args: "SERVER",
    summary: "print a diagnostic dump of that server",
    flags: {},
    client: true,
    run: client("stk"),
  },
  join: {
    args: "SERVER URL",
    summary: "make that server join the cluster of URL (merge)",
    flags: {},
    client: true,
    run: client("join"),
  },
  suicide: {
    args: "SERVER",
    summary: "stop that server cleanly",
    details: "Fix: the server stops cleanly (announces its leave, ends its processes, exits 0);\n" +
      "the original printed a stack trace instead.",
    flags: {},
    client: true,
    run: client("suicide"),
  },
  "mk@join": {
    args: "ANCHOR",
    summary: "subscription element of server join events",
    flags: {},
    client: true,
    run: chan("mk@join"),
  },
  "mk@leave": {
    args: "ANCHOR",
    summary: "subscription element of server leave events",
    flags: {},
    client: true,
    run: chan("mk@leave"),
  },
  mkchan: {
    args: "ANCHOR CAP",
    summary: "channel with buffer capacity CAP ≥ 0",
    flags: {},
    client: true,
    run: chan("mkchan"),
  },
  send: {
    args: "CHAN",
    summary: "send stdin (whole, to EOF) as one message",
    details:
      "The message is stdin to EOF, delivered whole or not at all. Fix: a sender that dies\n" +
      "mid-message leaves nothing behind. Blocks while the buffer is full (CAP 0: until a\n" +
      "receiver takes it) unless --timeout is given.",
    flags: {},
    client: true,
    run: chan("send"),
  },
  recv: {
    args: "CHAN|SUBSCRIPTION",
    summary: "receive one message to stdout; one event and a newline",
    details: "Prints one message (raw bytes), or one event and a newline. Fix: a recv that dies\n" +
      "while blocked or mid-message consumes nothing; the next message goes to a live\n" +
      "receiver.",
    flags: {},
    client: true,
    run: chan("recv"),
  },
  close: {
    args: "CHAN",
    summary: "close after buffered messages are received",
    flags: {},
    client: true,
    run: chan("close"),
  },
  mkdns: {
    args: "ANCHOR [ADDR]",
    summary: "DNS server element on ADDR (default: any interface, free port)",
    details: "ADDR is HOST:PORT, :PORT or HOST. Without ADDR it binds every interface on a port\n" +
      "free for both UDP and TCP, and peek shows the server's advertised host. Fix: answers\n" +
      "by query type, NXDOMAIN for unknown names, case-insensitive names, UDP and TCP, EDNS0\n" +
      "and truncation (TC) of large UDP answers; no packet and no scrub can crash the server.",
    flags: {},
    client: true,
    run: dns("mkdns"),
  },
  set: {
    args: 'DNS "RR"',
    summary: "add a resource record in zone-file syntax",
    details: 'RR is "NAME [TTL] [CLASS] TYPE DATA", e.g. "miek.nl. 3600 IN MX 10 mx.miek.nl.".\n' +
      "Types: A AAAA CNAME MX NS PTR SOA SRV TXT. A relative name is completed with the root\n" +
      "(foo is foo.); TTL defaults to 3600, class to IN. A record that does not parse is an\n" +
      "error naming the problem. A CNAME cannot share its name with other records.",
    flags: {},
    client: true,
    run: dns("set"),
  },
  unset: {
    args: "DNS NAME",
    summary: "remove all records of NAME",
    details: "NAME is matched case-insensitively, with or without the trailing dot.",
    flags: {},
    client: true,
    run: dns("unset"),
  },
  mkdkr: {
    args: "[--scrub] ANCHOR < JSON",
    summary: "Docker container element (needs start --docker)",
    details: "Fix: stdin reaches the container and scrub stops and removes it.",
    flags: { scrub: { type: "boolean", help: "remove the element once the container exits" } },
    client: true,
    run: async () => (await import("./docker_commands.ts")).DOCKER_COMMANDS.mkdkr,
  },
  mkproc: {
    args: "[--scrub] ANCHOR < JSON",
    summary: "process element",
    details: 'Reads the command as JSON on stdin: {"Env", "Dir", "Path", "Args", "Scrub"} (keys\n' +
      "case-insensitive; Env absent or null inherits the server's environment; Path is used\n" +
      "as given, no $PATH search). An exec failure prints `exec error: …` and exits 1.\n" +
      "Fixes: wait, exit status and --scrub do not depend on stdin or output; scrub kills\n" +
      "the process group; a server that stops ends its processes.",
    flags: { scrub: { type: "boolean", help: "remove the element once the process exits" } },
    client: true,
    run: client("mkproc"),
  },
  signal: {
    args: "SIGNAL PROC",
    summary: "send a signal, name first: signal TERM /X…/p",
    details: "Names case-insensitive, with or without SIG (TERM, sigkill, HUP, …). The signal\n" +
      "reaches the process's whole group.",
    flags: {},
    client: true,
    run: client("signal"),
  },
  wait: {
    args: "PROC",
    summary: "wait for exit, print the same JSON as peek",
    details: "Fix: returns as soon as the process has exited, whether or not anyone closed its\n" +
      "stdin or read its output. Waits as long as it takes unless --timeout is given.",
    flags: {},
    client: true,
    run: client("wait"),
  },
  waitall: {
    args: "< anchors, one a line",
    summary: "wait for all",
    flags: {},
    client: true,
    run: client("waitall"),
  },
  stdin: {
    args: "PROC",
    summary: "copy our stdin to the process's stdin, then close it",
    flags: {},
    client: true,
    run: client("stdin"),
  },
  stdout: {
    args: "PROC",
    summary: "copy the process's stdout to our stdout",
    details: "Fix: output arrives as it is written (not in 32 KB chunks) and is kept after the\n" +
      "process exits (start --output-bound per stream); any number of readers may read,\n" +
      "each from the oldest retained byte, and a reader that dies loses nothing for the\n" +
      "next. If bytes were dropped before this read (nobody was reading), stderr says so.",
    flags: {},
    client: true,
    run: client("stdout"),
  },
  stderr: {
    args: "PROC",
    summary: "copy the process's stderr to our stdout",
    details: "Same rules as stdout (fix: delivered as written, retained, many readers).",
    flags: {},
    client: true,
    run: client("stderr"),
  },
  help: {
    args: "[COMMAND]",
    summary: "help",
    flags: {},
    client: false,
    run: () =>
      Promise.resolve((p) => {
        const [, name, extra] = p.positionals;
        if (extra !== undefined) throw new UsageError("usage: circuit help [COMMAND]");
        if (name !== undefined && !Object.hasOwn(COMMANDS, name)) {
          throw new UsageError(`unknown command "${name}"; see circuit help`);
        }
        return Promise.resolve(printHelp(name));
      }),
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
      "or two dashes. `circuit help COMMAND` shows a command's flags.",
    ].join("\n") + "\n";
  }
  const flags = Object.entries(flagsOf(c)).map(([n, f]) => flagLine(n, f));
  return [
    `usage: circuit ${name}${c.args ? " " + c.args : ""}`,
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
