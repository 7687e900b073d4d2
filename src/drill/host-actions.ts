// What a drill does on a host: fixed scripts, every value passed as argv ("$1", "$2") and checked
// again by the script itself. Each break arms a host-side restore first (a transient systemd
// timer) and does nothing when arming fails, so a controller that dies mid-drill never leaves a
// host broken for longer than the timer. See ADR 0031.
import type { DrillMethod } from "../api/index.js";
import type { CommandRunner } from "../exec/runner.js";
import type { DrillObservation } from "./machine.js";

/** The host-side restore timer of a run: ddi-ha-drill-<runID>.timer. */
export const RUN_ID_RE = /^[a-z0-9]{1,32}$/;
export const restoreUnitOf = (runID: string): string => {
  if (!RUN_ID_RE.test(runID)) throw new Error(`drill run ID ${JSON.stringify(runID)} is not 1-32 lower-case letters and digits`);
  return `ddi-ha-drill-${runID}`;
};

/** The iptables chain a CutHostNetwork run hangs on INPUT and OUTPUT of the VIP's interface. */
export const CUT_CHAIN = "DDIHA-DRILL";

const ARG_CHECKS = `
case "$iface" in ''|-*|*[!A-Za-z0-9_.-]*) echo "bad interface name" >&2; exit 2;; esac
`;

/**
 * One observation: `vip=yes|no`, `keepalived=<systemctl is-active>`, and with a name `dns=yes|no`.
 * The DNS query is one UDP datagram over bash's /dev/udp (dig is not on every host: bind9-dnsutils
 * is a package of its own), answered when a reply with our ID, NOERROR and an answer comes within 1 s.
 * Args: interface, VIP (IPv4, no prefix), DNS name or "".
 */
export const OBSERVE_SCRIPT = `set -u
iface=$1 vip=$2 name=$3
${ARG_CHECKS}
case "$vip" in ''|*[!0-9.]*) echo "bad VIP" >&2; exit 2;; esac
case "$name" in *[!A-Za-z0-9.-]*) echo "bad DNS name" >&2; exit 2;; esac
if ip -o -4 addr show dev "$iface" 2>/dev/null | grep -qF " $vip/"; then echo vip=yes; else echo vip=no; fi
echo "keepalived=$(systemctl is-active keepalived.service 2>/dev/null)"
[ -n "$name" ] || exit 0
answers() {
  local id=$((RANDOM % 65536)) q l reply flags labels
  q=$(printf '\\\\x%02x\\\\x%02x\\\\x01\\\\x00\\\\x00\\\\x01\\\\x00\\\\x00\\\\x00\\\\x00\\\\x00\\\\x00' $((id >> 8)) $((id & 255)))
  IFS=. read -ra labels <<<"\${name%.}"
  for l in "\${labels[@]}"; do q+=$(printf '\\\\x%02x' "\${#l}")$l; done
  q+='\\x00\\x00\\x01\\x00\\x01'
  exec 3<>"/dev/udp/$vip/53" || return 1
  printf '%b' "$q" >&3
  reply=$(timeout 1 od -An -tx1 -N 12 <&3 2>/dev/null | tr -d ' \\n')
  exec 3<&-
  [ "\${#reply}" = 24 ] && [ "\${reply:0:4}" = "$(printf %04x "$id")" ] || return 1
  flags=$((16#\${reply:4:4}))
  (( (flags & 0x8000) && (flags & 0xf) == 0 && 16#\${reply:12:4} > 0 ))
}
if answers; then echo dns=yes; else echo dns=no; fi
`;

/** Arms the restore timer, then stops keepalived. Args: unit, seconds. */
const STOP_DAEMON_SCRIPT = `set -eu
systemd-run --quiet --unit="$1" --on-active="$2" /bin/systemctl start keepalived.service
systemctl stop keepalived.service
`;
/** Starts keepalived, then disarms the timer. Args: unit. */
const START_DAEMON_SCRIPT = `set -eu
systemctl start keepalived.service
systemctl stop "$1.timer" 2>/dev/null || true
`;

/** Undoes a cut, whatever part of it is in place; fails only if the chain is still there. Args: interface. */
export const UNCUT_SCRIPT = `iface=$1
while iptables -w -D INPUT -i "$iface" -j ${CUT_CHAIN} 2>/dev/null; do :; done
while iptables -w -D OUTPUT -o "$iface" -j ${CUT_CHAIN} 2>/dev/null; do :; done
iptables -w -F ${CUT_CHAIN} 2>/dev/null
iptables -w -X ${CUT_CHAIN} 2>/dev/null
! iptables -w -n -L ${CUT_CHAIN} >/dev/null 2>&1
`;

/**
 * Arms the restore timer (running UNCUT_SCRIPT), then drops every IPv4 packet in and out of the
 * interface except TCP to and from sshd's own ports, so that the operator keeps its session.
 * Args: unit, seconds, interface, UNCUT_SCRIPT.
 */
const CUT_SCRIPT = `set -eu
unit=$1 secs=$2 iface=$3 uncut=$4
${ARG_CHECKS}
if iptables -w -n -L ${CUT_CHAIN} >/dev/null 2>&1; then echo "chain ${CUT_CHAIN} exists: another drill is cutting this host" >&2; exit 3; fi
ports=$(sshd -T 2>/dev/null | awk '$1 == "port" { print $2 }' | sort -u | paste -sd, -)
case "$ports" in ''|*[!0-9,]*) ports=22;; esac
systemd-run --quiet --unit="$unit" --on-active="$secs" /bin/sh -c "$uncut" sh "$iface"
iptables -w -N ${CUT_CHAIN}
iptables -w -A ${CUT_CHAIN} -p tcp -m multiport --dports "$ports" -j RETURN
iptables -w -A ${CUT_CHAIN} -p tcp -m multiport --sports "$ports" -j RETURN
iptables -w -A ${CUT_CHAIN} -j DROP
iptables -w -I INPUT 1 -i "$iface" -j ${CUT_CHAIN}
iptables -w -I OUTPUT 1 -o "$iface" -j ${CUT_CHAIN}
`;
/** Args: unit, interface, UNCUT_SCRIPT. */
const RESTORE_CUT_SCRIPT = `set -eu
/bin/sh -c "$3" sh "$2"
systemctl stop "$1.timer" 2>/dev/null || true
`;

export interface BreakTarget {
  method: DrillMethod;
  runID: string;
  /** The VIP's interface on the broken host. */
  interface: string;
  /** When the host undoes the break by itself. */
  safetySeconds: number;
}

/** The argv that breaks the host. */
export function breakArgv(t: BreakTarget): string[] {
  const unit = restoreUnitOf(t.runID);
  const secs = `${Math.ceil(t.safetySeconds)}s`;
  switch (t.method) {
    case "StopPrimaryDaemon":
      return ["sh", "-c", STOP_DAEMON_SCRIPT, "sh", unit, secs];
    case "CutHostNetwork":
      return ["sh", "-c", CUT_SCRIPT, "sh", unit, secs, t.interface, UNCUT_SCRIPT];
    default:
      throw new Error(`method ${t.method} is not implemented for an HAPair`);
  }
}

/** The argv that undoes the break (idempotent: also after a restart, or when the break half failed). */
export function restoreArgv(t: Omit<BreakTarget, "safetySeconds">): string[] {
  const unit = restoreUnitOf(t.runID);
  switch (t.method) {
    case "StopPrimaryDaemon":
      return ["sh", "-c", START_DAEMON_SCRIPT, "sh", unit];
    case "CutHostNetwork":
      return ["sh", "-c", RESTORE_CUT_SCRIPT, "sh", unit, t.interface, UNCUT_SCRIPT];
    default:
      throw new Error(`method ${t.method} is not implemented for an HAPair`);
  }
}

export function observeArgv(iface: string, vip: string, dnsName: string | undefined): string[] {
  return ["bash", "-c", OBSERVE_SCRIPT, "bash", iface, vip, dnsName ?? ""];
}

export interface HostView {
  reachable: boolean;
  vip: boolean;
  keepalivedActive: boolean;
  dns?: boolean | undefined;
}

export function parseObserve(stdout: string): Omit<HostView, "reachable"> {
  const kv = new Map(stdout.split("\n").flatMap((l) => (/^(\w+)=(.*)$/.test(l) ? [l.split("=", 2) as [string, string]] : [])));
  return { vip: kv.get("vip") === "yes", keepalivedActive: kv.get("keepalived") === "active", ...(kv.has("dns") ? { dns: kv.get("dns") === "yes" } : {}) };
}

/** One host's view; a host that does not answer (or a script that fails) is unreachable. */
export async function observeHost(runner: CommandRunner, iface: string, vip: string, dnsName: string | undefined): Promise<HostView> {
  try {
    const r = await runner.run(observeArgv(iface, vip, dnsName), { timeoutMs: 5_000 });
    if (r.code !== 0) return { reachable: false, vip: false, keepalivedActive: false };
    return { reachable: true, ...parseObserve(r.stdout) };
  } catch {
    return { reachable: false, vip: false, keepalivedActive: false };
  }
}

/** Both hosts' views as the machine reads them; the DNS query is the peer's. */
export function combine(active: HostView, peer: HostView, dnsChecked: boolean): DrillObservation {
  return {
    activeReachable: active.reachable,
    peerReachable: peer.reachable,
    vipOnActive: active.vip,
    vipOnPeer: peer.vip,
    keepalivedActiveOnActive: active.keepalivedActive,
    keepalivedActiveOnPeer: peer.keepalivedActive,
    ...(dnsChecked ? { serviceAnswers: peer.dns === true } : {}),
  };
}
