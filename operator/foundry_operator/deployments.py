"""FoundryDeployment reconciliation: resolve candidates, place, deploy, publish (DESIGN.md section 4).

The kopf handlers call `DeploymentReconciler` and only translate its `Outcome` into a status
patch, Events and retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException

from foundry_operator.access import review_access
from foundry_operator.accounts import PrincipalUnavailable, resolve_principal
from foundry_operator.api.models import FoundryDeploymentSpec, effective_keys, split_account_ref
from foundry_operator.azure.arm import (
    OWNER_TAG,
    AccountCoordinates,
    AzureGateway,
    DeploymentSnapshot,
    DesiredDeployment,
    is_validation_error,
)
from foundry_operator.azure.writes import ConflictPersists, error_code, error_message
from foundry_operator.catalog import ModelOffer, QuotaUsage, RegionCatalog
from foundry_operator.conditions import (
    CONFLICT,
    DEPLOYED,
    PLACED,
    PUBLISHED,
    READY,
    RECONCILING,
    RETIREMENT_SOON,
    STALLED,
    ConditionUpdate,
)
from foundry_operator.kube import ConfigMapPublisher
from foundry_operator.outcome import Outcome
from foundry_operator.placement import (
    Candidate,
    DeploymentRequest,
    Placement,
    Refusal,
    place,
    refusal_message,
    resolve_version,
    retirement_warning,
)
from foundry_operator.publishing import PublishedEntry, endpoint_for_format
from foundry_operator.settings import OperatorSettings
from foundry_operator.views import AccountView, Claim, entry_from_status

TRANSIENT_AZURE_ERRORS = (
    ServiceRequestError,
    ServiceResponseError,
    ConflictPersists,
    OSError,
    asyncio.TimeoutError,
)


@dataclass(frozen=True)
class ObjectRef:
    namespace: str
    name: str
    created: str
    generation: int | None

    @property
    def owner(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class World:
    """What the operator's indexes know when a handler runs (lookups, so handlers stay thin)."""

    account: Callable[[str, str], AccountView | None]
    claims: Callable[[str, str], list[Claim]]
    published: Callable[[str, str], Iterable[PublishedEntry]]
    primary_endpoint: Callable[[str], str | None]
    all_accounts: Callable[[], list[AccountView]]


class AzureTransient(Exception):
    """Azure could not be reached or kept refusing for a passing reason; retry later."""


def owner_tag(owner: str) -> str:
    return owner.replace("/", ".")


class DeploymentReconciler:
    def __init__(
        self,
        azure: AzureGateway,
        core: CoreV1Api,
        publisher: ConfigMapPublisher,
        settings: OperatorSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.azure = azure
        self.core = core
        self.publisher = publisher
        self.settings = settings
        self.clock = clock
        # Claims taken in this process before they show in any status (two objects racing for one name).
        self._pending_claims: dict[tuple[str, str], str] = {}

    # -- candidates ------------------------------------------------------------------------------

    async def _candidates(
        self,
        obj: ObjectRef,
        spec: FoundryDeploymentSpec,
        world: World,
    ) -> tuple[list[Candidate], dict[str, tuple[AccountView, AccountCoordinates]]]:
        candidates: list[Candidate] = []
        usable: dict[str, tuple[AccountView, AccountCoordinates]] = {}
        for index, ref in enumerate(spec.accounts):
            namespace, name = split_account_ref(ref, obj.namespace)
            view = world.account(namespace, name)
            field = f"spec.accounts[{index}]"
            problem: str | None = None
            if view is None:
                problem = f"FoundryAccount {namespace}/{name} ({field}) does not exist: create it, or correct {field}"
            elif not view.allows(obj.namespace):
                problem = (
                    f"FoundryAccount {namespace}/{name} ({field}) does not allow namespace {obj.namespace}: "
                    f"add it to that account's spec.allowedNamespaces"
                )
            elif not view.ready:
                problem = f"FoundryAccount {namespace}/{name} is not Ready: {view.message}"
            else:
                try:
                    principal = await resolve_principal(self.core, view.namespace, view.spec)
                except PrincipalUnavailable as exc:
                    problem = str(exc)
                else:
                    usable[ref] = (view, view.coordinates(principal))
            candidates.append(
                Candidate(
                    ref,
                    view.spec.account_name if view else name,
                    view.location if view else None,
                    view.kind if view else None,
                    problem,
                )
            )
        return candidates, usable

    async def _world_for(
        self,
        usable: Mapping[str, tuple[AccountView, AccountCoordinates]],
    ) -> tuple[dict[str, RegionCatalog], dict[str, dict[str, QuotaUsage]]]:
        by_region: dict[str, AccountCoordinates] = {}
        for view, coords in usable.values():
            if view.location:
                by_region.setdefault(view.location, coords)
        regions = list(by_region)
        catalogs = await asyncio.gather(*(self.azure.catalog(by_region[r], r) for r in regions))
        usages = await asyncio.gather(*(self.azure.quota(by_region[r], r) for r in regions))
        return dict(zip(regions, catalogs, strict=True)), dict(zip(regions, usages, strict=True))

    # -- the whole loop --------------------------------------------------------------------------

    async def reconcile(
        self, obj: ObjectRef, raw_spec: Mapping[str, Any], status: Mapping[str, Any], world: World
    ) -> Outcome:
        outcome = Outcome()
        spec = FoundryDeploymentSpec.model_validate(dict(raw_spec))
        try:
            return await self._reconcile(obj, spec, status, world, outcome)
        except ConflictPersists as exc:
            # Azure answered, but someone else's write kept the account busy through every attempt.
            message = (
                f"RequestConflict: {_first_line(exc)} (another writer, not this operator, keeps the "
                "Azure account busy; retrying with backoff)"
            )
            return self._transient(outcome, "AccountBusy", message)
        except TRANSIENT_AZURE_ERRORS as exc:
            return self._transient(outcome, "AzureUnavailable", f"Azure did not answer: {_first_line(exc)}")
        except ClientAuthenticationError as exc:
            return self._transient(outcome, "AzureAuthenticationFailed", _first_line(exc), factor=4)
        except HttpResponseError as exc:
            code = error_code(exc) or f"HTTP{exc.status_code}"
            factor = 4 if exc.status_code in (401, 403) else 1
            return self._transient(outcome, code, f"Azure: {error_message(exc)}", factor=factor)
        except ApiException as exc:
            return self._transient(
                outcome, "KubernetesUnavailable", f"Kubernetes API: HTTP {exc.status} {exc.reason}"
            )

    def _transient(self, outcome: Outcome, reason: str, message: str, factor: float = 1) -> Outcome:
        outcome.conditions += [
            ConditionUpdate(READY, False, reason, message),
            ConditionUpdate(RECONCILING, True, reason, message),
            ConditionUpdate(STALLED, False, reason),
        ]
        outcome.retry_after = self.settings.transient_retry_seconds * factor
        outcome.retry_message = message
        return outcome

    def _stalled(self, outcome: Outcome, reason: str, message: str, *extra: ConditionUpdate) -> Outcome:
        outcome.conditions += [
            ConditionUpdate(READY, False, reason, message),
            ConditionUpdate(STALLED, True, reason, message),
            ConditionUpdate(RECONCILING, False, reason),
            *extra,
        ]
        outcome.warn(reason, message)
        return outcome

    async def _reconcile(
        self,
        obj: ObjectRef,
        spec: FoundryDeploymentSpec,
        status: Mapping[str, Any],
        world: World,
        outcome: Outcome,
    ) -> Outcome:
        deployment_name = spec.effective_deployment_name()
        keys = effective_keys(spec, obj.name)
        candidates, usable = await self._candidates(obj, spec, world)
        outcome.status["configMapName"] = spec.config_map_name
        if not usable:
            waiting = [c for c in candidates if c.problem and "is not Ready" in c.problem]
            reasons = "; ".join(f"{c.ref}: {c.problem}" for c in candidates)
            outcome.status["candidates"] = [
                _without_nulls(
                    {"account": c.ref, "region": c.region, "eligible": False, "reason": c.problem or ""}
                )
                for c in candidates
            ]
            if waiting:
                self._transient(outcome, "AccountNotReady", f"no candidate account is usable yet: {reasons}")
                outcome.retry_after = min(outcome.retry_after or 3.0, 3.0)
                return outcome
            return self._stalled(
                outcome,
                "NoUsableAccount",
                f"no candidate account can be used: {reasons}",
                ConditionUpdate(PLACED, False, "NoUsableAccount", reasons),
            )

        catalogs, usages = await self._world_for(usable)
        current_ref = status.get("accountRef") if status.get("accountRef") in usable else None
        deployed_capacity = {current_ref: int(status.get("capacity") or 0)} if current_ref else {}
        request = DeploymentRequest(
            spec.model.name, spec.model.format, spec.model.version, spec.sku.name.value, spec.sku.capacity
        )
        now = self.clock()
        placement = place(
            request,
            candidates,
            catalogs,
            usages,
            now,
            current_account=current_ref,
            deployed_capacity=deployed_capacity,
        )
        if placement.chosen is None:
            offered, alternatives = await self._where_else(obj, spec, usable, catalogs, world)
            outcome.status["candidates"] = _candidate_status(placement)
            reason = (placement.refusal or Refusal.ACCOUNT_UNAVAILABLE).value
            message = refusal_message(request, placement.verdicts, offered) + (
                f". {alternatives}" if alternatives else ""
            )
            if reason == Refusal.MODEL_NOT_OFFERED.value and not offered and not alternatives:
                unknown = all(v.suggestion is None for v in placement.verdicts)
                if unknown:  # in no region at all: most likely a typo in the name
                    message += (
                        f". No region offers {spec.model.format} model {spec.model.name}: check spec.model.name "
                        "and spec.model.format against the catalog (foundry-operator catalog)"
                    )
            return self._stalled(outcome, reason, message, ConditionUpdate(PLACED, False, reason, message))

        chosen = placement.chosen
        assert chosen.offer is not None and chosen.sku is not None and chosen.capacity is not None
        view, coords = usable[chosen.candidate.ref]
        outcome.status["candidates"] = _candidate_status(placement)

        # Ownership: one object per Azure deployment (account + name); the older object keeps it.
        rival = self._rival(coords.arm_id, deployment_name, obj, world)
        if rival is not None:
            message = (
                f"Azure deployment {deployment_name} on account {view.spec.account_name} belongs to FoundryDeployment "
                f"{rival}; set spec.deploymentName to another name or delete one of them"
            )
            return self._stalled(
                outcome,
                "Conflict",
                message,
                ConditionUpdate(CONFLICT, True, "DeploymentOwned", message),
                ConditionUpdate(PLACED, False, "Conflict", message),
            )

        # Keys an older object already publishes: refused before paying for a deployment no key
        # would point at (a deployed object that later loses a key is handled when publishing).
        held = self._keys_held(obj, keys, spec.config_map_name, world)
        if held and not status.get("resourceId"):
            winners = ", ".join(f"{key} (held by {owner})" for key, owner in sorted(held.items()))
            message = (
                f"keys already published by another FoundryDeployment: {winners}; choose other spec.keys"
            )
            return self._stalled(
                outcome, "KeyConflict", message, ConditionUpdate(PUBLISHED, False, "KeyConflict", message)
            )

        existing = await self.azure.get_deployment(coords, deployment_name)
        if (
            existing is not None
            and not _same_model(existing, spec)
            and existing.tags.get(OWNER_TAG) != owner_tag(obj.owner)
        ):
            message = (
                f"Azure deployment {deployment_name} on account {view.spec.account_name} already exists with model "
                f"{existing.model_format}/{existing.model_name}, not {spec.model.format}/{spec.model.name}; it is not "
                f"managed by this object: set spec.deploymentName to another name"
            )
            return self._stalled(
                outcome,
                "Conflict",
                message,
                ConditionUpdate(CONFLICT, True, "ForeignDeployment", message),
                ConditionUpdate(PLACED, False, "Conflict", message),
            )
        self._pending_claims[(coords.arm_id.lower(), deployment_name.lower())] = obj.owner
        outcome.conditions += [
            ConditionUpdate(CONFLICT, False, "NoConflict"),
            ConditionUpdate(PLACED, True, "Placed", placement.message),
        ]

        # Without a pinned version, a version Azure upgraded to is accepted rather than reverted.
        version = (
            spec.model.version
            or (existing.model_version if existing and _same_model(existing, spec) else None)
            or chosen.offer.version
        )
        desired = DesiredDeployment(
            name=deployment_name,
            model_format=chosen.offer.format,
            model_name=chosen.offer.name,
            model_version=version,
            sku_name=chosen.sku.name,
            capacity=chosen.capacity,
            version_upgrade_option=spec.version_upgrade_option.value,
            rai_policy_name=spec.rai_policy_name,
            owner=obj.owner,
        )
        snapshot = await self._deploy(
            coords, view, desired, existing, obj, outcome, replacement=chosen.offer.replacement
        )
        if snapshot is None:
            return outcome

        # A placement that moved (spec.accounts or deploymentName changed): remove the old deployment.
        await self._retire_previous(status, coords, deployment_name, spec, outcome)

        endpoint, flavour = endpoint_for_format(view.endpoints, view.endpoint, desired.model_format)
        retirement = chosen.offer.retirement_date.date().isoformat() if chosen.offer.retirement_date else None
        outcome.status.update(
            accountRef=chosen.candidate.ref,
            account=view.name,
            accountNamespace=view.namespace,
            region=view.location,
            endpoint=endpoint,
            apiFlavor=flavour,
            deploymentName=snapshot.name or deployment_name,
            resourceId=snapshot.resource_id,
            modelName=snapshot.model_name or desired.model_name,
            modelFormat=snapshot.model_format or desired.model_format,
            modelVersion=snapshot.model_version or desired.model_version,
            skuName=snapshot.sku_name or desired.sku_name,
            capacity=snapshot.capacity if snapshot.capacity is not None else desired.capacity,
            provisioningState=snapshot.provisioning_state,
            capabilities=dict(chosen.offer.capabilities),
        )
        if (snapshot.provisioning_state or "").lower() == "failed":
            message = f"Azure reports provisioningState Failed for {deployment_name}"
            return self._stalled(
                outcome, "DeploymentFailed", message, ConditionUpdate(DEPLOYED, False, "Failed", message)
            )
        outcome.conditions.append(
            ConditionUpdate(
                DEPLOYED,
                True,
                "Succeeded",
                f"{deployment_name} ({desired.model_name} {desired.model_version}, "
                f"{desired.sku_name} {desired.capacity}) on {view.spec.account_name}",
            )
        )

        self._retirement(chosen.offer, now, status, outcome)
        # Before the keys are published: who of spec.consumers cannot call the model there.
        outcome.conditions.append(await review_access(self.azure, coords, spec, obj.owner, status, outcome))

        entry = PublishedEntry(
            owner=obj.owner,
            created=obj.created,
            keys=tuple(keys),
            endpoint=endpoint or "",
            api_flavor=flavour,
            deployment_name=outcome.status["deploymentName"],
            model_name=outcome.status["modelName"],
            model_version=outcome.status["modelVersion"],
            model_format=outcome.status["modelFormat"],
            sku_name=outcome.status["skuName"],
            capacity=outcome.status["capacity"],
            account=view.spec.account_name,
            region=view.location or "",
            capabilities=tuple(sorted(chosen.offer.capabilities)),
            retirement_date=retirement,
        )
        return await self._publish(obj, spec, status, entry, world, outcome)

    async def _where_else(
        self,
        obj: ObjectRef,
        spec: FoundryDeploymentSpec,
        usable: Mapping[str, tuple[AccountView, AccountCoordinates]],
        catalogs: Mapping[str, RegionCatalog],
        world: World,
    ) -> tuple[tuple[str, ...], str]:
        """Where the model is offered (model capacities API) and which other accounts could take it."""
        candidate_refs = {view.ref for view, _ in usable.values()}
        others = [
            view
            for view in world.all_accounts()
            if view.ready and view.location and view.allows(obj.namespace) and view.ref not in candidate_refs
        ]
        offers = [
            offer
            for catalog in catalogs.values()
            for offer in catalog.offers_for(spec.model.name, spec.model.format)
        ]
        fitting: list[str] = []
        for view in others:
            try:
                principal = await resolve_principal(self.core, view.namespace, view.spec)
                catalog = await self.azure.catalog(view.coordinates(principal), str(view.location))
            except (PrincipalUnavailable, HttpResponseError, *TRANSIENT_AZURE_ERRORS):
                continue
            found = catalog.offers_for(spec.model.name, spec.model.format, view.kind)
            offers += found
            if resolve_version(found, spec.model.version) is not None:
                ref = view.name if view.namespace == obj.namespace else view.ref
                fitting.append(f"{ref} ({view.location})")
        alternatives = (
            f"FoundryAccount {', '.join(fitting)} offers it: add it to spec.accounts" if fitting else ""
        )
        # The model capacities API needs a version: without one in the spec, the catalogs' default.
        resolved = resolve_version(offers, spec.model.version)
        version = spec.model.version or (resolved.version if resolved else None)
        if version is None:
            return (), alternatives
        try:
            first = next(iter(usable.values()))[1]
            offered = await self.azure.offered_regions(
                first, spec.model.format, spec.model.name, version, spec.sku.name.value
            )
        except (HttpResponseError, *TRANSIENT_AZURE_ERRORS):
            offered = ()
        return offered, alternatives

    def _retirement(
        self, offer: ModelOffer, now: datetime, status: Mapping[str, Any], outcome: Outcome
    ) -> None:
        warning = retirement_warning(offer, now, timedelta(days=self.settings.retirement_window_days))
        if warning:
            outcome.conditions.append(ConditionUpdate(RETIREMENT_SOON, True, "RetirementAnnounced", warning))
            if status.get("retirementWarning") != warning:
                outcome.warn("RetirementSoon", warning)  # once per announcement, not every resync
        else:
            outcome.conditions.append(ConditionUpdate(RETIREMENT_SOON, False, "NoRetirement"))
        outcome.status["retirementWarning"] = warning
        outcome.status["retirementDate"] = (
            offer.retirement_date.date().isoformat() if offer.retirement_date else None
        )
        outcome.status["replacement"] = offer.replacement

    async def refresh(
        self, obj: ObjectRef, raw_spec: Mapping[str, Any], status: Mapping[str, Any], world: World
    ) -> Outcome:
        """Steady state: no Azure writes and no per-object reads; the cached catalog and the ConfigMap only."""
        outcome = Outcome()
        spec = FoundryDeploymentSpec.model_validate(dict(raw_spec))
        entry = entry_from_status(obj.namespace, obj.name, obj.created, status)
        namespace, account = split_account_ref(str(status.get("accountRef") or ""), obj.namespace)
        view = world.account(namespace, account)
        if entry is None or view is None or not view.location:
            return outcome
        principal = await resolve_principal(self.core, view.namespace, view.spec)
        coords = view.coordinates(principal)
        outcome.conditions.append(await review_access(self.azure, coords, spec, obj.owner, status, outcome))
        catalog = await self.azure.catalog(coords, view.location)
        offer = next(
            (
                o
                for o in catalog.offers_for(entry.model_name, entry.model_format, view.kind)
                if o.version == entry.model_version
            ),
            None,
        )
        if offer is not None:
            self._retirement(offer, self.clock(), status, outcome)
            if offer.retirement_date is not None and offer.retirement_date <= self.clock():
                message = f"{offer.label()} was retired on {offer.retirement_date.date().isoformat()}" + (
                    f"; replacement: {offer.replacement}: change spec.model" if offer.replacement else ""
                )
                return self._stalled(outcome, "ModelRetired", message)
        endpoint, flavour = endpoint_for_format(view.endpoints, view.endpoint, entry.model_format)
        outcome.status.update(endpoint=endpoint, apiFlavor=flavour)
        entry = replace(
            entry,
            endpoint=endpoint or entry.endpoint,
            api_flavor=flavour,
            keys=tuple(effective_keys(spec, obj.name)),
        )
        return await self._publish(obj, spec, status, entry, world, outcome)

    def _rival(self, account_id: str, deployment_name: str, obj: ObjectRef, world: World) -> str | None:
        holders = [c for c in world.claims(account_id, deployment_name) if c.owner != obj.owner]
        older = [c for c in holders if (c.created, c.owner) < (obj.created, obj.owner)]
        if older:
            return min(older, key=lambda c: (c.created, c.owner)).owner
        pending = self._pending_claims.get((account_id.lower(), deployment_name.lower()))
        if pending is not None and pending != obj.owner and any(c.owner == pending for c in holders):
            return pending
        return None

    def _keys_held(self, obj: ObjectRef, keys: list[str], config_map: str, world: World) -> dict[str, str]:
        """Which of `keys` an older object publishes in the ConfigMap (key -> owner)."""
        held: dict[str, str] = {}
        for entry in world.published(obj.namespace, config_map):
            if entry.owner != obj.owner and (entry.created, entry.owner) < (obj.created, obj.owner):
                held.update({key: entry.owner for key in entry.keys if key in keys})
        return held

    def release_claims(self, owner: str) -> None:
        for key in [key for key, holder in self._pending_claims.items() if holder == owner]:
            del self._pending_claims[key]

    async def _deploy(
        self,
        coords: AccountCoordinates,
        view: AccountView,
        desired: DesiredDeployment,
        existing: DeploymentSnapshot | None,
        obj: ObjectRef,
        outcome: Outcome,
        replacement: str | None = None,
    ) -> DeploymentSnapshot | None:
        """Create, update, adopt or leave the Azure deployment. None: the outcome already says why not."""
        model_changed = existing is not None and not _same_model_names(existing, desired)
        changes = ["new"] if existing is None else desired.differs_from(existing)
        needs_write = (
            existing is None
            or existing.in_progress
            or model_changed
            or bool(changes)
            or (existing.provisioning_state or "").lower() == "failed"
        )
        if not needs_write:
            assert existing is not None
            if existing.tags.get(OWNER_TAG) != owner_tag(obj.owner) and not outcome.status.get("resourceId"):
                outcome.note(
                    "Adopted", f"adopted existing Azure deployment {desired.name} on {view.spec.account_name}"
                )
            return existing
        try:
            if model_changed:
                # Azure cannot change a deployment's model in place: delete ours, then create anew.
                await self.azure.delete_deployment(coords, desired.name, view.location)
                outcome.note("Replacing", f"replacing {desired.name}: model changed to {desired.model_name}")
            snapshot = await self.azure.put_deployment(coords, desired, view.location)
        except HttpResponseError as exc:
            if not is_validation_error(exc):
                raise
            code = error_code(exc) or f"HTTP{exc.status_code}"
            message = (
                f"Azure refused {desired.name} on {view.spec.account_name}: {code}: {error_message(exc)} "
                f"(fix: {_fix_for_refusal(code, replacement)})"
            )
            self._stalled(outcome, code, message, ConditionUpdate(DEPLOYED, False, code, message))
            outcome.status["failedGeneration"] = obj.generation
            return None
        verb = "Created" if existing is None else "Updated"
        detail = "" if existing is None else f" ({', '.join(changes) or 'refreshed'})"
        outcome.note(
            verb,
            f"{verb.lower()} Azure deployment {desired.name} on {view.spec.account_name} "
            f"in {view.location}{detail}",
        )
        return snapshot

    async def _retire_previous(
        self,
        status: Mapping[str, Any],
        coords: AccountCoordinates,
        deployment_name: str,
        spec: FoundryDeploymentSpec,
        outcome: Outcome,
    ) -> None:
        previous_id = str(status.get("resourceId") or "")
        current_id = f"{coords.arm_id}/deployments/{deployment_name}".lower()
        if not previous_id or previous_id.lower() == current_id or spec.deletion_policy.value != "Delete":
            return
        old = _coordinates_from_id(previous_id, coords)
        if old is None:
            return
        old_coords, old_name = old
        await self.azure.delete_deployment(old_coords, old_name, status.get("region"))
        outcome.note(
            "Moved", f"removed the previous Azure deployment {old_name} on {old_coords.account_name}"
        )

    async def _publish(
        self,
        obj: ObjectRef,
        spec: FoundryDeploymentSpec,
        status: Mapping[str, Any],
        entry: PublishedEntry,
        world: World,
        outcome: Outcome,
    ) -> Outcome:
        config_map = spec.config_map_name
        primary = world.primary_endpoint(obj.namespace)
        rendering = await self.publisher.publish(
            obj.namespace,
            config_map,
            primary,
            seed=world.published(obj.namespace, config_map),
            owner=obj.owner,
            entry=entry,
        )
        previous_config_map = status.get("configMapName")
        if previous_config_map and previous_config_map != config_map:
            await self.publisher.publish(
                obj.namespace,
                previous_config_map,
                primary,
                seed=world.published(obj.namespace, previous_config_map),
                owner=obj.owner,
                entry=None,
            )
        lost = sorted(key for key, (_, loser) in rendering.key_conflicts.items() if loser == obj.owner)
        published = [key for key in entry.keys if key not in lost]
        outcome.status["publishedKeys"] = published
        if lost:
            winners = ", ".join(f"{key} (held by {rendering.key_conflicts[key][0]})" for key in lost)
            message = (
                f"keys already published by another FoundryDeployment: {winners}; choose other spec.keys"
            )
            return self._stalled(
                outcome, "KeyConflict", message, ConditionUpdate(PUBLISHED, False, "KeyConflict", message)
            )
        message = f"published {', '.join(published)} in ConfigMap {config_map}"
        outcome.conditions += [
            ConditionUpdate(PUBLISHED, True, "Published", message),
            ConditionUpdate(
                READY,
                True,
                "Ready",
                f"{entry.deployment_name} serves {', '.join(published)} "
                f"from {entry.account} ({entry.region})",
            ),
            ConditionUpdate(STALLED, False, "Ready"),
            ConditionUpdate(RECONCILING, False, "Ready"),
        ]
        return outcome

    # -- deletion --------------------------------------------------------------------------------

    async def delete(
        self, obj: ObjectRef, raw_spec: Mapping[str, Any], status: Mapping[str, Any], world: World
    ) -> str:
        """Remove the Azure deployment (policy Delete) and the keys. Raises to keep the finalizer."""
        spec = FoundryDeploymentSpec.model_validate(dict(raw_spec))
        resource_id = str(status.get("resourceId") or "")
        done = "nothing was deployed"
        if resource_id and spec.deletion_policy.value == "Delete":
            ref = status.get("accountRef")
            namespace, name = split_account_ref(str(ref), obj.namespace) if ref else ("", "")
            view = world.account(namespace, name) if ref else None
            if view is None:
                raise AzureTransient(
                    f"FoundryAccount {namespace}/{name} is gone; cannot delete {resource_id}"
                )
            principal = await resolve_principal(self.core, view.namespace, view.spec)
            located = _coordinates_from_id(resource_id, view.coordinates(principal))
            if located is not None:
                coords, deployment_name = located
                await self.azure.delete_deployment(coords, deployment_name, view.location)
                done = f"deleted Azure deployment {deployment_name} on {coords.account_name}"
        elif resource_id:
            done = f"left Azure deployment {status.get('deploymentName')} in place (deletionPolicy Orphan)"
        config_map = str(status.get("configMapName") or spec.config_map_name)
        await self.publisher.publish(
            obj.namespace,
            config_map,
            world.primary_endpoint(obj.namespace),
            seed=world.published(obj.namespace, config_map),
            owner=obj.owner,
            entry=None,
        )
        self.release_claims(obj.owner)
        return done

    # -- drift -----------------------------------------------------------------------------------

    async def drift(
        self, obj: ObjectRef, raw_spec: Mapping[str, Any], status: Mapping[str, Any], world: World
    ) -> str | None:
        """What differs in Azure from what this object last deployed (one listing per account)."""
        ref = status.get("accountRef")
        name = status.get("deploymentName")
        if not ref or not name:
            return None
        namespace, account = split_account_ref(str(ref), obj.namespace)
        view = world.account(namespace, account)
        if view is None or not view.ready:
            return None
        principal = await resolve_principal(self.core, view.namespace, view.spec)
        listing = await self.azure.list_deployments(view.coordinates(principal))
        actual = listing.get(str(name).lower())
        if actual is None:
            return f"Azure deployment {name} on {view.spec.account_name} was deleted out of band"
        spec = FoundryDeploymentSpec.model_validate(dict(raw_spec))
        # Compared with what the spec asks for (the status may have recorded a drifted value).
        wanted_capacity = spec.sku.capacity if spec.sku.capacity is not None else status.get("capacity")
        differences = []
        if actual.capacity != wanted_capacity:
            differences.append(f"capacity {wanted_capacity} -> {actual.capacity}")
        if spec.model.version and actual.model_version != spec.model.version:
            differences.append(f"version {spec.model.version} -> {actual.model_version}")
        if (actual.sku_name or "").lower() != spec.sku.name.value.lower():
            differences.append(f"sku {spec.sku.name.value} -> {actual.sku_name}")
        if differences:
            return f"Azure deployment {name} changed out of band: {', '.join(differences)}"
        return None


def _fix_for_refusal(code: str, replacement: str | None) -> str:
    """What to change when Azure refuses a write as invalid (it is not retried until the spec changes)."""
    if code in ("ServiceModelDeprecating", "ServiceModelDeprecated"):
        return "change spec.model" + (f" to the catalog's replacement, {replacement}" if replacement else "")
    if code == "InsufficientQuota":
        return "lower spec.sku.capacity, or request more quota for the region"
    if code == "CannotChangeDeploymentModel":
        return "set spec.deploymentName to a new name"
    return "change spec.model or spec.sku as Azure's message says"


def _candidate_status(placement: Placement) -> list[dict[str, Any]]:
    chosen_ref = placement.chosen.candidate.ref if placement.chosen else None
    return [
        _without_nulls(
            {
                "account": verdict.candidate.ref,
                "region": verdict.candidate.region,
                "eligible": verdict.eligible,
                "reason": ("chosen: " if verdict.candidate.ref == chosen_ref else "")
                + verdict.reason
                + (f" (fix: {verdict.suggestion})" if verdict.suggestion else ""),
            }
        )
        for verdict in placement.verdicts
    ]


def _without_nulls(entry: dict[str, Any]) -> dict[str, Any]:
    """A status list entry without null fields: the schema types them as strings, not nullable."""
    return {key: value for key, value in entry.items() if value is not None}


def _same_model(existing: DeploymentSnapshot, spec: FoundryDeploymentSpec) -> bool:
    return (
        existing.model_name.lower() == spec.model.name.lower()
        and existing.model_format.lower() == spec.model.format.lower()
    )


def _same_model_names(existing: DeploymentSnapshot, desired: DesiredDeployment) -> bool:
    return (
        existing.model_name.lower() == desired.model_name.lower()
        and existing.model_format.lower() == desired.model_format.lower()
    )


def _coordinates_from_id(resource_id: str, like: AccountCoordinates) -> tuple[AccountCoordinates, str] | None:
    """Parse .../resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a/deployments/d."""
    parts = resource_id.strip("/").split("/")
    lowered = [part.lower() for part in parts]
    try:
        subscription = parts[lowered.index("subscriptions") + 1]
        group = parts[lowered.index("resourcegroups") + 1]
        account = parts[lowered.index("accounts") + 1]
        deployment = parts[lowered.index("deployments") + 1]
    except (ValueError, IndexError):
        return None
    return AccountCoordinates(subscription, group, account, like.principal), deployment


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else type(exc).__name__


def seed_entries(values: Iterable[PublishedEntry | Any]) -> Iterator[PublishedEntry]:
    # Lazy: the publisher reads a seed once per ConfigMap, so building a list of every object's
    # entry on each publish made each resync round quadratic in the number of objects.
    return (value for value in values if isinstance(value, PublishedEntry))
