import type { Element } from "../elements/element.ts";
import { isHealthy, type MetricsSources, renderMetrics } from "./metrics.ts";
import { assert, assertEquals } from "../tests/_harness.ts";

function sources(over: Partial<MetricsSources> = {}): MetricsSources {
  const el = (kind: string, peek: unknown = {}) =>
    ({ kind, peek: () => peek }) as unknown as Element;
  return {
    describe: () => ({
      UptimeMs: 1500,
      Membership: {
        members: { alive: 2, suspect: 1 },
        refutations: 3,
        probes: { probes: 9, acked: 7, failed: 2 },
        packets: { sent: 5, received: 4, dropped: { forged: 1 } },
        queue: { depth: 0 },
      },
      Connections: [{ Role: "client" }, { Role: "peer" }, { Role: "client" }],
      Peers: [{}],
      Listener: { State: "ok", Accepted: 4 },
      InFlight: [],
      Spool: { MemoryBytes: 10 },
      OpLog: { Pending: 0, Lost: 0 },
      Memory: { rss: 100 },
    }),
    elements: () => [
      [["a"], el("proc", { Phase: "running" })],
      [["b"], el("proc", { Phase: "exited" })],
      [["c"], el('ch"an\\')],
    ],
    droppedLogLines: () => 6,
    live: () => true,
    ...over,
  };
}

Deno.test("metrics: every family has HELP and TYPE before its samples; labels are escaped", () => {
  const text = renderMetrics(sources());
  assert(text.endsWith("\n"));
  const declared = new Set<string>();
  for (const line of text.trimEnd().split("\n")) {
    const m = /^# TYPE (\S+) (gauge|counter)$/.exec(line);
    if (m) declared.add(m[1]);
    else if (!line.startsWith("# HELP ")) {
      const name = /^[a-z_]+/.exec(line)![0];
      assert(declared.has(name), `${name} declared first`);
    }
  }
  for (
    const want of [
      'circuit_members{state="suspect"} 1',
      "circuit_membership_refutations_total 3",
      "circuit_membership_probes_total 9",
      'circuit_membership_probe_results_total{outcome="failed"} 2',
      'circuit_connections{role="client"} 2',
      'circuit_elements{kind="ch\\"an\\\\"} 1',
      "circuit_processes_running 1",
      "circuit_log_lines_dropped_total 6",
      "circuit_uptime_seconds 1.5",
    ]
  ) assert(text.includes(`\n${want}\n`), want);
});

Deno.test("metrics: health needs live membership and a listener that accepts", () => {
  assertEquals(isHealthy(sources()), true);
  assertEquals(isHealthy(sources({ live: () => false })), false);
  const closed = sources();
  const d = closed.describe();
  closed.describe = () => ({ ...d, Listener: { State: "closed" } });
  assertEquals(isHealthy(closed), false);
  const failing = sources();
  failing.describe = () => ({ ...d, Listener: { State: "failing" } });
  assertEquals(isHealthy(failing), false, "a listener whose accepts keep failing is unhealthy");
});
