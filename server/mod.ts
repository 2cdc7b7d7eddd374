/**
 * The circuit daemon.
 *
 * ```ts ignore
 * import { startServer } from "./mod.ts";
 * const server = await startServer({ addr: "127.0.0.1:0" });
 * console.log(server.url);
 * await server.stop();
 * ```
 *
 * @module
 */

export { type RunningServer, type ServerOptions, startServer } from "./server.ts";
