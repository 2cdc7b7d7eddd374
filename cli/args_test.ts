import { normalizeArgs, parse, UsageError } from "./args.ts";
import { assert, assertEquals, assertThrows } from "../tests/_assert.ts";

const SPECS = {
  dial: { type: "string" as const, short: "d", help: "" },
  long: { type: "boolean" as const, short: "l", help: "" },
  depth: { type: "boolean" as const, help: "" },
};

Deno.test("parse() accepts long flags with one or two dashes and =", () => {
  for (
    const argv of [["-dial", "U", "/"], ["--dial", "U", "/"], ["--dial=U", "/"], ["-dial=U", "/"], [
      "-d",
      "U",
      "/",
    ]]
  ) {
    const p = parse(argv, SPECS);
    assertEquals(p.flags.dial, "U");
    assertEquals(p.positionals, ["/"]);
  }
});

Deno.test("parse() takes flags after positionals", () => {
  const p = parse(["/X", "-l", "-depth"], SPECS);
  assertEquals([p.flags.long, p.flags.depth, p.positionals], [true, true, ["/X"]]);
});

Deno.test("parse() keeps negative numbers as positionals", () => {
  assertEquals(parse(["/X/c", "-1"], SPECS).positionals, ["/X/c", "-1"]);
  assertEquals(normalizeArgs(["-5", "-x", "-xy"]), ["\u0000-5", "-x", "--xy"]);
});

Deno.test("parse() rejects an unknown flag with one line", () => {
  try {
    parse(["-bogus"], SPECS);
    throw new Error("no error");
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    assertEquals(err.message, "flag provided but not defined: -bogus");
  }
});

Deno.test("parse() rejects a string flag without a value", () => {
  try {
    parse(["-dial"], SPECS);
    throw new Error("no error");
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    if (!err.message.startsWith("flag needs an argument")) throw err;
  }
});

Deno.test("parse() reads -short=VALUE and on/off flags given a value, as Go's flag package", () => {
  assertEquals(parse(["-d=circuit://h:1/2/Q3", "/"], SPECS).flags.dial, "circuit://h:1/2/Q3");
  assertEquals(parse(["-d=a=b", "/"], SPECS).flags.dial, "a=b");
  for (const v of ["true", "1", "t", "T", "TRUE", "True"]) {
    assertEquals(parse([`-l=${v}`, "/"], SPECS).flags.long, true);
    assertEquals(parse([`--depth=${v}`], SPECS).flags.depth, true);
  }
  for (const v of ["false", "0", "f", "F", "FALSE", "False"]) {
    const p = parse([`-long=${v}`, "/"], SPECS);
    assertEquals([p.flags.long, p.positionals], [false, ["/"]]);
  }
  // The last occurrence wins.
  assertEquals(parse(["-l", "-l=false", "/"], SPECS).flags.long, false);
  assertEquals(parse(["-l=false", "-l", "/"], SPECS).flags.long, true);
  // A flag's value that looks like a flag is not undone: it stays an ambiguous value (an
  // error), rather than the string flag silently taking the next argument.
  let ambiguous: unknown;
  try {
    parse(["-d", "-l", "-l=false", "/p"], SPECS);
  } catch (e) {
    ambiguous = e;
  }
  if (!(ambiguous instanceof UsageError)) throw new Error(`expected a UsageError: ${ambiguous}`);
  // After --, nothing is a flag.
  assertEquals(parse(["--", "-l=true"], SPECS).positionals, ["-l=true"]);
  let err: unknown;
  try {
    parse(["-l=maybe", "/"], SPECS);
  } catch (e) {
    err = e;
  }
  if (!(err instanceof UsageError)) throw new Error(`expected a UsageError, got ${err}`);
  assertEquals(err.message, 'invalid boolean value "maybe" for -l: parse error');
});

Deno.test("run: -- splits the selector from the command; without it, leading server paths select", async () => {
  const { splitRunArgs } = await import("./run_commands.ts");
  const { parseSelector } = await import("../client/run.ts");
  const x = "/X0123456789abcdef";
  const p = parse(["run", x, "--json", "--", "/bin/ls", "-l", "--all"], {
    json: { type: "boolean", help: "" },
  });
  assertEquals(p.rest, ["/bin/ls", "-l", "--all"]);
  assertEquals(splitRunArgs(p.positionals.slice(1), p.rest), {
    selector: [x],
    command: ["/bin/ls", "-l", "--all"],
  });
  assertEquals(splitRunArgs([x, "/", "/bin/true"], undefined), {
    selector: [x, "/"],
    command: ["/bin/true"],
  });
  assertEquals(parse(["run", "/bin/true"], {}).rest, undefined);
  const usage = assertThrows(() => splitRunArgs([x], undefined));
  assert(usage instanceof UsageError && usage.message.startsWith("usage: circuit run"));
  assertEquals(parseSelector([]), [{ all: true }]);
  assertEquals(parseSelector(["/", `${x}/`]), [{ all: true }, { server: x }]);
  assert(assertThrows(() => parseSelector(["web"]), "bad request").message.includes("neither"));
  assertThrows(() => parseSelector([`${x}/a`]), "bad request");
});

Deno.test("parse() suggests the nearest flag on the same line", () => {
  for (
    const [argv, line] of [
      [["-dail", "U"], "flag provided but not defined: -dail (did you mean --dial?)"],
      [["--lnog"], "flag provided but not defined: -lnog (did you mean --long?)"],
      [["--dep"], "flag provided but not defined: -dep (did you mean --depth?)"],
      [["-q"], "flag provided but not defined: -q"],
    ] as const
  ) {
    const err = assertThrows(() => parse([...argv], SPECS));
    assert(err instanceof UsageError);
    assertEquals(err.message, line);
  }
});
