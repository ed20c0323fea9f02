"""What is offered where, read live for the `catalog` command: the snapshot that `check --catalog` reads.

The snapshot holds every account of the subscription (their regions are the default regions and
`check` needs them offline), each region's catalog and usages, and, when a file is to be written,
where each model version is offered (one model capacities call per model, version and SKU).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from foundry_operator.catalog import RegionCatalog, normalize_region
from foundry_operator.preflight.facts import OfferedQuery
from foundry_operator.preflight.progress import Steps
from foundry_operator.preflight.snapshot import (
    CatalogSnapshot,
    OfferedEntry,
    RegionEntry,
    entries_from_catalog,
    entries_from_usages,
)
from foundry_operator.preflight.sources import CatalogUnavailable, LiveSource, SourceError

# Model capacity lookups run a few at a time: a real region lists hundreds of model versions and
# ARM's read bucket (250, refilled at 25/s) is shared with everything else the identity does.
OFFERED_CONCURRENCY = 8


def _only(catalog: RegionCatalog, model_name: str | None) -> RegionCatalog:
    if model_name is None:
        return catalog
    offers = tuple(o for o in catalog.offers if o.name.lower() == model_name.lower())
    return RegionCatalog(catalog.region, offers, catalog.fetched_at)


async def _offered(
    source: LiveSource, subscription_id: str, catalogs: Sequence[RegionCatalog], steps: Steps
) -> list[OfferedEntry]:
    queries: dict[tuple[str, str, str, str, str], OfferedQuery] = {}
    for catalog in catalogs:
        for offer in catalog.offers:
            for sku in offer.skus:
                query = OfferedQuery(subscription_id, offer.format, offer.name, offer.version, sku.name)
                queries.setdefault(query.key, query)
    steps.expect(len(queries), "asking where each model is offered")
    gate = asyncio.Semaphore(OFFERED_CONCURRENCY)

    async def ask(query: OfferedQuery) -> tuple[str, ...]:
        async with gate:
            regions = await source.offered_regions(query)
        steps.done(f"where is {query.model_name} {query.model_version} offered")
        return regions

    answers = await asyncio.gather(*(ask(q) for q in queries.values()))
    return [
        OfferedEntry(
            format=q.model_format,
            name=q.model_name,
            version=q.model_version or "",
            sku=q.sku_name,
            regions=list(r),
        )
        for q, r in zip(queries.values(), answers, strict=True)
    ]


async def take_snapshot(
    source: LiveSource,
    subscription_id: str,
    regions: Sequence[str],
    model_name: str | None,
    steps: Steps,
    now: datetime,
    *,
    with_offered: bool,
) -> CatalogSnapshot:
    accounts = await source.list_accounts(subscription_id)
    wanted = sorted({normalize_region(r) for r in regions}) or sorted(
        {normalize_region(a.location) for a in accounts}
    )
    if not wanted:
        raise SourceError(
            f"subscription {subscription_id} has no Cognitive Services accounts to take regions from; "
            "name the regions with --region"
        )
    steps.expect(len(wanted), "reading catalogs and quota")

    async def read(region: str) -> tuple[RegionCatalog, RegionEntry]:
        try:
            catalog, usages = await asyncio.gather(
                source.catalog(subscription_id, region), source.usages(subscription_id, region)
            )
        except CatalogUnavailable as exc:
            raise SourceError(str(exc)) from exc
        catalog = _only(catalog, model_name)
        steps.done(f"read catalog and quota of {region}")
        return catalog, RegionEntry(
            models=entries_from_catalog(catalog), usages=entries_from_usages(usages or {})
        )

    read_regions = await asyncio.gather(*(read(region) for region in wanted))
    offered = (
        await _offered(source, subscription_id, [catalog for catalog, _ in read_regions], steps)
        if with_offered
        else []
    )
    return CatalogSnapshot(
        taken_at=now,
        subscription_id=subscription_id,
        regions={region: entry for region, (_, entry) in zip(wanted, read_regions, strict=True)},
        accounts=accounts,
        offered=offered,
    )
