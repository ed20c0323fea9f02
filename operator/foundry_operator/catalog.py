"""What a region offers: the model catalog and quota usage, as plain immutable values.

Converted once from the SDK's models (`locations/{loc}/models`, `locations/{loc}/usages`) so that
placement can be pure and tested without Azure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class SkuOffer:
    name: str
    usage_name: str | None
    minimum: int
    maximum: int | None
    step: int
    default: int | None
    deprecation_date: datetime | None = None

    def range_text(self) -> str:
        upper = str(self.maximum) if self.maximum is not None else "unbounded"
        return f"{self.minimum}-{upper} (step {self.step})"


@dataclass(frozen=True)
class ModelOffer:
    """One (account kind, model format/name/version) entry of a region's catalog."""

    region: str
    kind: str
    format: str
    name: str
    version: str
    is_default_version: bool
    skus: tuple[SkuOffer, ...]
    lifecycle_status: str | None = None
    retirement_date: datetime | None = None
    replacement: str | None = None
    capabilities: tuple[tuple[str, str], ...] = ()

    def sku(self, name: str) -> SkuOffer | None:
        return next((sku for sku in self.skus if sku.name.lower() == name.lower()), None)

    def label(self) -> str:
        return f"{self.name} ({self.version})"


@dataclass(frozen=True)
class RegionCatalog:
    region: str
    offers: tuple[ModelOffer, ...]
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def offers_for(self, name: str, model_format: str, kind: str | None = None) -> list[ModelOffer]:
        """Offers of one model, matched case-insensitively as Azure does, for an account kind."""
        return [
            offer
            for offer in self.offers
            if offer.name.lower() == name.lower()
            and offer.format.lower() == model_format.lower()
            and (kind is None or offer.kind.lower() == kind.lower())
        ]


@dataclass(frozen=True)
class QuotaUsage:
    usage_name: str
    current: float
    limit: float

    @property
    def headroom(self) -> float:
        return self.limit - self.current


def normalize_region(region: str) -> str:
    """ARM returns 'West US' in some places and 'westus' in others; compare the canonical form."""
    return region.replace(" ", "").lower()


def _parse_date(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def offer_from_sdk(region: str, item: Any) -> ModelOffer | None:
    """Convert one `azure.mgmt.cognitiveservices.models.Model` (a location catalog entry)."""
    model = getattr(item, "model", None)
    if model is None or not model.name or not model.version:
        return None
    skus = tuple(
        SkuOffer(
            name=sku.name,
            usage_name=sku.usage_name,
            minimum=int(sku.capacity.minimum) if sku.capacity and sku.capacity.minimum is not None else 1,
            maximum=int(sku.capacity.maximum) if sku.capacity and sku.capacity.maximum is not None else None,
            step=int(sku.capacity.step) if sku.capacity and sku.capacity.step else 1,
            default=int(sku.capacity.default) if sku.capacity and sku.capacity.default is not None else None,
            deprecation_date=_parse_date(sku.deprecation_date),
        )
        for sku in (model.skus or [])
        if sku.name
    )
    replacement = None
    if model.replacement_config and model.replacement_config.target_model_name:
        target = model.replacement_config
        replacement = " ".join(
            part for part in (target.target_model_name, target.target_model_version) if part
        )
    return ModelOffer(
        region=normalize_region(region),
        kind=item.kind or "",
        format=model.format or "",
        name=model.name,
        version=model.version,
        is_default_version=bool(model.is_default_version),
        skus=skus,
        lifecycle_status=model.lifecycle_status,
        retirement_date=_parse_date(model.deprecation.inference if model.deprecation else None),
        replacement=replacement,
        capabilities=tuple(sorted((str(k), str(v)) for k, v in (model.capabilities or {}).items())),
    )


def catalog_from_sdk(region: str, items: Iterable[Any]) -> RegionCatalog:
    offers = tuple(offer for offer in (offer_from_sdk(region, item) for item in items) if offer is not None)
    return RegionCatalog(region=normalize_region(region), offers=offers)


def usages_from_sdk(items: Iterable[Any]) -> dict[str, QuotaUsage]:
    result: dict[str, QuotaUsage] = {}
    for usage in items:
        name = usage.name.value if usage.name else None
        if name and usage.limit is not None:
            result[name] = QuotaUsage(name, float(usage.current_value or 0), float(usage.limit))
    return result


def capability_dict(offer: ModelOffer) -> Mapping[str, str]:
    return dict(offer.capabilities)
