/**
 * What a subcommand is: its entry in the command table and the shape of its body. The
 * table (`cli/commands.ts`) imports bodies only when they run; the bodies import this
 * module, never the table, so no module imports back up the chain.
 *
 * A client command runs in two steps: first its body checks its arguments and reads its
 * input (no server yet), then the action it returns runs on a connected session.
 *
 * @module
 */

import { type FlagSpec, type Parsed, UsageError } from "./args.ts";
import type { SessionAction } from "./session.ts";

export type { SessionAction } from "./session.ts";

/**
 * A client command's body: arguments and input first, then the action on a session.
 *
 * @param args the positionals after the command name, already counted
 * @param p all parsed flags
 * @returns the action to run once connected
 */
export type ClientBody = (args: string[], p: Parsed) => SessionAction | Promise<SessionAction>;

/**
 * A command that needs no server.
 *
 * @param args the positionals after the command name (counted when the command has an
 *   `arity`)
 * @param p all parsed flags
 * @returns the exit code
 */
export type LocalBody = (args: string[], p: Parsed) => Promise<number>;

/** What every subcommand's entry says about it. */
interface CommandInfo {
  /** Arguments, for the usage line (`usage: circuit NAME ARGS`). */
  args: string;
  /**
   * Fewest and most arguments; a count outside is an error that prints the usage line.
   * A local command without one checks its arguments itself.
   */
  arity?: readonly [min: number, max: number];
  /** One-line summary. */
  summary: string;
  /** Extra help paragraphs. */
  details?: string;
  /** Flags it takes (client flags are added for client commands). */
  flags: Record<string, FlagSpec>;
}

/** A command that talks to a server (takes -d/--discover/--hmac/--timeout). */
export interface ClientCommand extends CommandInfo {
  /** Talks to a server. */
  client: true;
  /** Fewest and most arguments. */
  arity: readonly [min: number, max: number];
  /** Loads the body. */
  load(): Promise<ClientBody>;
}

/** A command that runs without a server. */
export interface LocalCommand extends CommandInfo {
  /** Needs no server. */
  client: false;
  /** Loads the body. */
  load(): Promise<LocalBody>;
}

/** One subcommand. */
export type Command = ClientCommand | LocalCommand;

/**
 * The usage line of a command.
 *
 * @param name the command's name
 * @param c its entry
 * @returns `usage: circuit NAME ARGS`
 */
export function usageLine(name: string, c: Command): string {
  return `usage: circuit ${name}${c.args ? " " + c.args : ""}`;
}

/**
 * The arguments after the command name, counted against the command's arity.
 *
 * @param name the command's name
 * @param c its entry
 * @param p the parsed command line (positionals start with the name)
 * @returns the arguments
 * @throws {UsageError} the usage line, when the count is outside the arity
 */
export function argumentsOf(name: string, c: Command, p: Parsed): string[] {
  const args = p.positionals.slice(1);
  if (c.arity && (args.length < c.arity[0] || args.length > c.arity[1])) {
    throw new UsageError(usageLine(name, c));
  }
  return args;
}
