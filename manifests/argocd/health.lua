-- Argo CD health check for the ddi-ha.io kinds: DDIHost, HAPair, KeaHACluster, DhcpFailoverPeer,
-- FailoverDrill. One script serves all five; argocd-cm-patch.yaml carries it under each kind's key
-- (manifests/argocd/generate.sh writes that file from this one). It reads the operator's kstatus
-- contract, in kstatus's order: docs/adr/0014-argocd-health.md.
--
-- Argo CD runs custom health scripts in gopher-lua (Lua 5.1) with only the base, package and
-- table libraries open: no string or math library (so no ("x"):sub or string.format), no json
-- module, and os only through require. Keep to .., tostring, ipairs, pairs and table.concat.

-- What a Ready=False reason means to Argo CD. The reasons are the ones the operator writes
-- (src/status, the controller's CleanupFailed, the CLI's drift check); a test fails when they
-- and this table disagree.
--   Progressing: the operator or the daemons get there by themselves, nobody needs to act.
--   Suspended:   someone paused it on purpose and ends the pause by hand.
--   Degraded:    a fault: a person has to fix it, or the operator retries something that is
--                failing now (an apply rolled back, a host that does not answer).
-- A reason not listed is Degraded, so that a newer operator's fault never hides as Progressing.
local READY_FALSE = {
  -- every kind
  ApplyPending = "Progressing",              -- the first apply has not run yet
  ReloadPending = "Progressing",             -- a dead apply left a reload owed; the next apply finishes or rolls back
  ApplyFailed = "Degraded",                  -- rolled back; retried with backoff
  HostUnreachable = "Degraded",
  InvalidSpec = "Degraded",                  -- with Stalled
  ConfigRejected = "Degraded",               -- with Stalled: the daemon's own checker said no
  ReferenceNotFound = "Progressing",         -- a DDIHost it names is not there yet; applied once it is
  DriftDetected = "Degraded",               -- driftPolicy Report: a managed file was changed on the host
  CleanupFailed = "Degraded",                -- being deleted, but the host cleanup failed
  DeletedWithoutCleanup = "Degraded",        -- let go without cleanup: its DDIHost or credentials were gone; files left on the host
  RemovedFromHosts = "Progressing",          -- taken off its hosts and going; a daemon left nothing to serve was stopped (ADR 0028)
  -- HAPair
  SplitBrain = "Degraded",
  InterfaceNotFound = "Degraded",
  VIPNotInSubnet = "Degraded",
  KeepalivedNotRunning = "Degraded",
  VRRPFault = "Degraded",
  ServiceStateUnknown = "Degraded",
  ServiceNotInstalled = "Degraded",
  ServiceNotRunning = "Degraded",
  VIPNotHeld = "Degraded",
  FailedOver = "Degraded",                   -- the VIP is off its preferred node although preempt is set
  Maintenance = "Suspended",                 -- a node's DDIHost has spec.maintenance; the other serves alone
  HandingOver = "Progressing",               -- a node in maintenance still holds the VIP; keepalived gives it away (Kea, dhcpd: the partner is taking over)
  HandOverFailed = "Degraded",               -- Kea or dhcpd refused the maintenance hand-over command; retried each pass
  NoPartnerToTakeOver = "Degraded",          -- a maintenance, but no partner can serve: both in maintenance, passive-backup, partner down
  SwitchingOver = "Progressing",             -- a planned Kea hot-standby switchover (spec.preferredPrimary) is under way (ADR 0033)
  SwitchoverFailed = "Degraded",             -- Kea refused a switchover command (ha-maintenance-start/-cancel); retried each pass
  -- DhcpFailoverPeer
  DhcpdNotRunning = "Degraded",
  OmapiFailed = "Degraded",
  PartnerDown = "Degraded",                  -- Kea too: one side serves alone
  CommunicationsInterrupted = "Degraded",
  FailoverConverging = "Progressing",        -- startup, recover, …: dhcpd moves on to normal
  NotNormal = "Degraded",
  -- KeaHACluster
  PeerUnreachable = "Degraded",
  PeerTerminated = "Degraded",
  HANotConfigured = "Degraded",
  InMaintenance = "Suspended",               -- ha-maintenance-start; ha-maintenance-cancel ends it
  PeerConverging = "Progressing",            -- waiting, syncing, ready: Kea moves on to serving
  PeerNotServing = "Degraded",
  Impaired = "Degraded",                     -- the health itself, when no peer names a problem
  Down = "Degraded",
  -- DDIHost
  ClockOffsetTooLarge = "Degraded",
  OffsetNotMeasured = "Degraded",
  HostKeyMismatch = "Degraded",              -- with Stalled
  AuthenticationFailed = "Degraded",
  SudoRefused = "Degraded",
  CommandTimedOut = "Degraded",
  ConnectionLost = "Degraded",
  ObservationFailed = "Degraded",
  -- FailoverDrill: the last run's reason (Reconciling makes a run in progress Progressing)
  MissedObjective = "Degraded",
  TargetNotReady = "Degraded",               -- refused: the pair was not Ready; nothing was touched
  PeerNotHealthy = "Degraded",               -- aborted mid-run and restored
  VIPNotMoved = "Degraded",
  ServiceNotAnswering = "Degraded",
  NotRecovered = "Degraded",
  Interrupted = "Degraded",                  -- a controller restart cut the run short; restored
  BreakFailed = "Degraded",
}

local function condition(status, type)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function text(value)
  if value == nil or value == "" then
    return nil
  end
  return tostring(value)
end

-- The kind's key fields, as `kubectl get` shows them: "activeNode=primary".
local function summary(kind, status)
  local parts = {}
  local function add(name, value)
    if text(value) ~= nil then
      table.insert(parts, name .. "=" .. tostring(value))
    end
  end
  if kind == "HAPair" then
    add("activeNode", status.activeNode)
  elseif kind == "KeaHACluster" then
    add("health", status.health)
  elseif kind == "DhcpFailoverPeer" then
    add("primary", status.primaryState)
    add("secondary", status.secondaryState)
  elseif kind == "FailoverDrill" then
    add("phase", status.phase)
  end
  return table.concat(parts, " ")
end

local function health(state, message, prefix)
  local full = text(message) or ""
  if prefix ~= nil and prefix ~= "" then
    if full == "" then
      full = prefix
    else
      full = prefix .. ": " .. full
    end
  end
  return { status = state, message = full }
end

local status = obj.status
if status == nil or (status.observedGeneration == nil and status.conditions == nil) then
  return health("Progressing", "waiting for the operator to report a status")
end
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration ~= generation then
  return health("Progressing", "waiting for the operator to observe generation " .. tostring(generation)
    .. " (the status is for generation " .. tostring(status.observedGeneration) .. ")")
end

local prefix = summary(obj.kind, status)
local ready = condition(status, "Ready")
local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  return health("Degraded", stalled.message, prefix)
end
if obj.metadata.deletionTimestamp ~= nil then
  if ready ~= nil and ready.status == "False" and ready.reason == "CleanupFailed" then
    return health("Degraded", ready.message, prefix)
  end
  return health("Progressing", "being deleted: the operator removes its config from the hosts first")
end
-- A DDIHost in maintenance on purpose (spec.maintenance): whatever it does meanwhile (a reboot,
-- stopped daemons) is expected, and removing the field ends it.
local maintenance = condition(status, "Maintenance")
if obj.kind == "DDIHost" and maintenance ~= nil and maintenance.status == "True" then
  return health("Suspended", maintenance.message, prefix)
end
local reconciling = condition(status, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  return health("Progressing", reconciling.message, prefix)
end
if ready == nil then
  return health("Progressing", "waiting for the operator to report Ready")
end
if ready.status == "True" then
  return health("Healthy", ready.message, prefix)
end
if ready.status == "False" then
  if obj.kind == "KeaHACluster" then
    prefix = nil -- the operator's message already starts with "health Impaired: …"
  end
  return health(READY_FALSE[ready.reason] or "Degraded", ready.message, prefix)
end
return health("Progressing", "Ready is " .. tostring(ready.status) .. ": " .. (text(ready.message) or ""), prefix)
