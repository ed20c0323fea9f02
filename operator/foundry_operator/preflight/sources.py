"""Where the preflight reads Azure from: live (AzureGateway, the operator's own client) or a snapshot.

Both answer the same questions, so `check` cannot tell them apart: where an account is and what
it already holds, a region's catalog and quota usages, and where a model is offered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Protocol, TypeVar

from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

from foundry_operator.api.models import Management
from foundry_operator.azure.arm import (
    OWNER_TAG,
    AccountCoordinates,
    AzureGateway,
    DeploymentSnapshot,
    RoleGrant,
)
from foundry_operator.azure.writes import error_code, error_message
from foundry_operator.catalog import QuotaUsage, RegionCatalog, normalize_region
from foundry_operator.preflight.facts import AccountFacts, ExistingDeployment, OfferedQuery
from foundry_operator.preflight.manifests import AccountManifest
from foundry_operator.preflight.snapshot import AccountEntry, CatalogSnapshot, DeploymentEntry

T = TypeVar("T")


class SourceError(Exception):
    """Azure (or the snapshot) cannot answer at all: the check cannot be run (exit code 2)."""


class CatalogUnavailable(Exception):
    """One region's catalog is unknown; candidates there are reported, the rest is still checked."""


class CatalogSource(Protocol):
    def describe(self) -> str:
        """One line for the report: where the facts came from."""
        ...

    async def account(self, account: AccountManifest) -> AccountFacts: ...

    async def catalog(self, subscription_id: str, region: str) -> RegionCatalog: ...

    async def usages(self, subscription_id: str, region: str) -> Mapping[str, QuotaUsage] | None: ...

    async def offered_regions(self, query: OfferedQuery) -> tuple[str, ...]: ...


def _planned(account: AccountManifest) -> AccountFacts:
    """A Managed account that does not exist yet: the operator would create it where its spec says."""
    return AccountFacts(account.spec.location, account.spec.kind.value, planned=True)


def _not_found(account: AccountManifest, where: str) -> AccountFacts:
    spec = account.spec
    return AccountFacts(
        None,
        None,
        problem=(
            f"Azure account {spec.account_name} (resource group {spec.resource_group}, subscription "
            f"{spec.subscription_id}) {where}; check FoundryAccount {account.ref}, or set "
            "spec.management: Managed with spec.location to have the operator create it"
        ),
    )


# -- live Azure --------------------------------------------------------------------------------


def _existing(snapshot: DeploymentSnapshot) -> ExistingDeployment:
    return ExistingDeployment(
        snapshot.name,
        snapshot.model_format,
        snapshot.model_name,
        snapshot.model_version,
        snapshot.sku_name,
        snapshot.capacity,
        snapshot.tags.get(OWNER_TAG),
    )


def _to_entry(deployment: ExistingDeployment) -> DeploymentEntry:
    return DeploymentEntry(
        name=deployment.name,
        format=deployment.model_format,
        model=deployment.model_name,
        version=deployment.model_version,
        sku=deployment.sku_name,
        capacity=deployment.capacity,
        owner=deployment.owner,
    )


def _resource_group(resource_id: str) -> str | None:
    parts = resource_id.split("/")
    lowered = [part.lower() for part in parts]
    if "resourcegroups" in lowered:
        index = lowered.index("resourcegroups")
        return parts[index + 1] if index + 1 < len(parts) else None
    return None


def subscription_coordinates(subscription_id: str) -> AccountCoordinates:
    """Subscription-level reads (catalog, usages, model capacities) need only the subscription: the
    gateway keeps one client per identity + subscription, so any account of it would do the same."""
    return AccountCoordinates(subscription_id, "", "")


class LiveSource:
    """Azure through the operator's AzureGateway, as the operator's own identity (AZURE_* variables).

    Per-account credentials (spec.credentials Secret) are not used: the preflight runs outside the
    cluster and cannot read Secrets, so its identity needs Reader on every account it checks.
    """

    def __init__(self, gateway: AzureGateway) -> None:
        self.gateway = gateway

    def describe(self) -> str:
        return f"live Azure ({self.gateway.azure.resource_manager_endpoint})"

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except ClientAuthenticationError as exc:
            raise SourceError(f"cannot authenticate to Azure while {what}: {_first_line(exc)}") from exc
        except HttpResponseError:
            raise  # the caller decides: an account-level refusal is a finding, not a failure of the run
        except AzureError as exc:
            raise SourceError(f"cannot reach Azure while {what}: {_first_line(exc)}") from exc

    async def _account_facts(self, coords: AccountCoordinates) -> AccountFacts:
        """Region, kind and deployments of an Azure account; no region when it does not exist."""
        what = f"reading account {coords.account_name}"
        try:
            found = await self._call(what, lambda: self.gateway.get_account(coords))
            if found is None:
                return AccountFacts(None, None)
            listing = await self._call(what, lambda: self.gateway.list_deployments(coords))
        except HttpResponseError as exc:
            code = error_code(exc) or f"HTTP {exc.status_code}"
            return AccountFacts(None, None, problem=f"Azure refused {what}: {code}: {error_message(exc)}")
        deployments = {name: _existing(snapshot) for name, snapshot in listing.items()}
        grants, problem = await self._role_grants(coords)
        return AccountFacts(
            found.location,
            found.kind,
            deployments=deployments,
            role_grants=grants,
            role_grants_problem=problem,
        )

    async def _role_grants(
        self, coords: AccountCoordinates
    ) -> tuple[tuple[RoleGrant, ...] | None, str | None]:
        """The role assignments at the account, for spec.consumers; a refusal is reported, not fatal."""
        what = f"listing the role assignments of {coords.account_name}"
        try:
            listing = await self._call(what, lambda: self.gateway.role_assignments(coords))
        except HttpResponseError as exc:
            return None, f"Azure refused {what}: {error_code(exc) or exc.status_code}: {error_message(exc)}"
        if listing.refused is not None:
            return None, (
                f"Azure refused {what}: {listing.refused} (the checking identity needs "
                "Microsoft.Authorization/roleAssignments/read, e.g. Reader)"
            )
        return listing.grants, None

    async def account(self, account: AccountManifest) -> AccountFacts:
        spec = account.spec
        facts = await self._account_facts(
            AccountCoordinates(spec.subscription_id, spec.resource_group, spec.account_name)
        )
        if facts.region is None and facts.problem is None:
            return (
                _planned(account)
                if spec.management == Management.MANAGED
                else _not_found(account, "does not exist")
            )
        return facts

    async def list_accounts(self, subscription_id: str) -> list[AccountEntry]:
        """Every Cognitive Services account of the subscription, with its existing deployments."""
        what = f"listing the accounts of subscription {subscription_id}"
        client = self.gateway.client(subscription_coordinates(subscription_id))

        async def listing() -> list[AccountEntry]:
            found = []
            async for item in client.accounts.list():
                resource_group = _resource_group(item.id or "")
                if resource_group and item.name and item.location:
                    found.append(
                        AccountEntry(
                            resource_group=resource_group,
                            name=item.name,
                            location=normalize_region(item.location),
                            kind=item.kind or "",
                        )
                    )
            return found

        try:
            accounts = await self._call(what, listing)
        except HttpResponseError as exc:
            raise SourceError(f"Azure refused {what}: {error_message(exc)}") from exc
        listings = await asyncio.gather(*(self._deployments(subscription_id, entry) for entry in accounts))
        return [
            entry.model_copy(update={"deployments": deployments})
            for entry, deployments in zip(accounts, listings, strict=True)
        ]

    async def _deployments(self, subscription_id: str, entry: AccountEntry) -> list[DeploymentEntry]:
        coords = AccountCoordinates(subscription_id, entry.resource_group, entry.name)
        try:
            listing = await self._call(
                f"listing the deployments of {entry.name}", lambda: self.gateway.list_deployments(coords)
            )
        except HttpResponseError:
            return []  # readable account, unreadable deployments: the region and kind still help
        return [_to_entry(_existing(snapshot)) for snapshot in listing.values()]

    async def catalog(self, subscription_id: str, region: str) -> RegionCatalog:
        what = f"listing the model catalog of {region}"
        coords = subscription_coordinates(subscription_id)
        try:
            return await self._call(what, lambda: self.gateway.catalog(coords, region))
        except HttpResponseError as exc:
            raise CatalogUnavailable(f"Azure refused {what}: {error_message(exc)}") from exc

    async def usages(self, subscription_id: str, region: str) -> Mapping[str, QuotaUsage] | None:
        what = f"listing quota usages of {region}"
        coords = subscription_coordinates(subscription_id)
        try:
            return await self._call(what, lambda: self.gateway.quota(coords, region))
        except HttpResponseError as exc:
            raise CatalogUnavailable(f"Azure refused {what}: {error_message(exc)}") from exc

    async def offered_regions(self, query: OfferedQuery) -> tuple[str, ...]:
        version = query.model_version
        if not version:
            return ()  # the model capacities API requires a version
        coords = subscription_coordinates(query.subscription_id)
        try:
            return await self._call(
                "asking where the model is offered",
                lambda: self.gateway.offered_regions(
                    coords, query.model_format, query.model_name, version, query.sku_name
                ),
            )
        except HttpResponseError:
            return ()  # only a hint for the fix line: its absence must not fail the check


# -- offline: a snapshot -----------------------------------------------------------------------


def _from_entry(entry: DeploymentEntry) -> ExistingDeployment:
    return ExistingDeployment(
        entry.name, entry.format, entry.model, entry.version, entry.sku, entry.capacity, entry.owner
    )


class SnapshotSource:
    """A catalog snapshot (`catalog --snapshot`): the CI check without credentials."""

    def __init__(self, snapshot: CatalogSnapshot, path: Path | None = None) -> None:
        self.snapshot = snapshot
        self.path = path

    def describe(self) -> str:
        taken = self.snapshot.taken_at.strftime("%Y-%m-%d %H:%M UTC")
        name = f" {self.path}" if self.path else ""
        return f"catalog snapshot{name} (subscription {self.snapshot.subscription_id}, taken {taken})"

    def _same_subscription(self, subscription_id: str) -> bool:
        return subscription_id.lower() == self.snapshot.subscription_id.lower()

    async def account(self, account: AccountManifest) -> AccountFacts:
        spec = account.spec
        entry = (
            self.snapshot.find_account(spec.resource_group, spec.account_name)
            if self._same_subscription(spec.subscription_id)
            else None
        )
        if entry is not None:
            deployments = {d.name.lower(): _from_entry(d) for d in entry.deployments}
            return AccountFacts(normalize_region(entry.location), entry.kind, deployments=deployments)
        if spec.management == Management.MANAGED:
            return _planned(account)
        if not self._same_subscription(spec.subscription_id):
            return _not_found(
                account,
                f"is not in the catalog snapshot, which is of subscription {self.snapshot.subscription_id}",
            )
        return _not_found(account, "is not in the catalog snapshot")

    async def catalog(self, subscription_id: str, region: str) -> RegionCatalog:
        # Catalogs barely differ between subscriptions, so a Managed account of another one still
        # gets its region's catalog; its quota (below) is unknown instead.
        catalog = self.snapshot.catalog(region)
        if catalog is None:
            listed = ", ".join(sorted(self.snapshot.regions)) or "none"
            raise CatalogUnavailable(
                f"the catalog snapshot has no catalog of {normalize_region(region)} (it has: {listed}); "
                f"write it again with `foundry-operator catalog --region {normalize_region(region)} --snapshot ...`"
            )
        return catalog

    async def usages(self, subscription_id: str, region: str) -> Mapping[str, QuotaUsage] | None:
        return self.snapshot.usages(region) if self._same_subscription(subscription_id) else None

    async def offered_regions(self, query: OfferedQuery) -> tuple[str, ...]:
        regions: set[str] = set()
        for entry in self.snapshot.offered:
            if (
                entry.format.lower() == query.model_format.lower()
                and entry.name.lower() == query.model_name.lower()
                and entry.sku.lower() == query.sku_name.lower()
                and (query.model_version is None or entry.version == query.model_version)
            ):
                regions.update(normalize_region(region) for region in entry.regions)
        if not regions:  # an older or narrower snapshot: fall back to the catalogs it holds
            for region in self.snapshot.regions:
                catalog = self.snapshot.catalog(region)
                offers = catalog.offers_for(query.model_name, query.model_format) if catalog else []
                if any(
                    (query.model_version is None or o.version == query.model_version)
                    and o.sku(query.sku_name)
                    for o in offers
                ):
                    regions.add(region)
        return tuple(sorted(regions))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else type(exc).__name__
