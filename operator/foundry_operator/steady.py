"""Publishing, the steady-state refresh, drift detection and deletion of a FoundryDeployment.

The parts of the reconciler that run without a plan: a Ready object's resync (no Azure writes,
no per-object reads) and the finalizer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from foundry_operator.access import review_access
from foundry_operator.accounts import resolve_principal
from foundry_operator.api.models import (
    FoundryDeploymentSpec,
    FoundryDeploymentStatus,
    VersionUpgradeOption,
    effective_keys,
    split_account_ref,
)
from foundry_operator.azure.arm import (
    OWNER_TAG,
    AccountCoordinates,
    AzureGateway,
)
from foundry_operator.catalog import ModelOffer
from foundry_operator.conditions import (
    PUBLISHED,
    READY,
    RECONCILING,
    RETIREMENT_SOON,
    STALLED,
    ConditionUpdate,
)
from foundry_operator.kube import ConfigMapPublisher
from foundry_operator.observe import ObjectRef, Observer, World, typed_status
from foundry_operator.outcome import Outcome
from foundry_operator.placement import retirement_warning
from foundry_operator.planning import (
    owner_tag,
    stalled,
)
from foundry_operator.publishing import PublishedEntry, endpoint_for_format
from foundry_operator.settings import OperatorSettings
from foundry_operator.views import entry_from_status

if TYPE_CHECKING:
    from foundry_operator.kube import KubeCore


class AzureTransient(Exception):
    """Azure could not be reached or kept refusing for a passing reason; retry later."""


class SteadyState:
    azure: AzureGateway
    core: KubeCore
    publisher: ConfigMapPublisher
    settings: OperatorSettings
    clock: Callable[[], datetime]
    observer: Observer

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
                return stalled(outcome, "ModelRetired", message)
        endpoint, flavour = endpoint_for_format(view.endpoints, view.endpoint, entry.model_format)
        outcome.status.update(endpoint=endpoint, apiFlavor=flavour)
        entry = replace(
            entry,
            endpoint=endpoint or entry.endpoint,
            api_flavor=flavour,
            keys=tuple(effective_keys(spec, obj.name)),
        )
        await self._publish(obj, spec, status, entry, world, outcome)
        return outcome

    def release_claims(self, owner: str) -> None:
        for key in [key for key, claim in self.observer.pending_claims.items() if claim.owner == owner]:
            del self.observer.pending_claims[key]

    async def _publish(
        self,
        obj: ObjectRef,
        spec: FoundryDeploymentSpec,
        status: Mapping[str, Any],
        entry: PublishedEntry,
        world: World,
        outcome: Outcome,
    ) -> None:
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
            stalled(
                outcome, "KeyConflict", message, ConditionUpdate(PUBLISHED, False, "KeyConflict", message)
            )
            return
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
        if spec.deletion_policy.value == "Delete":
            done += await self._delete_retiring(obj, typed_status(status), world)
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

    async def _delete_retiring(self, obj: ObjectRef, status: FoundryDeploymentStatus, world: World) -> str:
        """Replaced deployments still draining go with the object, if it created them."""
        deleted: list[str] = []
        for old in status.retiring:
            located = await self.observer.coordinates(old.account_ref, world)
            if located is None:
                raise AzureTransient(
                    f"FoundryAccount {old.account_ref} is not usable; cannot delete {old.resource_id}"
                )
            coords = located[1]
            actual = (await self.azure.list_deployments(coords)).get(old.deployment_name.lower())
            if actual is not None and actual.tags.get(OWNER_TAG) == owner_tag(obj.owner):
                await self.azure.delete_deployment(coords, old.deployment_name, old.region)
                deleted.append(old.deployment_name)
        return f"; deleted the replaced {', '.join(deleted)}" if deleted else ""

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
        if spec.version_upgrade_option == VersionUpgradeOption.NO_AUTO_UPGRADE:
            if spec.model.version and actual.model_version != spec.model.version:
                differences.append(f"version {spec.model.version} -> {actual.model_version}")
        elif status.get("modelVersion") and actual.model_version != status.get("modelVersion"):
            # Azure's own upgrade (the option allows it): not reverted; the repair publishes it.
            differences.append(
                f"version {status.get('modelVersion')} -> {actual.model_version} (Azure's upgrade)"
            )
        if (actual.sku_name or "").lower() != spec.sku.name.value.lower():
            differences.append(f"sku {spec.sku.name.value} -> {actual.sku_name}")
        if differences:
            return f"Azure deployment {name} changed out of band: {', '.join(differences)}"
        return None


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


def seed_entries(values: Iterable[PublishedEntry | Any]) -> Iterator[PublishedEntry]:
    # Lazy: the publisher reads a seed once per ConfigMap, so building a list of every object's
    # entry on each publish made each resync round quadratic in the number of objects.
    return (value for value in values if isinstance(value, PublishedEntry))
