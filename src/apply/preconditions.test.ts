import { describe, expect, it } from "vitest";
import { checkBatchKey, checkDirParent, defaultCheckForService } from "./check-routing.js";
import { dhcpdDefaultsProblem } from "./preconditions.js";

// Debian bookworm's stock /etc/default/isc-dhcp-server, as the package installs it.
const STOCK = `# Defaults for isc-dhcp-server (sourced by /etc/init.d/isc-dhcp-server)

# Path to dhcpd's config file (default: /etc/dhcp/dhcpd.conf).
#DHCPDv4_CONF=/etc/dhcp/dhcpd.conf
#DHCPDv6_CONF=/etc/dhcp/dhcpd6.conf

# On what interfaces should the DHCP server (dhcpd) serve DHCP requests?
#	Separate multiple interfaces with spaces, e.g. "eth0 eth1".
INTERFACESv4=""
INTERFACESv6=""
`;

describe("dhcpdDefaultsProblem", () => {
  it.each([
    { name: "the stock file (both empty)", text: STOCK, message: /INTERFACESv4 is empty in \/etc\/default\/isc-dhcp-server on DDIHost h1: .*set INTERFACESv4=/ },
    { name: "a missing file", text: undefined, message: /\/etc\/default\/isc-dhcp-server does not exist on DDIHost h1: .*starts nothing/ },
    { name: "only v6 set", text: 'INTERFACESv4=""\nINTERFACESv6="eth0"\n', message: /INTERFACESv4 is empty/ },
    { name: "a later empty assignment overriding", text: 'INTERFACESv4="eth0"\nINTERFACESv4=""\n', message: /INTERFACESv4 is empty/ },
    { name: "a commented-out assignment", text: '#INTERFACESv4="eth0"\n', message: /INTERFACESv4 is empty/ },
  ])("refuses $name", ({ text, message }) => {
    expect(dhcpdDefaultsProblem(text, "h1")).toMatch(message);
  });

  it.each([
    { name: "the lab's file", text: '# Set by the lab\nINTERFACESv4="eth0"\nINTERFACESv6=""\n' },
    { name: "an unquoted value", text: "INTERFACESv4=eth0\n" },
    { name: "single quotes and two interfaces", text: "INTERFACESv4='eth0 eth1'\n" },
    { name: "the legacy INTERFACES variable", text: 'INTERFACES="br0"\n' },
    { name: "an exported value with a comment", text: 'export INTERFACESv4="eth0" # lan\n' },
  ])("accepts $name", ({ text }) => {
    expect(dhcpdDefaultsProblem(text, "h1")).toBeUndefined();
  });
});

describe("check routing", () => {
  it("batches both Kea kinds together and the others alone", () => {
    expect(checkBatchKey("kea-dhcp4")).toBe(checkBatchKey("kea-ctrl-agent"));
    expect(checkBatchKey("dhcpd")).not.toBe(checkBatchKey("keepalived"));
  });
  it("stages dhcpd candidates where AppArmor lets dhcpd read them, the rest under /run, unless told", () => {
    expect(checkDirParent("dhcpd", undefined)).toBe("/etc/dhcp");
    expect(checkDirParent("keepalived", undefined)).toBe("/run");
    expect(checkDirParent("kea-dhcp4", undefined)).toBe("/run");
    expect(checkDirParent("dhcpd", "/var/tmp")).toBe("/var/tmp");
  });
  it("derives the check of a patched file from its service", () => {
    expect(defaultCheckForService("isc-dhcp-server.service")).toEqual({ kind: "dhcpd" });
    expect(defaultCheckForService("keepalived.service")).toEqual({ kind: "keepalived" });
    expect(defaultCheckForService("kea-dhcp4-server.service")).toEqual({ kind: "kea-dhcp4" });
    expect(defaultCheckForService("kea-ctrl-agent.service")).toEqual({ kind: "kea-ctrl-agent" });
  });
});
