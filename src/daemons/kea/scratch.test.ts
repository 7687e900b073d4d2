import { describe, expect, it } from "vitest";
import { interpretScratchRun, loadsHAHook, scratchServerArgv, toScratchConfig } from "./scratch.js";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const HOOKS = "/usr/lib/x86_64-linux-gnu/kea/hooks/";
const ha = { "this-server-name": "s1", mode: "hot-standby", peers: [] };
const live: Json = {
  Dhcp4: {
    "interfaces-config": { interfaces: ["eth0"], "dhcp-socket-type": "raw" },
    "control-socket": { "socket-type": "unix", "socket-name": "/run/kea/kea4-ctrl-socket" },
    "lease-database": { type: "memfile", name: "/var/lib/kea/kea-leases4.csv", "lfc-interval": 3600 },
    "hosts-database": { type: "mysql", name: "kea", host: "198.18.0.9" },
    "config-control": { "config-databases": [{ type: "mysql", name: "cb" }] },
    "dhcp-ddns": { "enable-updates": true, "server-ip": "127.0.0.1" },
    loggers: [{ name: "kea-dhcp4", output_options: [{ output: "/var/log/kea/kea-dhcp4.log" }], severity: "WARN" }],
    "hooks-libraries": [
      { library: `${HOOKS}libdhcp_legal_log.so`, parameters: { path: "/var/lib/kea/legal" } },
      { library: `${HOOKS}libdhcp_lease_cmds.so` },
      { library: `${HOOKS}libdhcp_ha.so`, parameters: { "high-availability": [ha] } },
    ],
    subnet4: [{ id: 1, subnet: "198.18.0.0/24", interface: "eth0" }],
    "shared-networks": [{ name: "n", interface: "eth1", subnet4: [{ id: 2, subnet: "198.18.1.0/24", interface: "eth1" }] }],
    "valid-lifetime": 600,
  },
  Logging: { loggers: [] },
};

describe("toScratchConfig", () => {
  const scratch = toScratchConfig(live, "/tmp/kea-check-x") as Json;
  const d = scratch.Dhcp4;

  it("moves every writable path into the work dir and opens no DHCP socket", () => {
    expect(d["interfaces-config"]).toEqual({ interfaces: [] });
    expect(d["control-socket"]).toEqual({ "socket-type": "unix", "socket-name": "/tmp/kea-check-x/kea4-scratch-ctrl-socket" });
    expect(d["lease-database"]).toEqual({ type: "memfile", persist: false, "lfc-interval": 0 });
    expect(d.loggers).toEqual([{ name: "kea-dhcp4", output_options: [{ output: "stdout" }], severity: "INFO", debuglevel: 0 }]);
    // No path of the live server survives anywhere in the scratch config.
    expect(JSON.stringify(scratch)).not.toMatch(/\/run\/kea|\/var\/lib\/kea|\/var\/log\/kea/);
  });

  it("drops what reaches outside the process and the hooks other than lease_cmds and ha", () => {
    for (const key of ["hosts-database", "config-control", "dhcp-ddns"]) expect(d).not.toHaveProperty(key);
    expect(d["hooks-libraries"].map((h: Json) => h.library)).toEqual([`${HOOKS}libdhcp_lease_cmds.so`, `${HOOKS}libdhcp_ha.so`]);
    expect(Object.keys(scratch)).toEqual(["Dhcp4"]);
  });

  it("keeps the HA section and the DHCP settings as they are, minus interfaces the namespace lacks", () => {
    expect(d["hooks-libraries"][1].parameters["high-availability"]).toEqual([ha]);
    expect(d["valid-lifetime"]).toBe(600);
    expect(d.subnet4).toEqual([{ id: 1, subnet: "198.18.0.0/24" }]);
    expect(d["shared-networks"]).toEqual([{ name: "n", subnet4: [{ id: 2, subnet: "198.18.1.0/24" }] }]);
  });

  it("leaves the candidate itself untouched", () => {
    expect(live.Dhcp4["control-socket"]["socket-name"]).toBe("/run/kea/kea4-ctrl-socket");
    expect(live.Dhcp4.subnet4[0].interface).toBe("eth0");
  });
});

describe("scratchServerArgv", () => {
  it("is argv only: env for PID/lock dirs, a timeout that ends it, a private network namespace, unprivileged ports", () => {
    expect(scratchServerArgv("/tmp/w/s.json", "/tmp/w", 3)).toEqual([
      "env", "KEA_PIDFILE_DIR=/tmp/w", "KEA_LOCKFILE_DIR=/tmp/w",
      "timeout", "--kill-after=2", "3",
      "unshare", "-n",
      "kea-dhcp4", "-c", "/tmp/w/s.json", "-p", "10067", "-P", "10068",
    ]);
  });
});

// Lines as Kea 2.2.0 printed them here (see check.test.ts for the runs that produce them).
const line = (severity: string, logger: string, id: string, text: string) => `2026-11-22 07:52:59.744 ${severity} [kea-dhcp4.${logger}/26566.140096099820032] ${id} ${text}`;
const STARTED = [
  line("INFO ", "ha-hooks", "HA_CONFIGURATION_SUCCESSFUL", "HA hook library has been successfully configured"),
  line("INFO ", "ha-hooks", "HA_INIT_OK", "loading High Availability hooks library successful"),
  line("INFO ", "dhcp4", "DHCP4_STARTED", "Kea DHCPv4 server version 2.2.0 started"),
].join("\n");

describe("interpretScratchRun (table)", () => {
  const table: [string, { code: number; stdout: string; stderr: string }, { ok: true } | { ok: false; problem: string }][] = [
    ["HA configured and server started, then stopped by timeout", { code: 124, stdout: STARTED, stderr: "" }, { ok: true }],
    [
      "HA_CONFIGURATION_FAILED",
      { code: 1, stdout: line("ERROR", "ha-hooks", "HA_CONFIGURATION_FAILED", "failed to configure High Availability hooks library: 'heartbeat-delay' must not be greater than 65535"), stderr: "" },
      { ok: false, problem: "Kea's HA hook refused the config: 'heartbeat-delay' must not be greater than 65535" },
    ],
    [
      "another config error (a missing hook library)",
      { code: 1, stdout: line("ERROR", "dhcp4", "DHCP4_CONFIG_LOAD_FAIL", "configuration error using file: s.json, reason: hooks libraries failed to validate - library or libraries in error are: /x/libdhcp_ha.so"), stderr: "" },
      { ok: false, problem: "the scratch kea-dhcp4 did not start: DHCP4_CONFIG_LOAD_FAIL configuration error using file: s.json, reason: hooks libraries failed to validate - library or libraries in error are: /x/libdhcp_ha.so" },
    ],
    [
      "a fatal start-up error before logging",
      { code: 1, stdout: "", stderr: "kea-dhcp4: Fatal error during start up: Unable to open PID file '/run/kea/s.kea-dhcp4.pid' for write" },
      { ok: false, problem: "the scratch kea-dhcp4 did not start: Unable to open PID file '/run/kea/s.kea-dhcp4.pid' for write" },
    ],
    [
      "not root",
      { code: 1, stdout: "", stderr: "unshare: unshare failed: Operation not permitted" },
      { ok: false, problem: "the scratch kea-dhcp4 could not be run (exit 1): unshare: unshare failed: Operation not permitted (it needs root for unshare -n, and timeout, unshare and kea-dhcp4 on the PATH)" },
    ],
    [
      "started without the HA hook",
      { code: 124, stdout: line("INFO ", "dhcp4", "DHCP4_STARTED", "Kea DHCPv4 server version 2.2.0 started"), stderr: "" },
      { ok: false, problem: "the scratch kea-dhcp4 started without configuring the HA hook (no HA_CONFIGURATION_SUCCESSFUL): is libdhcp_ha.so in hooks-libraries?" },
    ],
    [
      "too slow to start: a check that cannot tell must not pass",
      { code: 124, stdout: line("INFO ", "dhcp4", "DHCP4_STARTING", "Kea DHCPv4 server version 2.2.0 (stable) starting"), stderr: "" },
      { ok: false, problem: expect.stringContaining("the scratch kea-dhcp4 did not report DHCP4_STARTED within 3s (exit 124)") as unknown as string },
    ],
  ];
  it.each(table)("%s", (_name, result, verdict) => expect(interpretScratchRun(result, 3)).toEqual(verdict));
});

describe("interpretScratchRun for a config without the HA hook (a deleted cluster's standalone server)", () => {
  it("passes on DHCP4_STARTED alone, and still fails on a config error or no verdict", () => {
    const started = { code: 124, stdout: line("INFO ", "dhcp4", "DHCP4_STARTED", "Kea DHCPv4 server version 2.2.0 started"), stderr: "" };
    expect(interpretScratchRun(started, 3, false)).toEqual({ ok: true });
    const loadFail = { code: 1, stdout: line("ERROR", "dhcp4", "DHCP4_CONFIG_LOAD_FAIL", "configuration error using file: s.json, reason: subnet4 overlaps"), stderr: "" };
    expect(interpretScratchRun(loadFail, 3, false)).toMatchObject({ ok: false });
    const starting = { code: 124, stdout: line("INFO ", "dhcp4", "DHCP4_STARTING", "starting"), stderr: "" };
    expect(interpretScratchRun(starting, 3, false)).toMatchObject({ ok: false });
  });

  it("loadsHAHook looks at the hook library's file name", () => {
    expect(loadsHAHook({ Dhcp4: { "hooks-libraries": [{ library: "/usr/lib64/kea/hooks/libdhcp_ha.so" }] } })).toBe(true);
    expect(loadsHAHook({ Dhcp4: { "hooks-libraries": [{ library: "/usr/lib64/kea/hooks/libdhcp_lease_cmds.so" }] } })).toBe(false);
    expect(loadsHAHook({ Dhcp4: {} })).toBe(false);
  });
});
