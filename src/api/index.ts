import type { z } from "zod";
import { type KindDefinition, API_GROUP_VERSION } from "./common.js";
import { ddiHostKind, type DDIHostSpec } from "./ddihost.js";
import { haPairKind, type HAPairSpec } from "./hapair.js";
import { keaHAClusterKind, type KeaHAClusterSpec } from "./keahacluster.js";
import { dhcpFailoverPeerKind, type DhcpFailoverPeerSpec } from "./dhcpfailoverpeer.js";
import { failoverDrillKind, type FailoverDrillSpec } from "./failoverdrill.js";

export * from "./common.js";
export * from "./ddihost.js";
export * from "./hapair.js";
export * from "./keahacluster.js";
export * from "./dhcpfailoverpeer.js";
export * from "./failoverdrill.js";

export const KINDS: readonly KindDefinition[] = [ddiHostKind, haPairKind, keaHAClusterKind, dhcpFailoverPeerKind, failoverDrillKind];
/** The kinds the relationship controller reconciles (a FailoverDrill is an action on one of them). */
export const RELATIONSHIP_KINDS: readonly KindDefinition[] = KINDS.filter((k) => k !== failoverDrillKind);

export function kindDefinition(kind: string): KindDefinition | undefined {
  return KINDS.find((k) => k.kind === kind);
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  generation?: number;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** A custom resource after validation: spec has every default filled in. */
export interface Resource<Kind extends string, Spec, Status = unknown> {
  apiVersion: typeof API_GROUP_VERSION;
  kind: Kind;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

export type DDIHost = Resource<"DDIHost", DDIHostSpec>;
export type HAPair = Resource<"HAPair", HAPairSpec>;
export type KeaHACluster = Resource<"KeaHACluster", KeaHAClusterSpec>;
export type DhcpFailoverPeer = Resource<"DhcpFailoverPeer", DhcpFailoverPeerSpec>;
export type DDIResource = DDIHost | HAPair | KeaHACluster | DhcpFailoverPeer;
export type FailoverDrill = Resource<"FailoverDrill", FailoverDrillSpec>;

export type SpecOf<K extends KindDefinition> = z.output<K["spec"]>;
