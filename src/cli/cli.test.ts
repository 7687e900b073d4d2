import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { runRender, runValidate } from "./commands.js";

const root = join(import.meta.dirname, "..", "..");
const examples = join(root, "examples");
const run = promisify(execFile);

function collector() {
  let text = "";
  return { write: (t: string) => (text += t), get text() { return text; } };
}

const BROKEN = `apiVersion: ddi-ha.io/v1alpha1
kind: HAPair
metadata: {name: broken, namespace: lab}
spec:
  primary: {host: a, interface: "eth0;reboot"}
  secondary: {host: a, interface: eth0}
  virtualIP: 10.0.0.1
  virtualRouterID: 300
  services: {dhcp: DHCPv4, dhcpv4ClientMode: Broadcast}
---
apiVersion: ddi-ha.io/v1alpha1
kind: KeaHACluster
metadata: {name: kea, namespace: lab}
spec:
  mode: hot-standby
  peers:
  - {name: s1, host: a, role: primary, url: "http://kea1.example.org:8000/"}
  - {name: s2, host: b, role: secondary}
`;

describe("ddi-ha validate", () => {
  it("accepts examples/ and exits 0", async () => {
    const out = collector();
    const err = collector();
    expect(await runValidate([examples], out, err)).toBe(0);
    expect(out.text).toMatch(/^\d+ resource\(s\) valid/);
  });

  it("prints every problem of every invalid resource, each naming the field, and exits 1", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddi-ha-cli-"));
    writeFileSync(join(dir, "broken.yaml"), BROKEN);
    const out = collector();
    const err = collector();
    expect(await runValidate([dir], out, err)).toBe(1);
    for (const expected of [
      "HAPair lab/broken: spec.primary.interface: must be a Linux interface name",
      "HAPair lab/broken: spec.virtualIP: must be an IPv4 CIDR",
      "HAPair lab/broken: spec.virtualRouterID: must be at most 255",
      "HAPair lab/broken: spec.secondary.host must differ from spec.primary.host",
      "use a DhcpFailoverPeer for DHCPv4",
      "KeaHACluster lab/kea: spec.peers[0].url: must be http://<IP literal>",
      "spec.peers roles do not fit mode hot-standby",
    ]) {
      expect(err.text).toContain(expected);
    }
  });

  it("names the file of a YAML syntax error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddi-ha-cli-"));
    writeFileSync(join(dir, "bad.yaml"), "kind: HAPair\nspec: [\n");
    const err = collector();
    expect(await runValidate([dir], collector(), err)).toBe(1);
    expect(err.text).toContain(`${join(dir, "bad.yaml")}:`);
  });

  it("reports every YAML error together with the validation errors of the readable files", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddi-ha-cli-"));
    writeFileSync(join(dir, "a-bad.yaml"), "kind: HAPair\nspec: [\n");
    writeFileSync(join(dir, "b-broken.yaml"), BROKEN);
    writeFileSync(join(dir, "c-bad.yaml"), "apiVersion: ddi-ha.io/v1alpha1\n---\n- not a mapping\n");
    const err = collector();
    expect(await runValidate([dir], collector(), err)).toBe(1);
    expect(err.text).toContain(`${join(dir, "a-bad.yaml")}:`);
    expect(err.text).toContain(`${join(dir, "c-bad.yaml")}#2: expected a Kubernetes object`);
    expect(err.text).toContain("HAPair lab/broken: spec.virtualRouterID: must be at most 255");
    expect(err.text).toMatch(/\b(\d+) error\(s\)/);
    // Two load errors on top of the broken file's own.
    const [, count] = /(\d+) error\(s\)/.exec(err.text)!;
    const listed = err.text.trim().split("\n").filter((l) => !l.startsWith("warning:")).length - 1;
    expect(Number(count)).toBe(listed);
  });
});

describe("ddi-ha render", () => {
  it("writes OUT/<DDIHost>/<absolute path> for every host of every example", async () => {
    const outDir = mkdtempSync(join(tmpdir(), "ddi-ha-render-"));
    const out = collector();
    expect(await runRender([examples], outDir, out, collector())).toBe(0);
    const written = out.text.trim().split("\n");
    expect(written).toContain(join(outDir, "ddi-central-primary", "etc/keepalived/keepalived.conf"));
    expect(written).toContain(join(outDir, "isc-dhcp-secondary", "etc/dhcp/ddi-ha/dhcp-failover.conf"));
    expect(written).toContain(join(outDir, "kea-server3", "etc/kea/kea-dhcp4.conf"));
    const keaConfig = JSON.parse(readFileSync(join(outDir, "kea-server2", "etc/kea/kea-dhcp4.conf"), "utf8"));
    const ha = keaConfig.Dhcp4["hooks-libraries"].find((h: { library: string }) => h.library.endsWith("libdhcp_ha.so"));
    expect(ha.parameters["high-availability"][0]["this-server-name"]).toBe("server2");
    // The OMAPI key makes the include file secret.
    expect(statSync(join(outDir, "isc-dhcp-primary", "etc/dhcp/ddi-ha/dhcp-failover.conf")).mode & 0o777).toBe(0o640);
  });

  it("writes nothing for an invalid set", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ddi-ha-cli-"));
    writeFileSync(join(dir, "broken.yaml"), BROKEN);
    const out = collector();
    expect(await runRender([dir], join(dir, "out"), out, collector())).toBe(1);
    expect(out.text).toBe("");
  });
});

describe("the ddi-ha bin", () => {
  it("runs validate through bin/ddi-ha.js and reports a failure by exit code", async () => {
    const ok = await run(process.execPath, [join(root, "bin", "ddi-ha.js"), "validate", "-f", examples]);
    expect(ok.stdout).toMatch(/resource\(s\) valid/);
    const dir = mkdtempSync(join(tmpdir(), "ddi-ha-cli-"));
    writeFileSync(join(dir, "broken.yaml"), BROKEN);
    await expect(run(process.execPath, [join(root, "bin", "ddi-ha.js"), "validate", "-f", dir])).rejects.toMatchObject({ code: 1 });
  });

  it.each([
    [["--kube-api-qps", "0"], /--kube-api-qps.*a positive number such as 20 or 0.5, not "0"/],
    [["--ssh-connect-qps", "fast"], /--ssh-connect-qps.*not "fast"/],
    [["--ssh-connect-burst", "0"], /--ssh-connect-burst.*an integer from 1/],
  ])("refuses controller %j before it connects anywhere, naming the flag", async (flags, message) => {
    const failed = await run(process.execPath, [join(root, "bin", "ddi-ha.js"), "controller", ...flags]).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toMatch(message);
  });
});
