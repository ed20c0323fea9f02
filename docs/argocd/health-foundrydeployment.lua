-- Argo CD health check for foundry.llmops.io/FoundryDeployment
-- (argocd-cm key: resource.customizations.health.foundry.llmops.io_FoundryDeployment).
-- Argo CD runs it in gopher-lua (Lua 5.1) with the live object as the global `obj`.
-- Rules (docs/gitops.md): deleting -> Progressing; no status, or status.observedGeneration behind
-- metadata.generation -> Progressing; Stalled=True -> Degraded; Ready=True -> Healthy (with the
-- RetirementSoon warning appended); Ready=False while Reconciling=True -> Progressing;
-- Ready=False otherwise -> Degraded; Ready missing or Unknown -> Progressing.
local hs = {}

local function condition(conditions, kind)
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

local function messageOf(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted: the operator is removing the Azure deployment and its ConfigMap keys"
  return hs
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if observed == nil or (generation ~= nil and generation > observed) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local conditions = obj.status.conditions or {}
local ready = condition(conditions, "Ready")
local stalled = condition(conditions, "Stalled")
local reconciling = condition(conditions, "Reconciling")

if isTrue(stalled) then
  hs.status = "Degraded"
  hs.message = messageOf(stalled, messageOf(ready, "Stalled: the spec needs a change"))
  return hs
end

if ready == nil or ready.status == "Unknown" then
  hs.status = "Progressing"
  hs.message = messageOf(reconciling, messageOf(ready, "Waiting for the Ready condition"))
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = messageOf(ready, "Ready")
  local retirement = condition(conditions, "RetirementSoon")
  if isTrue(retirement) then
    hs.message = hs.message .. " (warning: " .. messageOf(retirement, "the model retires soon") .. ")"
  end
  return hs
end

if isTrue(reconciling) then
  hs.status = "Progressing"
  hs.message = messageOf(reconciling, messageOf(ready, "Reconciling"))
  return hs
end

hs.status = "Degraded"
hs.message = messageOf(ready, "Not ready")
return hs
