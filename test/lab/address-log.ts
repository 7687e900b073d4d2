// Every address change on lab hosts, as each host's own `ip -ts -o monitor address` prints it
// (over docker exec, not SSH, so a controller's channel counts stay its own), on this process's
// clock: the host's timestamp minus its measured offset (0 when none is given; the containers
// share this machine's kernel clock). For failover timings and "the VIP was never dropped".
import { type ChildProcess, spawn } from "node:child_process";

export class AddressLog {
  /** host name -> [epoch ms on this process's clock, added?, address] */
  readonly lines = new Map<string, { at: number; added: boolean; address: string }[]>();
  private readonly children: ChildProcess[] = [];

  constructor(private readonly offsets: Map<string, number> = new Map()) {}

  follow(name: string, container: string): void {
    this.lines.set(name, []);
    const child = spawn("docker", ["exec", "-e", "TZ=UTC", container, "ip", "-ts", "-o", "monitor", "address"], { stdio: ["ignore", "pipe", "ignore"] });
    this.children.push(child);
    let rest = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      const text = rest + String(chunk);
      const parts = text.split("\n");
      rest = parts.pop() ?? "";
      for (const line of parts) {
        // [2026-12-06T14:20:01.123456]Deleted 2: eth0    inet 198.18.0.200/24 scope global secondary eth0 ...
        const m = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{6})\]\s*(Deleted )?\d+: \S+\s+inet6? ([0-9a-f.:]+)\//.exec(line);
        if (!m) continue;
        const hostMs = Date.parse(`${m[1]}Z`) + Number(m[2]) / 1000;
        this.lines.get(name)!.push({ at: hostMs - (this.offsets.get(name) ?? 0), added: !m[3], address: m[4]! });
      }
    });
  }

  /** The first change of `address` on `host` after `since` of the given kind. */
  first(host: string, address: string, added: boolean, since: number): number | undefined {
    return this.lines.get(host)?.find((l) => l.at >= since && l.address === address && l.added === added)?.at;
  }

  stop(): void {
    for (const c of this.children) c.kill();
  }
}

