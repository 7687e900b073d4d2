// Shared by the observe-*.test.ts integration tests: a host lab, the real SSH transport to it,
// DDIHost objects for its hosts, the real apply engine, and a way to wait for streamed events.
import { randomInt } from "node:crypto";
import type { DDIHost } from "../../src/api/index.js";
import { type ApplyResult, applyHostFiles } from "../../src/apply/index.js";
import type { HostSession } from "../../src/exec/host-io.js";
import type { RenderedFile } from "../../src/render/types.js";
import type { LabHost } from "../lab/lab.js";
import { type ApplyLab, startApplyLab, withTimeout } from "./apply-lab.js";

export { withTimeout };

export interface ObserveLab extends ApplyLab {
  hosts: LabHost[];
  /** name → DDIHost, as the renderers want it. */
  hostMap: Map<string, DDIHost>;
}

export async function startObserveLab(hostCount: number): Promise<ObserveLab> {
  // Short timeouts: a paused host must show up as unreachable within seconds, not minutes.
  const env = await startApplyLab(hostCount, { connectTimeoutMs: 5_000, commandTimeoutMs: 20_000, keepaliveIntervalMs: 2_000, keepaliveCountMax: 2 });
  return { ...env, hosts: env.lab.hosts, hostMap: new Map(env.ddiHosts.map((h) => [h.metadata.name, h])) };
}

/** The rendered files of each host through the real apply engine, all hosts at once. */
export async function applyAll(sessions: readonly HostSession[], files: readonly RenderedFile[]): Promise<ApplyResult[]> {
  return Promise.all(sessions.map((s) => applyHostFiles(s, files.filter((f) => f.host === s.hostName))));
}

/** A VRID unlikely to collide with another test's pair on a shared Docker host. */
export function randomVrid(): number {
  return randomInt(1, 256);
}

/** Polls `probe` until it returns something other than undefined, or fails with the last value seen. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000, intervalMs = 250): Promise<T> {
  const start = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Resolves with the first item (already in `items` or pushed later) that matches. */
export function waitForItem<T>(items: T[], match: (item: T) => boolean, timeoutMs: number, what: string, from = 0): Promise<T> {
  return eventually(what, async () => items.slice(from).find(match), timeoutMs, 20);
}

