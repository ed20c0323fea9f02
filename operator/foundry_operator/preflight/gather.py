"""Read what the manifests need from a source, concurrently: accounts, then their regions' catalogs and quota.

Every account named in the manifests is read, not only the candidates of some deployment, so a
failing deployment can be told which other account would take it. Each (subscription, region)
catalog is read once, however many deployments use it, as the operator does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

from foundry_operator.preflight.facts import AccountFacts, OfferedQuery, World, region_key
from foundry_operator.preflight.manifests import AccountManifest, ManifestSet
from foundry_operator.preflight.progress import Steps
from foundry_operator.preflight.sources import CatalogSource, CatalogUnavailable

T = TypeVar("T")


async def _step(steps: Steps, label: str, call: Awaitable[T]) -> T:
    result = await call
    steps.done(label)
    return result


async def gather_world(manifests: ManifestSet, source: CatalogSource, steps: Steps) -> World:
    world = World()
    unique: dict[tuple[str, str, str], AccountManifest] = {}
    for account in manifests.accounts:
        unique.setdefault(account.azure_key, account)
    steps.expect(len(unique), "reading accounts")
    facts: list[AccountFacts] = await asyncio.gather(
        *(_step(steps, f"read account {a.spec.account_name}", source.account(a)) for a in unique.values())
    )
    world.accounts.update(zip(unique, facts, strict=True))

    regions: dict[tuple[str, str], tuple[str, str]] = {}
    for account, fact in zip(unique.values(), facts, strict=True):
        if fact.region and fact.problem is None:
            key = region_key(account.spec.subscription_id, fact.region)
            regions.setdefault(key, (account.spec.subscription_id, key[1]))
    steps.expect(len(regions), "reading catalogs and quota")

    async def read_region(subscription_id: str, region: str) -> None:
        key = region_key(subscription_id, region)
        try:
            catalog, usages = await asyncio.gather(
                source.catalog(subscription_id, region), source.usages(subscription_id, region)
            )
        except CatalogUnavailable as exc:
            world.missing_catalogs[key] = str(exc)
        else:
            world.catalogs[key] = catalog
            if usages is not None:
                world.usages[key] = usages
        steps.done(f"read catalog and quota of {region}")

    await asyncio.gather(*(read_region(sub, region) for sub, region in regions.values()))
    return world


async def gather_offered(
    queries: Iterable[OfferedQuery], source: CatalogSource, world: World, steps: Steps
) -> None:
    """Where are the models that could not be placed offered? Only asked for those (one call each)."""
    pending = {query.key: query for query in queries if query.key not in world.offered}
    steps.expect(len(pending), "asking where models are offered")
    answers = await asyncio.gather(
        *(
            _step(steps, f"where is {q.model_name} offered", source.offered_regions(q))
            for q in pending.values()
        )
    )
    world.offered.update(zip(pending, answers, strict=True))
