import { assertEquals } from "../tests/_assert.ts";
import { MEMBER_LOG_LINES, MemberEventLog, type MembershipEvent } from "./membership.ts";

const member = (i: number) => ({ id: i.toString(16).padStart(16, "0"), url: "u", joined: "j" });

Deno.test("membership log lines are bounded per window, the rest summed up", () => {
  const lines: string[] = [];
  const log = new MemberEventLog((l) => lines.push(l));
  for (let i = 0; i < 1000; i++) {
    const e: MembershipEvent = i % 2
      ? { type: "join", member: member(i) }
      : { type: "leave", member: member(i), reason: "failed" };
    log.log(e);
  }
  log.close();
  const { joined, departed } = MEMBER_LOG_LINES;
  assertEquals(lines.filter((l) => / joined$/.test(l)).length, joined, "join lines");
  assertEquals(lines.filter((l) => / failed$/.test(l)).length, departed, "departure lines");
  assertEquals(lines.slice(-2), [
    `… and ${500 - joined} more members joined in the last 10 s`,
    `… and ${500 - departed} more members failed or left in the last 10 s`,
  ]);
});
