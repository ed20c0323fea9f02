"""Publishing, the steady-state refresh, drift detection and deletion of a FoundryDeployment.

The parts of the reconciler that run without a plan: a Ready object's resync (no Azure writes,
no per-object reads) and the finalizer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
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
    is_true,
)
from foundry_operator.errors import AzureTransient
from foundry_operator.kube import ConfigMapPublisher
from foundry_operator.observe import ObjectRef, Observer, World
from foundry_operator.outcome import DeploymentOutcome, deployment_outcome, stalled
from foundry_operator.placement import retirement_warning
from foundry_operator.plans import owner_tag
from foundry_operator.publishing import PublishedEntry, endpoint_for_format
from foundry_operator.refusals import keys_taken
from foundry_operator.settings import OperatorSettings
from foundry_operator.views import entry_from_status, typed_status

if TYPE_CHECKING:
    from foundry_operator.kube import KubeCore


class Resync(Enum):
    """What a periodic look at one FoundryDeployment does (decided from its spec and status)."""

    RECONCILE = "reconcile"  # plan again: a drain may be due, a move may be possible, or it is not Ready
    CHECK = "check"  # Ready and settled: compare with Azure, refresh the ConfigMap (no Azure writes)
    SKIP = "skip"  # refused by Azure for this generation: nothing changes until the spec does


def resync_kind(
    spec: Mapping[str, Any], status: FoundryDeploymentStatus, conditions: Any, generation: int | None
) -> Resync:
    ready = is_true(conditions, READY)
    if status.retiring:
        return Resync.RECONCILE  # a drain may have ended while no handler was due (a restart, say)
    accounts = spec.get("accounts") or []
    if (
        ready
        and spec.get("placementPolicy") == "PreferFirst"
        and accounts
        and status.account_ref != accounts[0]
    ):
        return Resync.RECONCILE  # a more preferred candidate may have become eligible
    if ready:
        return Resync.CHECK
    if is_true(conditions, STALLED) and status.failed_generation == generation:
        return Resync.SKIP
    # Placement may succeed now (a model rolled out, quota raised, an account became Ready), or a
    # transient failure of an earlier resync is due for another try.
    return Resync.RECONCILE


@dataclass(frozen=True)
class Drift:
    """What differs in Azure from what this object deployed: `changes` are repaired by a write;
    `upgrade` is Azure's own version upgrade under an auto-upgrade option (accepted, not reverted)."""

    changes: tuple[str, ...] = ()
    upgrade: str | None = None


class SteadyState:
    azure: AzureGateway
    core: KubeCore
    publisher: ConfigMapPublisher
    settings: OperatorSettings
    clock: Callable[[], datetime]
    observer: Observer

    def _retirement(
        self, offer: ModelOffer, now: datetime, previous: FoundryDeploymentStatus, outcome: DeploymentOutcome
    ) -> None:
        warning = retirement_warning(offer, now, timedelta(days=self.settings.retirement_window_days))
        if warning:
            outcome.conditions.append(ConditionUpdate(RETIREMENT_SOON, True, "RetirementAnnounced", warning))
            if previous.retirement_warning != warning:
                outcome.warn("RetirementSoon", warning)  # once per announcement, not every resync
        else:
            outcome.conditions.append(ConditionUpdate(RETIREMENT_SOON, False, "NoRetirement"))
        outcome.status.retirement_warning = warning
        outcome.status.retirement_date = (
            offer.retirement_date.date().isoformat() if offer.retirement_date else None
        )
        outcome.status.replacement = offer.replacement

    async def refresh(
        self, obj: ObjectRef, raw_spec: Mapping[str, Any], status: Mapping[str, Any], world: World
    ) -> DeploymentOutcome:
        """Steady state: no Azure writes and no per-object reads; the cached catalog and the ConfigMap only."""
        outcome = deployment_outcome()
        spec = FoundryDeploymentSpec.model_validate(dict(raw_spec))
        entry = entry_from_status(obj.namespace, obj.name, obj.created, status)
        previous = typed_status(status)
        namespace, account = split_account_ref(previous.account_ref or "", obj.namespace)
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
            self._retirement(offer, self.clock(), previous, outcome)
            if offer.retirement_date is not None and offer.retirement_date <= self.clock():
                message = f"{offer.label()} was retired on {offer.retirement_date.date().isoformat()}" + (
                    f"; replacement: {offer.replacement}: change spec.model" if offer.replacement else ""
                )
                return stalled(outcome, "ModelRetired", message)
        endpoint, flavour = endpoint_for_format(view.endpoints, view.endpoint, entry.model_format)
        outcome.status.endpoint, outcome.status.api_flavor = endpoint, flavour
        entry = replace(
            entry,
            endpoint=endpoint or entry.endpoint,
            api_flavor=flavour,
            keys=tuple(effective_keys(spec, obj.name)),
        )
        await self._publish(obj, spec, previous, entry, world, outcome)
        return outcome

    async def _publish(
        self,
        obj: ObjectRef,
        spec: FoundryDeploymentSpec,
        previous: FoundryDeploymentStatus,
        entry: PublishedEntry,
        world: World,
        outcome: DeploymentOutcome,
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
        previous_config_map = previous.config_map_name
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
        outcome.status.published_keys = published
        if lost:
            blocker = keys_taken(
                {key: rendering.key_conflicts[key][0] for key in lost}, obj.namespace, config_map
            )
            update = ConditionUpdate(PUBLISHED, False, blocker.code, blocker.text)
            stalled(outcome, blocker.code, blocker.text, update)
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
        current = typed_status(status)
        resource_id = current.resource_id or ""
        done = "nothing was deployed"
        if resource_id and spec.deletion_policy.value == "Delete":
            ref = current.account_ref
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
            done = f"left Azure deployment {current.deployment_name} in place (deletionPolicy Orphan)"
        if spec.deletion_policy.value == "Delete":
            done += await self._delete_retiring(obj, current, world)
        config_map = current.config_map_name or spec.config_map_name
        await self.publisher.publish(
            obj.namespace,
            config_map,
            world.primary_endpoint(obj.namespace),
            seed=world.published(obj.namespace, config_map),
            owner=obj.owner,
            entry=None,
        )
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
    ) -> Drift:
        """What differs in Azure from what this object last deployed (one listing per account)."""
        current = typed_status(status)
        ref, name = current.account_ref, current.deployment_name
        if not ref or not name:
            return Drift()
        namespace, account = split_account_ref(str(ref), obj.namespace)
        view = world.account(namespace, account)
        if view is None or not view.ready:
            return Drift()
        principal = await resolve_principal(self.core, view.namespace, view.spec)
        listing = await self.azure.list_deployments(view.coordinates(principal))
        actual = listing.get(str(name).lower())
        if actual is None:
            return Drift((f"Azure deployment {name} on {view.spec.account_name} was deleted out of band",))
        spec = FoundryDeploymentSpec.model_validate(dict(raw_spec))
        # Compared with what the spec asks for (the status may have recorded a drifted value).
        wanted_capacity = spec.sku.capacity if spec.sku.capacity is not None else current.capacity
        differences = []
        upgrade = None
        if actual.capacity != wanted_capacity:
            differences.append(f"capacity {wanted_capacity} -> {actual.capacity}")
        if spec.version_upgrade_option == VersionUpgradeOption.NO_AUTO_UPGRADE:
            if spec.model.version and actual.model_version != spec.model.version:
                differences.append(f"version {spec.model.version} -> {actual.model_version}")
        elif current.model_version and actual.model_version != current.model_version:
            # Azure's own upgrade (the option allows it): not drift, not reverted; a plan publishes it.
            upgrade = f"{current.model_version} -> {actual.model_version}"
        if (actual.sku_name or "").lower() != spec.sku.name.value.lower():
            differences.append(f"sku {spec.sku.name.value} -> {actual.sku_name}")
        changes = (
            (f"Azure deployment {name} changed out of band: {', '.join(differences)}",) if differences else ()
        )
        return Drift(changes, upgrade)


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
