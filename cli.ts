/**
 * `circuit`: the daemon (`circuit start`) and the command-line client in one program.
 * Every client command parses its arguments, calls the client library, and prints.
 *
 * @module
 */

import { parse, UsageError } from "./cli/args.ts";
import { COMMANDS, flagsOf, helpText, printHelp } from "./cli/commands.ts";

/**
 * Run the command line.
 *
 * @param argv arguments after the program name
 * @returns the exit code
 */
export async function main(argv: string[]): Promise<number> {
  const name = argv[0];
  if (name === undefined || /^--?h(elp)?$/.test(name)) return printHelp();
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    throw new UsageError(
      name.startsWith("-")
        ? `the command comes first: circuit COMMAND [flags] [arguments]`
        : `unknown command "${name}"; see circuit help`,
    );
  }
  const parsed = parse(argv, flagsOf(command));
  if (parsed.flags.help) {
    Deno.stdout.writeSync(new TextEncoder().encode(helpText(name)));
    return 0;
  }
  const run = await command.run();
  return await run(parsed);
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
