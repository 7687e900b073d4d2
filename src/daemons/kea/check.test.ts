// Runs the REAL kea-dhcp4 and kea-ctrl-agent (Debian bookworm's 2.2.0 here): `-t`, and the
// scratch server in a private network namespace (needs root for unshare -n, as in CI).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { scratchDirs } from "../../testing/support.js";
import { localHostSession } from "../../apply/local-session.js";
import { localHostIO } from "../../exec/host-io.js";
import { localRunner } from "../../exec/runner.js";
import type { RenderedFile } from "../../render/types.js";
import { checkKeaFiles } from "./check.js";
import { parseKeaConfigText, stableStringify } from "./config-text.js";
import { renderKeaCluster } from "./render.js";
import { loadExample } from "./test-fixtures.js";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const workDir = scratchDirs("kea-check-");

const { cluster, hosts } = await loadExample();
const files = renderKeaCluster(cluster, hosts);
const filesOf = (host: string) => files.filter((f) => f.host === host);

/** server1's kea-dhcp4 config with its HA relationship edited, as a host might hand it to us. */
function editedDhcp4(edit: (ha: Json) => void): RenderedFile {
  const original = filesOf("kea-server1")[0]!;
  const config = parseKeaConfigText(original.content) as Json;
  const ha = config.Dhcp4["hooks-libraries"].find((h: Json) => h.library.endsWith("libdhcp_ha.so")).parameters["high-availability"][0];
  edit(ha);
  return { ...original, content: stableStringify(config) };
}

describe("checkKeaFiles on the example's rendered files (real Kea 2.2)", () => {
  it.each(["kea-server1", "kea-server2", "kea-server3"])("%s: kea-dhcp4 -t, kea-ctrl-agent -t, lint and the scratch server all pass", async (host) => {
    const dir = await workDir();
    const result = await checkKeaFiles(filesOf(host), localHostIO, dir);
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.tool).toBe("kea-dhcp4 -t + scratch kea-dhcp4 (unshare -n) + lint + kea-ctrl-agent -t");
    // The scratch server really loaded the HA hook as this peer, and the agent check really ran.
    const peer = `server${host.slice(-1)}`;
    expect(result.output).toContain("HA_CONFIGURATION_SUCCESSFUL");
    expect(result.output).toMatch(new RegExp(`HA_LOCAL_DHCP_DISABLE local DHCP service is disabled while the ${peer} is in the WAITING state`));
    expect(result.output).toContain("DHCP4_STARTED");
    expect(result.output).toContain("Configuration check successful");
    // The scratch run kept its socket and PID file in the work dir, not in the live server's /run/kea.
    expect(result.output).toContain(`unix domain socket bound to ${dir}/kea4-scratch-ctrl-socket`);
  });
});

describe("Micetro's model with a real primary config as the base", () => {
  it("Debian's shipped kea-dhcp4.conf (comments, classes, reservations) on the primary renders into configs every check accepts", async () => {
    const text = readFileSync(new URL("testdata/debian-bookworm-kea-dhcp4.conf", import.meta.url), "utf8");
    const base = (parseKeaConfigText(text, "kea-server1:/etc/kea/kea-dhcp4.conf") as Json).Dhcp4;
    const rendered = renderKeaCluster(cluster, hosts, { baseDhcp4: base }).filter((f) => f.host === "kea-server3");
    const dhcp4 = (parseKeaConfigText(rendered[0]!.content) as Json).Dhcp4;
    expect(dhcp4["client-classes"][0].name).toBe("voip");
    expect(dhcp4.subnet4[0].reservations).toHaveLength(6);
    const result = await checkKeaFiles(rendered, localHostSession("kea-server3"), await workDir());
    expect(result.problems).toEqual([]);
    expect(result.output).toContain("HA_CONFIGURATION_SUCCESSFUL");
  });
});

describe("checkKeaFiles over a HostSession stops the scratch server once the log decides", () => {
  it("passes the example in well under the 3 s time limit", async () => {
    const dir = await workDir();
    const started = Date.now();
    const result = await checkKeaFiles(filesOf("kea-server2"), localHostSession("kea-server2"), dir);
    const ms = Date.now() - started;
    expect(result.problems).toEqual([]);
    expect(result.output).toContain("DHCP4_STARTED");
    expect(ms).toBeLessThan(2500);
    // Stopping the stream ended the scratch server too (timeout passes SIGTERM on), nothing lingers.
    await new Promise((r) => setTimeout(r, 300));
    const ps = await localRunner.run(["ps", "-eo", "args"]);
    expect(ps.stdout.split("\n").filter((l) => l.includes(dir))).toEqual([]);
  });

  it("still fails a broken HA section with Kea's reason", async () => {
    const result = await checkKeaFiles([editedDhcp4((ha) => (ha.mode = "hot-standby"))], localHostSession("kea-server1"), await workDir());
    expect(result.problems).toContainEqual("/etc/kea/kea-dhcp4.conf on kea-server1: Kea's HA hook refused the config: secondary servers not allowed in the hot standby configuration");
  });
});

describe("the key table: kea-dhcp4 -t passes these broken HA sections, the scratch server does not", () => {
  const table: [string, (ha: Json) => void, string, string][] = [
    [
      "a host name in a peer URL",
      (ha) => (ha.peers[1].url = "http://kea2.example.org:8000/"),
      "bad url 'http://kea2.example.org:8000/': Failed to convert string to address 'kea2.example.org'",
      'peers[1].url: "http://kea2.example.org:8000/" has the host name kea2.example.org',
    ],
    [
      "a secondary in hot-standby",
      (ha) => (ha.mode = "hot-standby"),
      "secondary servers not allowed in the hot standby configuration",
      'peers[1].role: "secondary" is not allowed in hot-standby',
    ],
    [
      "heartbeat-delay 70000",
      (ha) => {
        ha["heartbeat-delay"] = 70000;
        ha["max-response-delay"] = 80000;
      },
      "'heartbeat-delay' must not be greater than 65535",
      "heartbeat-delay: 70000 exceeds 65535",
    ],
  ];

  it.each(table)("%s", async (_name, edit, keaSays, lintSays) => {
    const file = editedDhcp4(edit);
    const dir = await workDir();
    // Kea's own -t, run directly: exit 0, i.e. it does not notice.
    await localHostIO.writeFile(join(dir, "direct.conf"), file.content, 0o644);
    const direct = await localRunner.run(["kea-dhcp4", "-t", join(dir, "direct.conf")]);
    expect(direct.code).toBe(0);
    // The full check: the scratch server's HA_CONFIGURATION_FAILED with Kea's reason, plus our lint.
    const result = await checkKeaFiles([file], localHostIO, dir);
    expect(result.ok).toBe(false);
    expect(result.output).toContain("HA_CONFIGURATION_FAILED");
    expect(result.problems).toContainEqual(`/etc/kea/kea-dhcp4.conf on kea-server1: Kea's HA hook refused the config: ${keaSays}${keaSays.includes("address") ? ": Invalid argument for server server2" : ""}`);
    expect(result.problems.some((p) => p.includes(lintSays))).toBe(true);
    expect(result.problems.some((p) => p.includes("kea-dhcp4 -t refused"))).toBe(false);
  });
});

describe("checkKeaFiles reports the other checkers' refusals (table)", () => {
  const server1 = filesOf("kea-server1");
  const agent = server1[1]!;
  const table: [string, RenderedFile[], string][] = [
    [
      "kea-dhcp4 -t refuses a bad value",
      [{ ...server1[0]!, content: server1[0]!.content.replace('"valid-lifetime": 3600', '"valid-lifetime": "an hour"') }],
      "/etc/kea/kea-dhcp4.conf on kea-server1: kea-dhcp4 -t refused it:\nSyntax check failed with: /etc/kea/kea-dhcp4.conf (candidate):",
    ],
    [
      "kea-ctrl-agent -t refuses a bad port",
      [{ ...agent, content: agent.content.replace('"http-port": 8000', '"http-port": "eight thousand"') }],
      "/etc/kea/kea-ctrl-agent.conf on kea-server1: kea-ctrl-agent -t refused it:",
    ],
    [
      "the agent forwards to another socket than kea-dhcp4 opens",
      [server1[0]!, { ...agent, content: agent.content.replace('"socket-name": "/run/kea/kea4-ctrl-socket"', '"socket-name": "/run/kea/other"') }],
      '/etc/kea/kea-ctrl-agent.conf: Control-agent.control-sockets.dhcp4.socket-name is "/run/kea/other" but kea-dhcp4\'s control-socket is "/run/kea/kea4-ctrl-socket"',
    ],
    [
      "lease_cmds missing (Kea 2.2 starts anyway; lint catches it)",
      [editedDhcp4(() => undefined)].map((f) => ({ ...f, content: f.content.replace(/\{\s*"library": "[^"]*libdhcp_lease_cmds\.so"\s*\},/, "") })),
      "libdhcp_ha.so is loaded without libdhcp_lease_cmds.so",
    ],
  ];
  it.each(table)("%s", async (_name, candidate, message) => {
    const result = await checkKeaFiles(candidate, localHostIO, await workDir());
    expect(result.ok).toBe(false);
    expect(result.problems.some((p) => p.includes(message))).toBe(true);
  });

  it("the lease_cmds row really passes the scratch server, so only lint stands between it and the host", async () => {
    const file = table[3]![1][0]!;
    expect(file.content).not.toContain("libdhcp_lease_cmds.so");
    const result = await checkKeaFiles([file], localHostIO, await workDir());
    expect(result.output).toContain("DHCP4_STARTED");
    expect(result.problems).toHaveLength(1);
  });
});
