/**
 * `circuit`: the daemon (`circuit start`) and the command-line client in one program.
 * Every client command checks its arguments, reads its input, connects, calls the client
 * library, and prints.
 *
 * @module
 */

import { parse, UsageError } from "./cli/args.ts";
import { argumentsOf } from "./cli/command.ts";
import { COMMANDS, flagsOf, printHelp } from "./cli/commands.ts";
import { suggest } from "./cli/suggest.ts";
import { printVersion, VERSION_WORDS } from "./cli/version.ts";

/**
 * Run the command line.
 *
 * @param argv arguments after the program name
 * @returns the exit code
 * @throws {UsageError} for a command-line mistake; errors of the command
 */
export async function main(argv: string[]): Promise<number> {
  const name = argv[0];
  if (name === undefined || /^--?h(elp)?$/.test(name)) return printHelp();
  if (VERSION_WORDS.includes(name)) {
    if (argv.length > 1) throw new UsageError("usage: circuit version");
    return printVersion();
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    if (name.startsWith("-")) {
      throw new UsageError(`the command comes first: circuit COMMAND [flags] [arguments]`);
    }
    const near = suggest(name, [...Object.keys(COMMANDS), "version"]);
    throw new UsageError(
      `unknown command "${name}"; ${near ? `did you mean "${near}"? ` : ""}see circuit help`,
    );
  }
  const parsed = parse(argv, flagsOf(command));
  if (parsed.flags.help) return printHelp(name);
  const args = argumentsOf(name, command, parsed);
  if (!command.client) return await (await command.load())(args, parsed);
  const action = await (await command.load())(args, parsed);
  const { withSession } = await import("./cli/session.ts");
  return await withSession(parsed, action);
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    try {
      Deno.stderr.writeSync(new TextEncoder().encode(msg.split("\n")[0] + "\n"));
    } catch { /* stderr gone */ }
    code = 1;
  }
  Deno.exit(code);
}
