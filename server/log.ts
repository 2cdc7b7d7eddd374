/**
 * Server logging through @logtape/logtape: one text line per record to stderr and to
 * `server.log` in the var directory.
 *
 * @module
 */

import { configureSync, defaultTextFormatter, getLogger, type Logger } from "@logtape/logtape";
import type { LogLevel, LogRecord } from "@logtape/logtape";

/**
 * Configure logging for a server process.
 *
 * @param logFile path of the server log
 * @param level the lowest level written
 * @returns a function that closes the log file
 */
export function setupLogging(logFile: string, level: LogLevel = "info"): () => void {
  const enc = new TextEncoder();
  const file = Deno.openSync(logFile, { create: true, append: true });
  const write = (record: LogRecord) => {
    const bytes = enc.encode(defaultTextFormatter(record));
    try {
      Deno.stderr.writeSync(bytes);
    } catch { /* stderr gone */ }
    try {
      file.writeSync(bytes);
    } catch { /* file closed */ }
  };
  configureSync({
    reset: true,
    sinks: { main: write },
    loggers: [
      { category: ["circuit"], lowestLevel: level, sinks: ["main"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["main"] },
    ],
  });
  return () => {
    try {
      file.close();
    } catch { /* closed */ }
  };
}

/**
 * A logger for one server layer.
 *
 * @param layer `server`, `mesh`, `net`, …
 * @returns the logger
 */
export function logger(layer: string): Logger {
  return getLogger(["circuit", layer]);
}
