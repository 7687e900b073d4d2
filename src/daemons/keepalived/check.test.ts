// The real keepalived 2.2.7 on every rendered variant. keepalived -t exits 5 when an interface the
// config names does not exist (checked below), so these runs happen in a private network namespace
// holding those interfaces (withNetnsInterfaces); the production checker runs keepalived directly.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { scratchDirs } from "../../testing/support.js";
import type { HAPair } from "../../api/index.js";
import { localHostIO } from "../../exec/host-io.js";
import type { RenderedFile } from "../../render/types.js";
import { NOTIFY_SCRIPT_PATH, checkKeepalivedFiles, lintKeepalivedConfig, renderKeepalivedHost, renderKeepalivedPair } from "./index.js";
import { VARIANTS, haPair, host, labHosts, loadExample, withNetnsInterfaces } from "./test-support.js";

const workDir = scratchDirs("ka-check-");

const onHost = (files: RenderedFile[], h: string) => files.filter((f) => f.host === h);
const labIO = withNetnsInterfaces(localHostIO, ["eth0", "eth1"]);
const replacePairFile = (files: RenderedFile[], edit: (text: string) => string): RenderedFile[] =>
  files.map((f) => (f.ownership === "owned" ? { ...f, content: edit(f.content) } : f));

describe("checkKeepalivedFiles with the real keepalived -t", () => {
  it("accepts the DDI Central example on both hosts (enp1s0 and br0 in a private netns)", async () => {
    const { pair, hosts } = await loadExample();
    const files = renderKeepalivedPair(pair, hosts);
    const io = withNetnsInterfaces(localHostIO, ["enp1s0", "br0"]);
    for (const h of ["ddi-central-primary", "ddi-central-secondary"]) {
      const verdict = await checkKeepalivedFiles(onHost(files, h), io, await workDir(), { includeLiveFiles: false });
      expect(verdict.problems).toEqual([]);
      expect(verdict.ok).toBe(true);
      expect(verdict.tool).toContain("keepalived -t -f /etc/keepalived/keepalived.conf");
    }
  });

  it.each(Object.keys(VARIANTS))("accepts variant %s on both hosts", async (variant) => {
    const files = VARIANTS[variant]!();
    for (const h of ["ka-a", "ka-b"]) {
      const verdict = await checkKeepalivedFiles(onHost(files, h), labIO, await workDir(), { includeLiveFiles: false });
      expect(verdict.problems, `${variant} on ${h}`).toEqual([]);
    }
  });

  it("accepts two pairs on one host", async () => {
    const hosts = new Map([...labHosts(), ["ka-c", host("ka-c", "198.18.0.4")]]);
    const files = renderKeepalivedHost(
      "ka-a",
      [haPair({ virtualRouterID: 61 }, "dns-vip"), haPair({ virtualRouterID: 62, secondary: { host: "ka-c", interface: "eth1" } }, "dhcp-vip")],
      hosts,
    );
    const verdict = await checkKeepalivedFiles(files, labIO, await workDir(), { includeLiveFiles: false });
    expect(verdict.problems).toEqual([]);
  });

  it("reports keepalived's own errors with the real file and line, and its exit code", async () => {
    const files = replacePairFile(onHost(VARIANTS.fractional!(), "ka-a"), (t) => t.replace("advert_int 0.5", "advert_int 0.015"));
    const dir = await workDir();
    const verdict = await checkKeepalivedFiles(files, labIO, dir, { includeLiveFiles: false });
    expect(verdict.ok).toBe(false);
    expect(verdict.problems).toContain("(ddiha_lab_fast_v4) VRRPv3 advertisement interval 0.015000s must be in units of 10ms - rounding");
    expect(verdict.problems).toContain("keepalived -t exited 5 (configuration errors)");
    expect(verdict.output).not.toContain(dir);
  });

  it("reports a line-numbered error in a pair file under its real path", async () => {
    const files = replacePairFile(onHost(VARIANTS.nopreempt!(), "ka-a"), (t) => t.replace("virtual_router_id 61", "virtual_router_id 300"));
    const verdict = await checkKeepalivedFiles(files, labIO, await workDir(), { includeLiveFiles: false });
    expect(verdict.problems).toContain("(/etc/keepalived/ddi-ha.d/lab_nopreempt.conf: Line 25) number '300' outside range [1, 255]");
    expect(verdict.problems.some((p) => p.startsWith("/etc/keepalived/ddi-ha.d/lab_nopreempt.conf line 25: virtual_router_id 300 is outside 1-255"))).toBe(true);
  });

  it("exits 5 when an interface does not exist, so the tests need the netns (finding, not a feature)", async () => {
    const files = onHost(VARIANTS.nopreempt!(), "ka-a").map((f) => (f.ownership === "owned" ? { ...f, content: f.content.replaceAll("eth0", "ddi-nosuch0") } : f));
    const verdict = await checkKeepalivedFiles(files, labIO, await workDir(), { includeLiveFiles: false });
    expect(verdict.problems).toContain("Non-existent interface specified in configuration");
    expect(verdict.problems).toContain("keepalived -t exited 5 (configuration errors)");
  });

  it("refuses a notify hook that sh -n rejects", async () => {
    const files = onHost(VARIANTS.unicast!(), "ka-b").map((f) => (f.path === NOTIFY_SCRIPT_PATH ? { ...f, content: `${f.content}if then\n` } : f));
    const verdict = await checkKeepalivedFiles(files, labIO, await workDir(), { includeLiveFiles: false });
    expect(verdict.problems.some((p) => p.startsWith(`${NOTIFY_SCRIPT_PATH}: sh -n refused the notify script`))).toBe(true);
  });

  it("accepts a main file whose include directory is empty (a host whose last pair left)", async () => {
    const main = onHost(VARIANTS.nopreempt!(), "ka-a").filter((f) => f.ownership === "shared");
    const verdict = await checkKeepalivedFiles(main, labIO, await workDir(), { includeLiveFiles: false });
    expect(verdict.problems).toEqual([]);
    expect(verdict.output).toContain("Config files missing");
  });

  it("checks the candidates together with pair files already live in the include directory", async () => {
    const root = await workDir();
    const configPath = join(root, "etc-keepalived", "keepalived.conf");
    const hosts = labHosts();
    // Another pair is already live on ka-a with VRID 61 on eth0; the candidate pair takes the same VRID.
    // A scratch configPath, which admission would refuse (outside /etc/keepalived/): set after the schema.
    const inScratchDir = (pair: HAPair): HAPair => ({ ...pair, spec: { ...pair.spec, primary: { ...pair.spec.primary, configPath } } });
    const live = renderKeepalivedPair(inScratchDir(haPair({}, "already-live")), hosts).find((f) => f.host === "ka-a" && f.ownership === "owned")!;
    await localHostIO.writeFile(live.path, live.content, 0o644);
    const candidate = onHost(renderKeepalivedPair(inScratchDir(haPair({}, "newcomer")), hosts), "ka-a");

    const together = await checkKeepalivedFiles(candidate, labIO, await workDir());
    expect(together.ok).toBe(false);
    expect(together.problems).toContain("ddiha_lab_already-live_v4 and ddiha_lab_newcomer_v4 both use VRID 61 with IPv4 on interface eth0");
    expect(together.output).toContain(`checked together with ${live.path}, already live on the host`);

    const alone = await checkKeepalivedFiles(candidate, labIO, await workDir(), { includeLiveFiles: false });
    expect(alone.problems).toEqual([]);
  });

  it("proves the staged candidate exists: keepalived -t itself exits 0 for a missing file", async () => {
    const missing = join(await workDir(), "no-such.conf");
    const raw = await labIO.run(["keepalived", "-t", "-f", missing]);
    expect(raw.code).toBe(0);
    expect(raw.stderr + raw.stdout).toContain(`Config files missing '${missing}'`);
    // The checker reads the candidate back before running keepalived; a HostIO that loses writes is caught.
    const lossy = { ...labIO, writeFile: async () => undefined, readFile: async () => undefined };
    const files = onHost(VARIANTS.nopreempt!(), "ka-a");
    const verdict = await checkKeepalivedFiles(files, lossy, await workDir(), { includeLiveFiles: false });
    expect(verdict.ok).toBe(false);
    expect(verdict.problems[0]).toMatch(/is missing or differs from what was written; keepalived -t would pass a missing file/);
  });
});

// Each row: keepalived -t accepts the text (exit 0), and our lint refuses it. This is why the lint exists.
describe("keepalived -t passes what our lint refuses", () => {
  const base = (instanceBody: string, globals = "global_defs {\n  enable_script_security\n  script_user root\n}\n") =>
    `${globals}vrrp_script chk {\n  script "/usr/bin/systemctl is-active --quiet named.service"\n}\nvrrp_instance vi {\n  interface eth0\n  virtual_router_id 51\n  priority 100\n${instanceBody}  virtual_ipaddress {\n    198.18.0.86/24 dev eth0\n  }\n}\n`;
  const rows: { name: string; text: string; lint: RegExp }[] = [
    {
      name: "nopreempt with a negative track_script weight (the VIP never leaves a master whose service died)",
      text: base("  state BACKUP\n  nopreempt\n  track_script {\n    chk weight -60\n  }\n"),
      lint: /track_script chk has weight -60 under nopreempt/,
    },
    {
      name: "nopreempt without a state line",
      text: base("  nopreempt\n"),
      lint: /nopreempt in vrrp_instance vi without a state; set `state BACKUP`/,
    },
    {
      name: "an empty main file (bookworm's unit silently skips it)",
      text: "",
      lint: /the file is empty; bookworm's keepalived.service has ConditionFileNotEmpty/,
    },
    {
      name: "unicast without unicast_fault_no_peer",
      text: base("  state BACKUP\n  unicast_src_ip 198.18.0.2\n  unicast_peer {\n    198.18.0.3\n  }\n"),
      lint: /has no unicast_fault_no_peer/,
    },
    {
      name: "priority 255 on a VIP the host does not own",
      text: base("  state BACKUP\n").replace("priority 100", "priority 255"),
      lint: /priority 255 is outside 1-254/,
    },
  ];
  it.each(rows)("$name", async ({ text, lint }) => {
    const path = join(await workDir(), "keepalived.conf");
    await localHostIO.writeFile(path, text, 0o644);
    const result = await labIO.run(["keepalived", "-t", "-f", path]);
    expect({ code: result.code, output: (result.stdout + result.stderr).trim() }).toEqual({ code: 0, output: "" });
    expect(lintKeepalivedConfig(text, path).join("\n")).toMatch(lint);
  });

  // The limits render.ts relies on, as keepalived 2.2.7 states them.
  it.each([
    { name: "unicast_fault_no_peer belongs in the instance, not global_defs", text: base("  state BACKUP\n", "global_defs {\n  enable_script_security\n  script_user root\n  unicast_fault_no_peer\n}\n"), says: "(Line 4) Unknown keyword 'unicast_fault_no_peer'" },
    { name: "track_script weight is -253..253", text: base("  state BACKUP\n  track_script {\n    chk weight -254\n  }\n"), says: "weight for chk cannot be +/-254. Setting to +/-253" },
    { name: "preempt_delay is at most 1000 s", text: base("  state BACKUP\n  preempt_delay 1001\n"), says: "Preempt_delay not valid! must be between 0-1000" },
    { name: "VRRPv3 advert_int is below 40.96 s", text: base("  state BACKUP\n  version 3\n  advert_int 41\n"), says: "Must be less than 40.96s" },
    { name: "VRRPv2 advert_int is whole seconds", text: base("  state BACKUP\n  advert_int 0.5\n"), says: "VRRPv2 advertisement interval 0.500000s must be an integer" },
  ])("keepalived -t: $name", async ({ text, says }) => {
    const path = join(await workDir(), "keepalived.conf");
    await localHostIO.writeFile(path, text, 0o644);
    const result = await labIO.run(["keepalived", "-t", "-f", path]);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain(says);
  });

  it("keepalived -t accepts unicast_fault_no_peer inside the instance", async () => {
    const path = join(await workDir(), "keepalived.conf");
    await localHostIO.writeFile(path, base("  state BACKUP\n  unicast_src_ip 198.18.0.2\n  unicast_peer {\n    198.18.0.3\n  }\n  unicast_fault_no_peer\n"), 0o644);
    expect(await labIO.run(["keepalived", "-t", "-f", path])).toMatchObject({ code: 0, stderr: "" });
  });

  it("(for contrast) nopreempt with state MASTER is refused by keepalived -t itself", async () => {
    const path = join(await workDir(), "keepalived.conf");
    await localHostIO.writeFile(path, base("  state MASTER\n  nopreempt\n"), 0o644);
    const result = await labIO.run(["keepalived", "-t", "-f", path]);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain("(vi) Warning - nopreempt will not work with initial state MASTER - clearing");
  });
});
