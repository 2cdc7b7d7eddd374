/**
 * Docker elements.
 *
 * @module
 */

export { containerName, DockerElement, dockerKind, engineFor, removeLeftovers } from "./docker.ts";
export { checkDocker, Engine, engineAddress } from "./engine.ts";
export { type DockerRun, parseRun } from "./spec.ts";
