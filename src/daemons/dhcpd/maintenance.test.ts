// Which dhcpd side gets which local-state through OMAPI during a maintenance (dhcpd 4.4's
// failover.c: a partner that hears "shutdown" moves to partner-down; shutdown → recover skips MCLT).
import { describe, expect, it } from "vitest";
import { planFailoverMaintenance } from "./maintenance.js";

const side = (host: string, state: string, over: { inMaintenance?: boolean; live?: boolean } = {}) => ({ host, state, inMaintenance: false, live: true, ...over });
const pair = (p: string, s: string, o: { p?: { inMaintenance?: boolean; live?: boolean }; s?: { inMaintenance?: boolean; live?: boolean } } = {}) => ({
  primary: side("h1", p, o.p),
  secondary: side("h2", s, o.s),
});
const resting = { inMaintenance: true };

describe("planFailoverMaintenance", () => {
  it("without maintenancePartnerDown: dhcpd is left alone, and the reason says what to expect", () => {
    const plan = planFailoverMaintenance(pair("normal", "normal", { p: resting }), false, false);
    expect(plan).toEqual({ phase: "LeftAlone", why: expect.any(String) });
    expect(plan.why).toContain("communications-interrupted");
    expect(plan.why).toContain("after MCLT");
  });

  it("the side in maintenance goes to shutdown (never its running partner straight to partner-down: that is potential-conflict)", () => {
    expect(planFailoverMaintenance(pair("normal", "normal", { p: resting }), true, false)).toMatchObject({ phase: "HandingOver", set: { side: "primary", state: "shutdown" } });
    expect(planFailoverMaintenance(pair("normal", "normal", { s: resting }), true, false).set).toEqual({ side: "secondary", state: "shutdown" });
    // Shut down, the partner not there yet: wait for it to hear.
    expect(planFailoverMaintenance(pair("shutdown", "normal", { p: resting }), true, false)).toEqual({ phase: "HandingOver", why: expect.any(String) });
  });

  it("the side in maintenance silent (dhcpd stopped) and its partner in communications-interrupted: the partner is set to partner-down", () => {
    expect(planFailoverMaintenance(pair("unknown", "communications-interrupted", { p: { inMaintenance: true, live: false } }), true, false).set).toEqual({
      side: "secondary",
      state: "partner-down",
    });
    expect(planFailoverMaintenance(pair("shutdown", "communications-interrupted", { p: resting }), true, false).set).toEqual({ side: "secondary", state: "partner-down" });
  });

  it("idempotent once the partner is in partner-down; nothing set when the partner does not serve or both are in maintenance", () => {
    expect(planFailoverMaintenance(pair("shutdown", "partner-down", { p: resting }), true, false)).toEqual({ phase: "HandedOver", why: expect.any(String) });
    expect(planFailoverMaintenance(pair("normal", "unknown", { p: resting, s: { live: false } }), true, false)).toEqual({ phase: "NoPartnerToTakeOver", why: expect.any(String) });
    expect(planFailoverMaintenance(pair("normal", "normal", { p: resting, s: resting }), true, false)).toEqual({ phase: "NoPartnerToTakeOver", why: expect.any(String) });
  });

  it("undo: the shut-down side goes to recover; then wait for normal; a shutdown made by hand is left alone", () => {
    expect(planFailoverMaintenance(pair("shutdown", "partner-down"), true, true)).toMatchObject({ phase: "Returning", set: { side: "primary", state: "recover" } });
    expect(planFailoverMaintenance(pair("recover-done", "partner-down"), true, true)).toEqual({ phase: "Returning", why: expect.any(String) });
    expect(planFailoverMaintenance(pair("normal", "normal"), true, true)).toMatchObject({ phase: "Idle" });
    expect(planFailoverMaintenance(pair("shutdown", "partner-down"), true, false)).toEqual({ phase: "Idle", why: expect.any(String) });
  });
});
