import { VERSION, versionLine } from "./version.ts";
import { assert, assertEquals } from "../tests/_assert.ts";

Deno.test("the version is deno.json's and the line names runtime and platform", async () => {
  const json = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assertEquals(VERSION, json.version);
  assert(/^\d+\.\d+\.\d+/.test(VERSION), VERSION);
  assertEquals(
    versionLine(),
    `circuit ${json.version} (deno ${Deno.version.deno}, ${Deno.build.os}/${Deno.build.arch})`,
  );
});
