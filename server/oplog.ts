/**
 * The operation log: every state-changing operation, in execution order, as JSON lines
 * `{"time", "caller", "op", "path", "outcome"}`. Written synchronously so a crash loses
 * nothing that was acknowledged.
 *
 * @module
 */

/** One operation log line. */
export interface OpRecord {
  /** RFC 3339 time the operation finished. */
  time: string;
  /** Who asked: `client HOST:PORT`, or the first server's note of it. */
  caller: string;
  /** Operation: `make proc`, `scrub`, `join`, … */
  op: string;
  /** Absolute path. */
  path: string;
  /** `ok`, or `error: <message>`. */
  outcome: string;
}

/** Appends operation records to a file. */
export class OpLog {
  #file: Deno.FsFile;
  #enc = new TextEncoder();

  /** @param path the file, created or appended to */
  constructor(path: string) {
    this.#file = Deno.openSync(path, { create: true, append: true });
  }

  /**
   * Append one record.
   *
   * @param r the record without its time
   */
  write(r: Omit<OpRecord, "time">): void {
    const line = JSON.stringify({ time: new Date().toISOString(), ...r }) + "\n";
    const bytes = this.#enc.encode(line);
    let off = 0;
    while (off < bytes.length) off += this.#file.writeSync(bytes.subarray(off));
  }

  /** Close the file. */
  close(): void {
    try {
      this.#file.close();
    } catch { /* closed */ }
  }
}
