// What each host's one probe per resync asks for, derived from the manifest set with no I/O; a
// cache of the latest probe per host shared by every object that uses the host; and the drift
// check that compares rendered files with the hashes the probe brought back.
import type { DDIHost, DDIResource, DhcpFailoverPeer, HAPair, KeaHACluster } from "../api/index.js";
import { DEFAULT_PATCH_OPS } from "../apply/checkers.js";
import { PENDING_RELOAD_PATH, parsePendingReload, rebasePatchedContent } from "../apply/plan.js";
import { failoverPeerName, includeFilePath } from "../daemons/dhcpd/index.js";
import { keepalivedInstanceNames, keepalivedStateFilePath } from "../daemons/keepalived/index.js";
import type { HostSession } from "../exec/host-io.js";
import { type HostProbe, type HostProbeRequest, contentSha256, dhcpdPoolJournal } from "../observe/index.js";
import { omapiKeyFromSet, renderManifestSet } from "../render/render-set.js";
import type { RenderedFile } from "../render/types.js";
import { type ManifestSet, objectKey } from "../validation/model.js";
import { withOnly } from "./drift.js";
import type { SessionProvider, VerifiedHostKey } from "./render-inputs.js";

export type Relationship = HAPair | KeaHACluster | DhcpFailoverPeer;

/** The relationships of the set that put something on `host` (by name, in its namespace). */
export function relationshipsOnHost(set: ManifestSet, host: Pick<DDIHost, "metadata">): Relationship[] {
  const ns = host.metadata.namespace;
  const name = host.metadata.name;
  return [...set.haPairs, ...set.keaClusters, ...set.failoverPeers].filter((r) => r.metadata.namespace === ns && hostNamesOf(r).includes(name));
}

/** The DDIHost names a relationship uses. */
export function hostNamesOf(r: DDIResource): string[] {
  switch (r.kind) {
    case "HAPair":
    case "DhcpFailoverPeer":
      return [r.spec.primary.host, r.spec.secondary.host];
    case "KeaHACluster":
      return r.spec.peers.map((p) => p.host);
    case "DDIHost":
      return [r.metadata.name];
  }
}

/**
 * Everything the host's statuses and drift checks need, for one exec: the hash of every file its
 * relationships render there (paths do not depend on render inputs, so an input-less render
 * finds them), the content of patched files and render inputs, keepalived's notify records, and
 * dhcpd's pool lines.
 */
export function probeRequestFor(set: ManifestSet, host: DDIHost): HostProbeRequest {
  const hash = new Set<string>();
  const read = new Set<string>();
  const journals: NonNullable<HostProbeRequest["journals"]>[number][] = [];
  const name = host.metadata.name;
  for (const r of relationshipsOnHost(set, host)) {
    for (const file of renderManifestSet(withOnly(set, r)).files) {
      if (file.host !== name) continue;
      (file.ownership === "patched" ? read : hash).add(file.path);
    }
    if (r.kind === "HAPair") {
      const names = keepalivedInstanceNames(r);
      for (const instance of [names.ipv4, ...(names.ipv6 ? [names.ipv6] : [])]) read.add(keepalivedStateFilePath(instance));
    } else if (r.kind === "KeaHACluster") {
      // The render inputs: every peer's config under HAOnly, the primary's as the source of truth.
      const primary = r.spec.peers.find((p) => p.role === "primary")?.host;
      if (r.spec.configSync === "HAOnly" || (!r.spec.dhcp4 && primary === name)) read.add(r.spec.configPath);
    } else {
      if (!omapiKeyFromSet(set, r) && r.spec.primary.host === name) read.add(includeFilePath(r.spec, failoverPeerName(r)));
      if (!journals.length) journals.push(dhcpdPoolJournal());
    }
  }
  // An apply that died after its swap left this marker: the files already match, but a daemon
  // still runs the old config. Read in the same exec, so a no-op resync still costs one.
  read.add(PENDING_RELOAD_PATH);
  for (const p of read) hash.delete(p);
  return { hash: [...hash].sort(), read: [...read].sort(), journals };
}

/** A probe that did not answer in time while its peer was seen taking the VIP: the node is in doubt. */
export class ProbeInDoubtError extends Error {}

/**
 * `probe`, or a ProbeInDoubtError after `afterMs` if it has not answered by then. Used in the
 * passes an address change on a peer started: a frozen node answers nothing until its SSH session
 * is declared dead (keepalive, about 20 s), and the move must not wait for that. `onLate` runs
 * once the late probe settles either way, so the real answer (or the real failure) follows.
 */
export function probeWithin(probe: Promise<HostProbe>, afterMs: number, hostName: string, onLate: () => void, unansweredForMs = afterMs): Promise<HostProbe> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void probe.then(onLate, onLate);
      reject(
        new ProbeInDoubtError(
          `${hostName} has not answered its probe for ${(unansweredForMs / 1000).toFixed(1)} s while a peer took the VIP: frozen, cut off or very slow; in doubt until it answers or its SSH session times out`,
        ),
      );
    }, afterMs);
  });
  return Promise.race([probe, late]).finally(() => clearTimeout(timer));
}

/**
 * probeWithin with one deadline per probe in flight, set by its first wait: a pass asks for a
 * host's probe more than once (render inputs, the drift check, the observation) and several passes
 * share one probe, so a wait of its own for each would put a frozen node in doubt only after the
 * sum of them (measured: 2 s for the paused host in bench:failover, not 1).
 */
export class DoubtDeadlines {
  private readonly deadlines = new WeakMap<Promise<HostProbe>, number>();

  constructor(
    private readonly afterMs: number,
    private readonly nowMs: () => number = Date.now,
  ) {}

  within(probe: Promise<HostProbe>, hostName: string, onLate: () => void): Promise<HostProbe> {
    const now = this.nowMs();
    let deadline = this.deadlines.get(probe);
    if (deadline === undefined) {
      deadline = now + this.afterMs;
      this.deadlines.set(probe, deadline);
    }
    return probeWithin(probe, Math.max(0, deadline - now), hostName, onLate, this.afterMs + Math.max(0, now - deadline));
  }
}

/**
 * The newest probe per host (`namespace/name`), and the one in flight: every object of a host
 * that asks within `maxAgeMs` of the last answer, or while one is on its way, shares it. That is
 * what makes a resync one exec per host however many objects use it.
 */
export class HostProbes {
  private readonly latest = new Map<string, HostProbe>();
  private readonly inflight = new Map<string, Promise<HostProbe>>();
  private readonly generation = new Map<string, number>();
  /** Probes started per host: with the transport's channel counts, the cost of one. */
  readonly taken = new Map<string, number>();

  constructor(private readonly nowMs: () => number = Date.now) {}

  /** The cached probe if younger than maxAgeMs, else the one in flight, else a new one from `take`. */
  get(hostKey: string, maxAgeMs: number, take: () => Promise<HostProbe>): Promise<HostProbe> {
    const cached = this.latest.get(hostKey);
    if (cached && this.nowMs() - cached.at.getTime() <= maxAgeMs) return Promise.resolve(cached);
    const running = this.inflight.get(hostKey);
    if (running) return running;
    const generation = this.generation.get(hostKey) ?? 0;
    this.taken.set(hostKey, (this.taken.get(hostKey) ?? 0) + 1);
    const probe = take()
      .then((p) => {
        // A probe that started before an invalidate (an apply changed the host) is not kept.
        if ((this.generation.get(hostKey) ?? 0) === generation) this.latest.set(hostKey, p);
        return p;
      })
      .finally(() => {
        if (this.inflight.get(hostKey) === probe) this.inflight.delete(hostKey);
      });
    this.inflight.set(hostKey, probe);
    return probe;
  }

  /** The newest probe of a host, however old. */
  peek(hostKey: string): HostProbe | undefined {
    return this.latest.get(hostKey);
  }

  /** Forgets the host's probe: the host changed (an apply, an event), so the next get asks again. */
  invalidate(hostKey: string): void {
    this.latest.delete(hostKey);
    this.inflight.delete(hostKey);
    this.generation.set(hostKey, (this.generation.get(hostKey) ?? 0) + 1);
  }

  forget(hostKey: string): void {
    this.invalidate(hostKey);
    this.generation.delete(hostKey);
  }
}

/**
 * A session whose readFile answers from the probe for the files the probe read (render inputs),
 * so rendering costs no exec; everything else goes to the real session.
 */
export function probedReads(session: HostSession & VerifiedHostKey, probe: HostProbe): HostSession & VerifiedHostKey {
  return {
    hostName: session.hostName,
    get observedHostKey() {
      return session.observedHostKey;
    },
    get hostKeyFingerprint() {
      return session.hostKeyFingerprint;
    },
    run: (argv, options) => session.run(argv, options),
    readFile: async (path) => {
      const file = probe.files.get(path);
      if (file && (file.content !== undefined || !file.exists)) return file.content;
      return session.readFile(path);
    },
    writeFile: (path, content, mode) => session.writeFile(path, content, mode),
    stream: (argv, onLine) => session.stream(argv, onLine),
    forward: (host, port) => session.forward(host, port),
  };
}

/** A SessionProvider whose reads come from each host's probe (see probedReads). */
export function probedSessionProvider(sessionOf: SessionProvider, probeOf: (host: DDIHost) => Promise<HostProbe>): SessionProvider {
  return async (host) => probedReads(await sessionOf(host), await probeOf(host));
}

export interface FileDrift {
  /** Hosts whose every file of this resource was compared. */
  checkedHosts: string[];
  /** `host:path` of files whose content is not what the spec renders (or that are missing). */
  differing: string[];
  /**
   * `host:path` of differing control files (`followedByDaemon`: the maintenance flag). They
   * follow a DDIHost's spec, not a hand edit, so they are applied whatever the driftPolicy and are
   * not drift. Not in `differing`.
   */
  control: string[];
  /**
   * `host:unit` of this resource's services that an unfinished apply left owed a reload
   * (`/run/ddi-ha/pending-reload`): the files may match while the daemon runs the old ones.
   */
  pendingReload: string[];
}

/**
 * Compares rendered files with what the hosts' probes found. Owned and shared files by hash;
 * a patched file (dhcpd.conf and its marked include line) by whether patching it again would
 * change it. Pure.
 */
export function driftFromProbes(files: readonly RenderedFile[], probeOf: (hostName: string) => HostProbe | undefined): FileDrift {
  const checked = new Set<string>();
  const differing: string[] = [];
  const control: string[] = [];
  const pendingReload = new Set<string>();
  for (const file of files) {
    const probe = probeOf(file.host);
    if (!probe) continue;
    checked.add(file.host);
    if (parsePendingReload(probe.files.get(PENDING_RELOAD_PATH)?.content).services.includes(file.service)) pendingReload.add(`${file.host}:${file.service}`);
    const live = probe.files.get(file.path);
    const differs = !live?.exists
      ? true
      : file.ownership === "patched"
        ? live.content === undefined || rebasePatchedContent(file, live.content, DEFAULT_PATCH_OPS) !== live.content
        : live.sha256 !== contentSha256(file.content);
    if (differs) (file.followedByDaemon ? control : differing).push(`${file.host}:${file.path}`);
  }
  return { checkedHosts: [...checked].sort(), differing: differing.sort(), control: control.sort(), pendingReload: [...pendingReload].sort() };
}

/** The `namespace/name` key of a DDIHost, as the transport and the probes know it. */
export const hostKeyOf = (host: Pick<DDIHost, "metadata">): string => objectKey(host.metadata.namespace, host.metadata.name);
