// One line per resource status, for people: the lab's change log and `ddi-ha status`.

/** A one-line summary of a computed status, for the lab's "what changed" output. */
export function summarizeStatus(kind: string, status: Record<string, unknown>): string {
  const conditions = (status.conditions ?? []) as { type: string; status: string; reason: string; message: string }[];
  const ready = conditions.find((c) => c.type === "Ready");
  const flags = conditions.filter((c) => c.type !== "Ready" && c.status === "True" && ["Reconciling", "Stalled", "SplitBrain", "PartnerDown", "CommunicationsInterrupted"].includes(c.type));
  const parts = [`Ready=${ready?.status ?? "Unknown"}${ready ? ` (${ready.reason})` : ""}`];
  if (kind === "HAPair") {
    const nodes = (status.nodes ?? []) as { host: string; vrrpState: string; holdsVIP: boolean }[];
    parts.push(`active=${String(status.activeNode)}`, nodes.map((n) => `${n.host}:${n.vrrpState}${n.holdsVIP ? "+VIP" : ""}`).join(" "));
  } else if (kind === "DhcpFailoverPeer") {
    parts.push(`primary=${String(status.primaryState)} secondary=${String(status.secondaryState)}`);
  } else if (kind === "KeaHACluster") {
    const peers = (status.peers ?? []) as { name: string; state: string }[];
    parts.push(`health=${String(status.health)}`, peers.map((p) => `${p.name}:${p.state}`).join(" "));
  }
  if (flags.length) parts.push(flags.map((c) => c.type).join(","));
  // Why it is not Ready, in the status's own words (they name the host and the fix).
  if (ready && ready.status !== "True") parts.push(`\n      ${ready.message.length > 400 ? `${ready.message.slice(0, 399)}…` : ready.message}`);
  return parts.join("  ");
}
