import { describe, expect, it } from "vitest";
import { diskFullMessage } from "./disk-full.js";

describe("diskFullMessage", () => {
  it("names the host, the directory and the fix for ENOSPC as sh and cat report it", () => {
    for (const detail of [
      "cannot write /etc/keepalived/ddi-ha.d/a.conf.ddi-ha-new on 198.18.0.11: sh: 1: cannot create /etc/keepalived/ddi-ha.d/a.conf.ddi-ha-new: No space left on device",
      "cat: write error: No space left on device",
    ]) {
      expect(diskFullMessage("h1", "/etc/keepalived/ddi-ha.d/a.conf.ddi-ha-new", detail)).toBe(
        "no space left on device on h1:/etc/keepalived/ddi-ha.d while writing /etc/keepalived/ddi-ha.d/a.conf.ddi-ha-new: " +
          "free space on the filesystem that holds /etc/keepalived/ddi-ha.d (df -h /etc/keepalived/ddi-ha.d on h1); the live file is untouched",
      );
    }
  });

  it("leaves other write failures alone", () => {
    expect(diskFullMessage("h1", "/etc/a.conf", "sh: 1: cannot create /etc/a.conf: Permission denied")).toBeUndefined();
  });
});
