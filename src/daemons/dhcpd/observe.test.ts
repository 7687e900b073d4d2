// The fixtures under testdata/captured/ are real output of dhcpd 4.4.3-P1 and omshell, captured
// from a failover pair (peer "p", 198.18.0.2 primary / 198.18.0.3 secondary, each in its own network
// namespace) started, brought to normal, and then with the secondary stopped.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  FAILOVER_STATE_CODES,
  omshellFailoverScript,
  parseFailoverStateFromLeases,
  parseFailoverTransitionLog,
  parseOmshellFailoverState,
  parsePoolBalanceLog,
} from "./index.js";
import { TESTDATA_DIR } from "./test-support.js";

const captured = (name: string) => readFileSync(join(TESTDATA_DIR, "captured", name), "utf8");

describe("parseFailoverStateFromLeases", () => {
  it("reads the last state block of the primary's leases file (secondary stopped)", () => {
    expect(parseFailoverStateFromLeases(captured("primary.leases"), "p")).toEqual({
      myState: "communications-interrupted",
      partnerState: "normal",
      myStateSince: new Date("2026-11-22T07:53:13Z"),
      partnerStateSince: new Date("2026-11-22T07:52:48Z"),
    });
  });

  it("reads the secondary's block, which also records the primary's mclt", () => {
    expect(parseFailoverStateFromLeases(captured("secondary.leases"), "p")).toMatchObject({ myState: "normal", partnerState: "normal", mclt: 15 });
  });

  it("ignores other peers' blocks and says undefined when the peer has none", () => {
    const text = `${captured("primary.leases")}\nfailover peer "other" state {\n  my state partner-down at 0 2026/11/22 08:00:00;\n  partner state shutdown at 0 2026/11/22 08:00:00;\n}\n`;
    expect(parseFailoverStateFromLeases(text, "p")?.myState).toBe("communications-interrupted");
    expect(parseFailoverStateFromLeases(text, "other")).toMatchObject({ myState: "partner-down", partnerState: "shutdown" });
    expect(parseFailoverStateFromLeases(text, "missing")).toBeUndefined();
    expect(parseFailoverStateFromLeases("", "p")).toBeUndefined();
  });

  it("reads times written with db-time-format local (epoch seconds)", () => {
    const text = 'failover peer "p" state {\n  my state partner-down at epoch 1795334400; # Sun Nov 22 09:00:00 2026\n  partner state communications-interrupted at epoch 1795334000; # Sun Nov 22 08:53:20 2026\n}\n';
    expect(parseFailoverStateFromLeases(text, "p")).toEqual({
      myState: "partner-down",
      partnerState: "communications-interrupted",
      myStateSince: new Date(1795334400 * 1000),
      partnerStateSince: new Date(1795334000 * 1000),
    });
  });
});

describe("parseOmshellFailoverState", () => {
  it("maps the codes of a pair in normal", () => {
    const state = parseOmshellFailoverState(captured("omshell-normal.txt"));
    expect(state).toMatchObject({ ok: true, localState: "normal", partnerState: "normal", localStateCode: 2, partnerStateCode: 2 });
    if (!state.ok) throw new Error(state.error);
    expect(state.values).toMatchObject({ mclt: 15, "max-response-delay": 30, "load-balance-max-secs": 3, "cur-unacked-updates": 0, "local-port": 647 });
    expect(state.values).not.toHaveProperty("local-address");
  });

  it("sees the primary in communications-interrupted after its partner stopped", () => {
    expect(parseOmshellFailoverState(captured("omshell-communications-interrupted.txt"))).toMatchObject({
      ok: true,
      localState: "communications-interrupted",
      partnerState: "normal",
    });
  });

  it("reports omshell's complaints when the key is refused (omshell itself exits 0)", () => {
    const state = parseOmshellFailoverState(captured("omshell-wrong-key-algorithm.txt"));
    expect(state.ok).toBe(false);
    if (state.ok) return;
    expect(state.error).toBe(
      "omshell printed no failover state: dhcpctl_connect: not found; not connected.; no open object. (dhcpd refused the key: check the key name, secret and key-algorithm against omapi-key in dhcpd.conf)",
    );
  });

  it.each(Object.entries(FAILOVER_STATE_CODES))("names state code %s %s", (code, name) => {
    const hex = Number(code).toString(16).padStart(8, "0").match(/../g)!.join(":");
    const state = parseOmshellFailoverState(`> obj: failover-state\nname = "p"\npartner-state = 00:00:00:02\nlocal-state = ${hex}\n> `);
    expect(state).toMatchObject({ ok: true, localState: name, localStateCode: Number(code), partnerState: "normal" });
  });

  it("calls an unlisted code unknown rather than guessing", () => {
    expect(parseOmshellFailoverState("partner-state = 00:00:00:0c\nlocal-state = 2\n")).toMatchObject({ ok: true, partnerState: "unknown", localState: "normal" });
  });
});

describe("parsePoolBalanceLog", () => {
  it("reads dhcpd 4.4's balancing and balanced lines as journald shows them", () => {
    const lines = captured("primary.log").split("\n").map(parsePoolBalanceLog).filter((x) => x !== undefined);
    expect(lines).toEqual([
      { phase: "balancing", poolId: "55f7984fc050", network: "198.18.0.0/24", total: 100, free: 100, backup: 0, lts: 50 },
      { phase: "balanced", poolId: "55f7984fc050", network: "198.18.0.0/24", total: 100, free: 50, backup: 50, lts: 0 },
    ]);
    const journal = "Nov 22 07:52:48 dhcp-a dhcpd[25650]: balanced pool 55f7984fc050 198.18.0.0/24  total 100  free 50  backup 50  lts 0  max-misbal 15";
    expect(parsePoolBalanceLog(journal)).toMatchObject({ phase: "balanced", free: 50, backup: 50 });
  });

  it("reads the older format of seed 003, a negative lts, and an IMBALANCED line", () => {
    expect(parsePoolBalanceLog("Nov 6 20:27:09 secondary dhcpd: pool 98e82b8 192.168.200.0/24 total 155 free 38 backup 37 lts 0")).toEqual({
      phase: "pool",
      poolId: "98e82b8",
      network: "192.168.200.0/24",
      total: 155,
      free: 38,
      backup: 37,
      lts: 0,
    });
    expect(parsePoolBalanceLog(captured("secondary.log").split("\n").find((l) => l.startsWith("balanced"))!)).toMatchObject({ lts: -50 });
    expect(parsePoolBalanceLog("IMBALANCED pool 5652a77a2010 lab  total 100  free 90  backup 10  lts 40  max-misbal 15")).toMatchObject({ phase: "imbalanced", network: "lab", lts: 40 });
  });

  it("ignores other lines", () => {
    expect(parsePoolBalanceLog("failover peer p: I move from recover-done to normal")).toBeUndefined();
    expect(parsePoolBalanceLog("Sending on   LPF/va/5a:05:a1:49:fb:ac/198.18.0.0/24")).toBeUndefined();
  });
});

describe("parseFailoverTransitionLog", () => {
  it("follows the primary's own state changes in its log", () => {
    const moves = captured("primary.log")
      .split("\n")
      .map(parseFailoverTransitionLog)
      .filter((x) => x !== undefined)
      .map((m) => `${m.from}->${m.to}`);
    expect(moves).toEqual(["recover->startup", "startup->recover", "recover->recover-done", "recover-done->normal", "normal->communications-interrupted"]);
  });
});

describe("omshellFailoverScript", () => {
  it("writes the algorithm out, since omshell assumes HMAC-MD5", () => {
    expect(omshellFailoverScript("dhcp-failover", { name: "omapi-dhcp-failover", algorithm: "hmac-sha256", secret: "c2VjcmV0" }, 7911)).toBe(
      'server 127.0.0.1\nport 7911\nkey-algorithm hmac-sha256\nkey omapi-dhcp-failover c2VjcmV0\nconnect\nnew failover-state\nset name = "dhcp-failover"\nopen\n',
    );
  });

  it.each([
    ["a peer name with a quote", 'p"', "c2VjcmV0", "failover peer name"],
    ["a secret with a space", "p", "c2Vj cmV0", "the secret must be base64"],
  ])("refuses %s", (_label, peer, secret, message) => {
    expect(() => omshellFailoverScript(peer, { name: "k", algorithm: "hmac-md5", secret }, 7911)).toThrow(message);
  });
});
