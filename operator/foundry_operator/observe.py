"""Observe: what the planner needs about one FoundryDeployment, read once (the I/O before a plan).

The kopf indexes (accounts, claims, published keys), one cached deployment listing per account
through the gateway, the catalogs and usages of the candidates' regions; and, only when placement
failed, where else the model is offered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from foundry_operator.accounts import resolve_principal
from foundry_operator.api.models import (
    FoundryDeploymentSpec,
    FoundryDeploymentStatus,
    effective_keys,
    split_account_ref,
)
from foundry_operator.azure.arm import AccountCoordinates, AzureGateway
from foundry_operator.catalog import QuotaUsage, RegionCatalog
from foundry_operator.errors import CLASSIFIED, PrincipalUnavailable
from foundry_operator.placement import Candidate, DeploymentRequest, evaluate, resolve_version
from foundry_operator.plans import AccountFacts, DeploymentFacts
from foundry_operator.publishing import PublishedEntry
from foundry_operator.refusals import Elsewhere
from foundry_operator.views import AccountView, KeyClaim, NameClaim

if TYPE_CHECKING:
    from foundry_operator.kube import KubeCore


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
    name_claims: Callable[[str], list[NameClaim]]
    published: Callable[[str, str], Iterable[PublishedEntry]]
    primary_endpoint: Callable[[str], str | None]
    all_accounts: Callable[[], list[AccountView]]
    key_claims: Callable[[str, str, Iterable[str]], list[KeyClaim]]  # claims on these keys


class Observer:
    def __init__(self, azure: AzureGateway, core: KubeCore, clock: Callable[[], datetime]) -> None:
        self.azure = azure
        self.core = core
        self.clock = clock

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
                    pending=bool(view is not None and problem and view.pending),
                    waiting=bool(view is not None and problem and not view.ready and not view.stalled),
                )
            )
        return candidates, usable

    async def coordinates(
        self, qualified_ref: str, world: World
    ) -> tuple[AccountView, AccountCoordinates] | None:
        namespace, name = split_account_ref(qualified_ref, "")
        view = world.account(namespace, name)
        if view is None or not view.ready:
            return None
        try:
            principal = await resolve_principal(self.core, view.namespace, view.spec)
        except PrincipalUnavailable:
            return None
        return view, view.coordinates(principal)

    async def observe(
        self, obj: ObjectRef, spec: FoundryDeploymentSpec, status: FoundryDeploymentStatus, world: World
    ) -> tuple[DeploymentFacts, dict[str, AccountCoordinates]]:
        """Everything the planner needs, read once: one (cached) deployment listing per account."""
        candidates, usable = await self._candidates(obj, spec, world)
        coordinates: dict[str, AccountCoordinates] = {}
        accounts: dict[str, AccountFacts] = {}
        for ref, (view, coords) in usable.items():
            accounts[ref] = _account_facts(ref, view, coords)
            coordinates[coords.arm_id.lower()] = coords
        retiring_accounts: dict[str, str] = {}
        for old in status.retiring:
            located = await self.coordinates(old.account_ref, world)
            if located is not None:
                retiring_accounts[old.account_ref] = located[1].arm_id
                coordinates[located[1].arm_id.lower()] = located[1]
        catalogs, usages = await self._world_for(usable)
        ids = list(coordinates)
        listings = await asyncio.gather(*(self.azure.list_deployments(coordinates[i]) for i in ids))
        facts = DeploymentFacts(
            owner=obj.owner,
            namespace=obj.namespace,
            name=obj.name,
            created=obj.created,
            keys=tuple(effective_keys(spec, obj.name)),
            spec=spec,
            status=status,
            candidates=tuple(candidates),
            accounts=accounts,
            catalogs=catalogs,
            usages=usages,
            deployments=dict(zip(ids, listings, strict=True)),
            name_claims=world.name_claims(spec.effective_deployment_name()),
            key_claims=world.key_claims(obj.namespace, spec.config_map_name, effective_keys(spec, obj.name)),
            now=self.clock(),
            retiring_accounts=retiring_accounts,
        )
        return facts, coordinates

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

    async def where_else(
        self,
        obj: ObjectRef,
        spec: FoundryDeploymentSpec,
        facts: DeploymentFacts,
        coordinates: Mapping[str, AccountCoordinates],
        world: World,
    ) -> Elsewhere:
        """Where the model is offered (model capacities API) and which other accounts could take it."""
        candidate_refs = {account.qualified for account in facts.accounts.values()}
        others = [
            view
            for view in world.all_accounts()
            if view.ready and view.location and view.allows(obj.namespace) and view.ref not in candidate_refs
        ]
        offers = [
            offer
            for catalog in facts.catalogs.values()
            for offer in catalog.offers_for(spec.model.name, spec.model.format)
        ]
        fitting: list[tuple[str, str]] = []
        tried: list[str] = []
        request = DeploymentRequest(
            spec.model.name, spec.model.format, spec.model.version, spec.sku.name.value, spec.sku.capacity
        )
        for view in others:
            ref = view.name if view.namespace == obj.namespace else view.ref
            try:
                coords = view.coordinates(await resolve_principal(self.core, view.namespace, view.spec))
                catalog = await self.azure.catalog(coords, str(view.location))
                usages = await self.azure.quota(coords, str(view.location))
            except CLASSIFIED:  # where else it fits is advice: an account that cannot be read is skipped
                continue
            offers += catalog.offers_for(spec.model.name, spec.model.format, view.kind)
            # Only an account that could take it as asked (version, SKU, capacity, quota) is named.
            candidate = Candidate(ref, view.spec.account_name, view.location, view.kind)
            if evaluate(candidate, request, catalog, usages, facts.now).eligible:
                fitting.append((ref, str(view.location)))
            else:
                tried.append(str(view.location))
        # The model capacities API needs a version: without one in the spec, the catalogs' default.
        resolved = resolve_version(offers, spec.model.version)
        version = spec.model.version or (resolved.version if resolved else None)
        first = next(iter(facts.accounts.values()))
        if version is None:
            return Elsewhere((), tuple(fitting), tuple(tried))
        try:
            offered = await self.azure.offered_regions(
                coordinates[first.arm_id.lower()],
                spec.model.format,
                spec.model.name,
                version,
                spec.sku.name.value,
            )
        except CLASSIFIED:
            offered = ()
        return Elsewhere(tuple(offered), tuple(fitting), tuple(tried))


def _account_facts(ref: str, view: AccountView, coords: AccountCoordinates) -> AccountFacts:
    return AccountFacts(
        ref=ref,
        namespace=view.namespace,
        name=view.name,
        account_name=view.spec.account_name,
        location=view.location,
        kind=view.kind,
        arm_id=coords.arm_id,
        endpoint=view.endpoint,
        endpoints=dict(view.endpoints),
    )
