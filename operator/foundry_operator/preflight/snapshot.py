"""The catalog snapshot: what `catalog --snapshot` writes and `check --catalog` reads.

One subscription's view of Azure at one moment, so a CI job can run the preflight without
credentials: per region the model catalog and the quota usages; the accounts with their region,
kind and existing deployments (what `check` would otherwise read from Azure); and where each
model version is offered (the model capacities API), for "offered in eastus2" suggestions.
JSON or YAML by file suffix; versioned by apiVersion/kind and validated with pydantic.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from foundry_operator.catalog import ModelOffer, QuotaUsage, RegionCatalog, SkuOffer, normalize_region

SNAPSHOT_API_VERSION: Final = "foundry.llmops.io/v1alpha1"
SNAPSHOT_KIND: Final = "CatalogSnapshot"


class SnapshotError(Exception):
    """The snapshot file cannot be used; the message names the file and the field."""


class _Entry(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def _utc(value: datetime) -> datetime:
    """Dates without a zone (`2026-09-30`) are UTC, as the catalog's retirement dates are."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class SkuEntry(_Entry):
    name: str
    usage_name: str | None = None
    minimum: int = Field(default=1, ge=0)
    maximum: int | None = None
    step: int = Field(default=1, ge=1)
    default: int | None = None
    deprecation_date: UtcDatetime | None = None


class ModelEntry(_Entry):
    kind: str
    format: str
    name: str
    version: str
    is_default_version: bool = False
    lifecycle_status: str | None = None
    retirement_date: UtcDatetime | None = None
    replacement: str | None = None
    capabilities: dict[str, str] = Field(default_factory=dict)
    skus: list[SkuEntry] = Field(default_factory=list)


class UsageEntry(_Entry):
    name: str
    current: float
    limit: float


class RegionEntry(_Entry):
    models: list[ModelEntry] = Field(default_factory=list)
    usages: list[UsageEntry] = Field(default_factory=list)


class DeploymentEntry(_Entry):
    """An Azure deployment that already exists: its capacity already counts in the usages."""

    name: str
    format: str
    model: str
    version: str | None = None
    sku: str | None = None
    capacity: int | None = None
    owner: str | None = None  # the operator's owner tag, "namespace.name"


class AccountEntry(_Entry):
    resource_group: str
    name: str
    location: str
    kind: str
    deployments: list[DeploymentEntry] = Field(default_factory=list)


class OfferedEntry(_Entry):
    """Regions where a model version and SKU are offered to the subscription (model capacities)."""

    format: str
    name: str
    version: str
    sku: str
    regions: list[str]


class CatalogSnapshot(_Entry):
    api_version: Literal["foundry.llmops.io/v1alpha1"] = "foundry.llmops.io/v1alpha1"
    kind: Literal["CatalogSnapshot"] = "CatalogSnapshot"
    taken_at: UtcDatetime
    subscription_id: str
    regions: dict[str, RegionEntry]
    accounts: list[AccountEntry] = Field(default_factory=list)
    offered: list[OfferedEntry] = Field(default_factory=list)

    @field_validator("regions")
    @classmethod
    def _canonical_regions(cls, value: dict[str, RegionEntry]) -> dict[str, RegionEntry]:
        return {normalize_region(region): entry for region, entry in value.items()}

    def catalog(self, region: str) -> RegionCatalog | None:
        region = normalize_region(region)
        entry = self.regions.get(region)
        return None if entry is None else catalog_from_entries(region, entry.models, self.taken_at)

    def usages(self, region: str) -> dict[str, QuotaUsage] | None:
        entry = self.regions.get(normalize_region(region))
        return (
            None if entry is None else {u.name: QuotaUsage(u.name, u.current, u.limit) for u in entry.usages}
        )

    def find_account(self, resource_group: str, name: str) -> AccountEntry | None:
        return next(
            (
                a
                for a in self.accounts
                if a.resource_group.lower() == resource_group.lower() and a.name.lower() == name.lower()
            ),
            None,
        )

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# -- conversions between the catalog's values and snapshot entries -------------------------------


def entries_from_catalog(catalog: RegionCatalog) -> list[ModelEntry]:
    return [
        ModelEntry(
            kind=offer.kind,
            format=offer.format,
            name=offer.name,
            version=offer.version,
            is_default_version=offer.is_default_version,
            lifecycle_status=offer.lifecycle_status,
            retirement_date=offer.retirement_date,
            replacement=offer.replacement,
            capabilities=dict(offer.capabilities),
            skus=[
                SkuEntry(
                    name=sku.name,
                    usage_name=sku.usage_name,
                    minimum=sku.minimum,
                    maximum=sku.maximum,
                    step=sku.step,
                    default=sku.default,
                    deprecation_date=sku.deprecation_date,
                )
                for sku in offer.skus
            ],
        )
        for offer in catalog.offers
    ]


def catalog_from_entries(region: str, entries: Iterable[ModelEntry], fetched_at: datetime) -> RegionCatalog:
    offers = tuple(
        ModelOffer(
            region=region,
            kind=entry.kind,
            format=entry.format,
            name=entry.name,
            version=entry.version,
            is_default_version=entry.is_default_version,
            skus=tuple(
                SkuOffer(
                    sku.name,
                    sku.usage_name,
                    sku.minimum,
                    sku.maximum,
                    sku.step,
                    sku.default,
                    sku.deprecation_date,
                )
                for sku in entry.skus
            ),
            lifecycle_status=entry.lifecycle_status,
            retirement_date=entry.retirement_date,
            replacement=entry.replacement,
            capabilities=tuple(sorted(entry.capabilities.items())),
        )
        for entry in entries
    )
    return RegionCatalog(region=region, offers=offers, fetched_at=fetched_at)


def entries_from_usages(usages: Mapping[str, QuotaUsage]) -> list[UsageEntry]:
    return [UsageEntry(name=u.usage_name, current=u.current, limit=u.limit) for u in usages.values()]


# -- files --------------------------------------------------------------------------------------


def _is_json(path: Path) -> bool:
    return path.suffix.lower() == ".json"


def write_snapshot(path: Path, snapshot: CatalogSnapshot) -> None:
    data = snapshot.dump()
    if _is_json(path):
        text = json.dumps(data, indent=2) + "\n"
    else:
        header = "# foundry-operator catalog snapshot: written by `foundry-operator catalog --snapshot`, read by `check --catalog`.\n"
        text = header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _field(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def parse_snapshot(data: Any, label: str) -> CatalogSnapshot:
    if not isinstance(data, dict):
        raise SnapshotError(f"{label}: not a catalog snapshot (expected a mapping)")
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if kind != SNAPSHOT_KIND or api_version != SNAPSHOT_API_VERSION:
        raise SnapshotError(
            f"{label}: not a {SNAPSHOT_API_VERSION} {SNAPSHOT_KIND} (found {api_version}/{kind}); "
            "write one with `foundry-operator catalog --snapshot FILE`"
        )
    try:
        return CatalogSnapshot.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(f"{_field(error['loc'])}: {error['msg']}" for error in exc.errors())
        raise SnapshotError(f"{label}: invalid catalog snapshot: {details}") from exc


def read_snapshot(path: Path) -> CatalogSnapshot:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SnapshotError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{path}: cannot be read: {exc}") from exc
    try:
        data = json.loads(text) if _is_json(path) else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SnapshotError(f"{path}: not valid {'JSON' if _is_json(path) else 'YAML'}: {exc}") from exc
    return parse_snapshot(data, str(path))
