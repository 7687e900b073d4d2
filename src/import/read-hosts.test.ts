import { describe, expect, it } from "vitest";
import { parseHostArg, parseHostKeyArg } from "./read-hosts.js";

describe("--host and --host-key", () => {
  it("takes user@address, a port, and bracketed IPv6", () => {
    expect(parseHostArg("root@198.18.0.11")).toEqual({ user: "root", address: "198.18.0.11", port: 22 });
    expect(parseHostArg("ddi@dns1.example.net:2222")).toEqual({ user: "ddi", address: "dns1.example.net", port: 2222 });
    expect(parseHostArg("root@[fd00::11]:22")).toEqual({ user: "root", address: "fd00::11", port: 22 });
  });

  it.each(["198.18.0.11", "root@", "root@host;rm -rf /", "$(id)@198.18.0.11", "root@198.18.0.11:70000", "root@-oProxyCommand=x"])("refuses %s, naming the expected form", (arg) => {
    expect(() => parseHostArg(arg)).toThrow(/expected user@address or user@address:port/);
  });

  it("pins a key line per address and refuses what is not one", () => {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHd6pWz0b7RTrUejHF2cm6Uu0g2XWtBbWQMmBBx7KM1C";
    expect(parseHostKeyArg(`198.18.0.11=${key}`)).toEqual({ address: "198.18.0.11", key });
    expect(() => parseHostKeyArg("198.18.0.11=not a key")).toThrow(/expected address=<host key line>/);
    expect(() => parseHostKeyArg(key)).toThrow(/expected address=<host key line>/);
  });
});
