/**
 * Subprocess endpoint for cross-process throughput and the raw TCP round-trip floor.
 *
 * Usage: `deno run -A bench/_echo_server.ts [KEYFILE]`. Prints one JSON line
 * `{port, rawEchoPort, rawSourcePort, pid, id}` on stdout, then serves until SIGTERM.
 *
 * @module
 */

import { readKeyFile } from "../net/keys.ts";
import { listenEndpoint } from "./_endpoint.ts";

if (import.meta.main) {
  const key = Deno.args[0] ? await readKeyFile(Deno.args[0]) : undefined;
  const ep = listenEndpoint(key);
  const { port, rawEchoPort, rawSourcePort, pid, id } = ep;
  Deno.stdout.writeSync(
    new TextEncoder().encode(JSON.stringify({ port, rawEchoPort, rawSourcePort, pid, id }) + "\n"),
  );
  await new Promise<void>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(sig, resolve);
  });
  await ep.close();
  Deno.exit(0);
}
