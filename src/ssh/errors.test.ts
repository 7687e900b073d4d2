import { describe, expect, it } from "vitest";
import { SudoError, sudoGrantHint } from "./errors.js";

describe("sudoGrantHint", () => {
  it("names the refused command's path in a sudoers line when sudo printed it", () => {
    const hint = sudoGrantHint("ddi", "Sorry, user ddi is not allowed to execute '/usr/bin/chown 0:0 -- /etc/x.ddi-ha-new' as root on h2.");
    expect(hint).toBe(
      `Grant ddi that command with a line such as "ddi ALL=(root) NOPASSWD: /usr/bin/chown" in /etc/sudoers.d/ (check it with visudo -c), and remove any rule that denies it; ` +
        `or give ddi passwordless sudo for the operator's commands (e.g. "ddi ALL=(ALL) NOPASSWD:ALL" in /etc/sudoers.d/)`,
    );
  });

  it("falls back to the blanket rule when sudo named no command (a password is required)", () => {
    expect(sudoGrantHint("ddi", "sudo: a password is required")).toBe(`Give ddi passwordless sudo for the operator's commands (e.g. "ddi ALL=(ALL) NOPASSWD:ALL" in /etc/sudoers.d/)`);
  });

  it("ends up in SudoError's message with the command and the root alternative", () => {
    const err = new SudoError({ host: "ns/h2", address: "198.18.0.12", port: 22, user: "ddi" }, "chown 0:0 -- /etc/x", "Sorry, user ddi is not allowed to execute '/usr/bin/chown 0:0 -- /etc/x' as root on h2.");
    expect(err.message).toContain('sudo refused "chown 0:0 -- /etc/x" for user ddi');
    expect(err.message).toContain("as root on h2. Grant ddi");
    expect(err.message).toContain('"ddi ALL=(root) NOPASSWD: /usr/bin/chown"');
    expect(err.message).toContain("or connect as root (spec.user: root, spec.sudo: false).");
  });
});
