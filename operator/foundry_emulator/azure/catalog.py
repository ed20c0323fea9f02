"""The model catalog: which model versions and SKUs each region offers, for which account kinds.

The scenario defines models once (``models``) and rolls them out to regions (``regions[].offers``),
the way Azure does: a version exists globally, its availability is regional. This module answers
the catalog questions (what does westus offer to an AIServices account?) and applies the run-time
catalog edits of the admin API (roll out, retire, withdraw).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .scenario import (
    CatalogModel,
    Deprecation,
    Kind,
    LifecycleStatus,
    ModelVersion,
    Region,
    RegionOffer,
    Replacement,
    SkuOffer,
)


class CatalogError(ValueError):
    """A catalog edit that does not fit the catalog (unknown model, region or version)."""


@dataclass(frozen=True)
class Offering:
    """One model version as offered in one region."""

    region: str
    model: CatalogModel
    version: ModelVersion
    kinds: tuple[Kind, ...]
    skus: tuple[SkuOffer, ...]
    is_default: bool

    @property
    def capabilities(self) -> dict[str, str]:
        return {**self.model.capabilities, **(self.version.capabilities or {})}

    @property
    def lifecycle_status(self) -> LifecycleStatus:
        return self.version.lifecycleStatus or self.model.lifecycleStatus

    def sku(self, name: str) -> SkuOffer | None:
        return next((s for s in self.skus if s.name.lower() == name.lower()), None)


def localized_usage_name(usage_name: str) -> str:
    """Azure's display name of a usage: ``OpenAI.GlobalStandard.gpt-5.4`` ->
    ``Tokens Per Minute (thousands) - gpt-5.4 - GlobalStandard``."""
    parts = usage_name.split(".", 2)
    if len(parts) < 3:
        return usage_name
    _, sku, model = parts
    return f"Tokens Per Minute (thousands) - {model} - {sku}"


class Catalog:
    def __init__(self, models: list[CatalogModel], regions: list[Region]) -> None:
        # Deep copies: run-time edits must not leak into the loaded scenario (reset restores it).
        self.models: dict[str, CatalogModel] = {m.name.lower(): m.model_copy(deep=True) for m in models}
        self.regions: dict[str, Region] = {r.name: r.model_copy(deep=True) for r in regions}

    def region_names(self) -> list[str]:
        return list(self.regions)

    def offerings(self, region: str, kind: str | None = None) -> list[Offering]:
        found = self.regions.get(region)
        if found is None:
            return []
        out: list[Offering] = []
        for offer in found.offers:
            model = self.models.get(offer.model.lower())
            if model is None:
                continue
            versions = [v for v in model.versions if offer.versions is None or v.version in offer.versions]
            default = _regional_default(model, versions)
            for v in versions:
                kinds = tuple(v.kinds if v.kinds is not None else model.kinds)
                if kind is not None and kind not in kinds:
                    continue
                skus = tuple(
                    s
                    for s in (v.skus if v.skus is not None else model.skus)
                    if offer.skus is None or s.name in offer.skus
                )
                out.append(Offering(region, model, v, kinds, skus, is_default=v.version == default))
        return out

    def find(self, region: str, kind: str, name: str, version: str) -> Offering | None:
        return next(
            (
                o
                for o in self.offerings(region, kind)
                if o.model.name.lower() == name.lower() and o.version.version == version
            ),
            None,
        )

    def default_version(self, region: str, kind: str, name: str) -> str | None:
        return next(
            (
                o.version.version
                for o in self.offerings(region, kind)
                if o.model.name.lower() == name.lower() and o.is_default
            ),
            None,
        )

    def everywhere(self, fmt: str, name: str, version: str) -> list[Offering]:
        """The offerings of one model version in every region (for modelCapacities)."""
        return [
            o
            for region in self.regions
            for o in self.offerings(region)
            if o.model.format.lower() == fmt.lower()
            and o.model.name.lower() == name.lower()
            and o.version.version == version
        ]

    # -- run-time edits (admin API) ---------------------------------------------------------

    def rollout(
        self,
        region: str,
        model: str,
        versions: list[str] | None,
        skus: list[str] | None,
        definition: CatalogModel | None,
    ) -> None:
        """Offer ``model`` (the listed versions and SKUs, or all) in ``region``.

        ``definition`` adds a model the catalog does not know yet, or adds/replaces versions of one
        it knows (a new version released)."""
        target = self._region(region)
        if definition is not None:
            self._define(definition)
        known = self._model(model)
        for version in versions or []:
            if known.version(version) is None:
                raise CatalogError(f"model {known.name} has no version {version!r}")
        offer = next((o for o in target.offers if o.model.lower() == model.lower()), None)
        if offer is None:
            target.offers.append(RegionOffer(model=known.name, versions=versions, skus=skus))
            return
        offer.versions = _union(offer.versions, versions)
        offer.skus = _union(offer.skus, skus)

    def withdraw(self, region: str, model: str, versions: list[str] | None) -> None:
        """Stop offering ``model`` (or only some versions of it) in ``region``."""
        target = self._region(region)
        offer = next((o for o in target.offers if o.model.lower() == model.lower()), None)
        if offer is None:
            raise CatalogError(f"{model} is not offered in {region}")
        if versions is None:
            target.offers.remove(offer)
            return
        remaining = [
            v.version
            for v in self._model(model).versions
            if (offer.versions is None or v.version in offer.versions) and v.version not in versions
        ]
        if remaining:
            offer.versions = remaining
        else:
            target.offers.remove(offer)

    def retire(
        self,
        model: str,
        versions: list[str] | None,
        inference: dt.date,
        lifecycle: LifecycleStatus | None,
        replacement: Replacement | None,
        today: dt.date,
    ) -> None:
        """Announce (or enact, for a past date) the retirement of model versions."""
        known = self._model(model)
        targets = [v for v in known.versions if versions is None or v.version in versions]
        if versions is not None and len(targets) != len(versions):
            raise CatalogError(f"model {known.name} has no version among {versions}")
        for v in targets:
            v.deprecation = Deprecation(
                inference=inference, fineTune=v.deprecation.fineTune if v.deprecation else None
            )
            v.lifecycleStatus = lifecycle or ("Deprecated" if inference <= today else "Deprecating")
            if replacement is not None:
                v.replacement = replacement

    def _define(self, definition: CatalogModel) -> None:
        current = self.models.get(definition.name.lower())
        if current is None:
            self.models[definition.name.lower()] = definition.model_copy(deep=True)
            return
        for version in definition.versions:
            existing = current.version(version.version)
            if existing is not None:
                current.versions.remove(existing)
            if version.isDefaultVersion:
                for other in current.versions:
                    other.isDefaultVersion = False
            current.versions.append(version.model_copy(deep=True))

    def _region(self, name: str) -> Region:
        found = self.regions.get(name)
        if found is None:
            raise CatalogError(f"unknown region {name!r}; regions: {', '.join(self.regions)}")
        return found

    def _model(self, name: str) -> CatalogModel:
        found = self.models.get(name.lower())
        if found is None:
            raise CatalogError(f"unknown model {name!r}; pass its definition to roll it out")
        return found


def _regional_default(model: CatalogModel, offered: list[ModelVersion]) -> str | None:
    """The global default version if the region has it, else the region's newest version: a region
    that lags behind a rollout still has a default (Azure marks one per region)."""
    if not offered:
        return None
    marked = next((v.version for v in offered if v.isDefaultVersion), None)
    return marked or max(v.version for v in offered)


def _union(current: list[str] | None, added: list[str] | None) -> list[str] | None:
    if current is None or added is None:
        return None  # None means "all", and all absorbs anything
    return [*current, *(a for a in added if a not in current)]
