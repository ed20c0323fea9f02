"""A small ADR world as a catalog snapshot, built in code so the pure tests control every number and date."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from foundry_operator.preflight.command import check_manifests
from foundry_operator.preflight.manifests import load_manifests
from foundry_operator.preflight.progress import Steps
from foundry_operator.preflight.report import Report
from foundry_operator.preflight.snapshot import (
    AccountEntry,
    CatalogSnapshot,
    DeploymentEntry,
    ModelEntry,
    OfferedEntry,
    RegionEntry,
    SkuEntry,
    UsageEntry,
)
from foundry_operator.preflight.sources import SnapshotSource

NOW = datetime(2026, 11, 21, tzinfo=UTC)
SUB = "3c2b1a09-8f7e-4d6c-9b5a-1e2d3c4b5a69"


def model(
    name: str,
    version: str,
    *,
    fmt: str = "OpenAI",
    kinds: Sequence[str] = ("AIServices", "OpenAI"),
    retire: datetime | None = None,
    replacement: str | None = None,
    maximum: int = 10000,
    default: int = 100,
) -> list[ModelEntry]:
    sku = SkuEntry(
        name="GlobalStandard",
        usage_name=f"{fmt}.GlobalStandard.{name}",
        minimum=1,
        maximum=maximum,
        default=default,
    )
    return [
        ModelEntry(
            kind=kind,
            format=fmt,
            name=name,
            version=version,
            is_default_version=True,
            retirement_date=retire,
            replacement=replacement,
            skus=[sku],
        )
        for kind in kinds
    ]


def usage(name: str, limit: int, current: int = 0, fmt: str = "OpenAI") -> UsageEntry:
    return UsageEntry(name=f"{fmt}.GlobalStandard.{name}", current=current, limit=limit)


def adr_snapshot(
    *, deployments: Sequence[DeploymentEntry] = (), gpt54_used: int = 100, nano_retires_in_days: int = 12
) -> CatalogSnapshot:
    westus = RegionEntry(
        models=[
            *model("gpt-5.4", "2026-03-05"),
            *model("gpt-5.3-codex", "2026-02-24"),
            *model(
                "gpt-4o-mini",
                "2024-07-18",
                retire=datetime(2026, 9, 30, tzinfo=UTC),
                replacement="gpt-5.4-mini 2026-03-17",
            ),
            *model("gpt-5-nano", "2025-08-07", retire=NOW + timedelta(days=nano_retires_in_days)),
            *model("Kimi-K2.6", "2026-04-20", fmt="MoonshotAI", kinds=["AIServices"], default=50),
        ],
        usages=[
            usage("gpt-5.4", 1000, gpt54_used),
            usage("gpt-5.3-codex", 1000),
            usage("gpt-4o-mini", 1000),
            usage("gpt-5-nano", 1000),
            usage("Kimi-K2.6", 500, fmt="MoonshotAI"),
        ],
    )
    eastus2 = RegionEntry(
        models=[*model("gpt-5.4", "2026-03-05"), *model("gpt-5.4-pro", "2026-03-05", default=20)],
        usages=[usage("gpt-5.4", 1000), usage("gpt-5.4-pro", 200)],
    )
    return CatalogSnapshot(
        taken_at=NOW,
        subscription_id=SUB,
        regions={"westus": westus, "eastus2": eastus2},
        accounts=[
            AccountEntry(
                resource_group="aucert-foundation-rg",
                name="aucert-ai",
                location="westus",
                kind="AIServices",
                deployments=list(deployments),
            ),
            AccountEntry(
                resource_group="aucert-foundation-rg",
                name="aucert-ai-east",
                location="eastus2",
                kind="AIServices",
            ),
        ],
        offered=[
            OfferedEntry(
                format="OpenAI",
                name="gpt-5.4-pro",
                version="2026-03-05",
                sku="GlobalStandard",
                regions=["eastus2", "southcentralus"],
            )
        ],
    )


async def run_check(
    documents: Sequence[dict[str, Any]], snapshot: CatalogSnapshot | None = None, *, window_days: int = 30
) -> Report:
    """The offline check of in-memory manifests, at a fixed NOW."""
    text = yaml.safe_dump_all(documents, sort_keys=False)
    manifests = load_manifests(["-"], io.StringIO(text))
    source = SnapshotSource(snapshot or adr_snapshot())
    return await check_manifests(manifests, source, Steps(enabled=False), NOW, timedelta(days=window_days))
