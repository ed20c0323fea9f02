"""Placement: which candidate account can take a model, and why the others cannot.

Pure functions over catalog values: the operator and `foundry-operator check` call the same code,
so the preflight and the running operator can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from foundry_operator.catalog import ModelOffer, QuotaUsage, RegionCatalog, SkuOffer, normalize_region


class Refusal(StrEnum):
    """Why a candidate was not chosen; stable identifiers for conditions and metrics."""

    ACCOUNT_UNAVAILABLE = "AccountUnavailable"
    MODEL_NOT_OFFERED = "ModelNotOffered"
    VERSION_NOT_OFFERED = "VersionNotOffered"
    SKU_NOT_OFFERED = "SkuNotOffered"
    CAPACITY_OUT_OF_RANGE = "CapacityOutOfRange"
    INSUFFICIENT_QUOTA = "InsufficientQuota"
    RETIRED = "ModelRetired"
    # Azure's own codes: a Deprecating version serves existing deployments but takes no new one.
    DEPRECATING = "ServiceModelDeprecating"
    DEPRECATED = "ServiceModelDeprecated"


@dataclass(frozen=True)
class Candidate:
    """A FoundryAccount as placement sees it. `problem` is set when it cannot be used at all."""

    ref: str
    account_name: str
    region: str | None
    kind: str | None
    problem: str | None = None
    pending: bool = False  # not usable only because it has not been reconciled yet
    waiting: bool = False  # not usable for a passing reason (not reconciled yet, or retrying): wait for it


@dataclass(frozen=True)
class DeploymentRequest:
    model_name: str
    model_format: str
    model_version: str | None
    sku_name: str
    capacity: int | None


@dataclass(frozen=True)
class Verdict:
    candidate: Candidate
    eligible: bool
    reason: str
    refusal: Refusal | None = None
    offer: ModelOffer | None = None
    sku: SkuOffer | None = None
    capacity: int | None = None
    suggestion: str | None = None

    @property
    def version(self) -> str | None:
        return self.offer.version if self.offer else None


@dataclass(frozen=True)
class Placement:
    chosen: Verdict | None
    verdicts: tuple[Verdict, ...]
    message: str
    offered_regions: tuple[str, ...] = field(default=())

    @property
    def refusal(self) -> Refusal | None:
        """The most telling refusal when nothing is eligible (a wrong version beats 'not offered')."""
        if self.chosen is not None:
            return None
        order = list(Refusal)
        refusals = [v.refusal for v in self.verdicts if v.refusal is not None]
        return max(refusals, key=order.index) if refusals else Refusal.ACCOUNT_UNAVAILABLE


def resolve_version(offers: Sequence[ModelOffer], requested: str | None) -> ModelOffer | None:
    """No version: the region's default (or the newest when none is flagged). Else the exact version."""
    if not offers:
        return None
    if requested is not None:
        return next((offer for offer in offers if offer.version == requested), None)
    defaults = [offer for offer in offers if offer.is_default_version]
    return defaults[0] if defaults else max(offers, key=lambda offer: offer.version)


def _label(request: DeploymentRequest, version: str | None) -> str:
    details = ", ".join(part for part in (version or request.model_version, request.sku_name) if part)
    return f"{request.model_name} ({details})"


def evaluate(
    candidate: Candidate,
    request: DeploymentRequest,
    catalog: RegionCatalog | None,
    usages: Mapping[str, QuotaUsage] | None,
    now: datetime,
    *,
    already_deployed_capacity: int = 0,
    reserved: Mapping[str, int] | None = None,
    running_version: str | None = None,
) -> Verdict:
    """Can this one candidate take the request? `already_deployed_capacity` counts as used by us."""
    where = f"{candidate.region} (account {candidate.account_name})"
    if candidate.problem is not None or candidate.region is None:
        return Verdict(candidate, False, candidate.problem or "region unknown", Refusal.ACCOUNT_UNAVAILABLE)
    if catalog is None:
        return Verdict(
            candidate,
            False,
            f"the catalog of {candidate.region} could not be read",
            Refusal.ACCOUNT_UNAVAILABLE,
        )
    offers = catalog.offers_for(request.model_name, request.model_format, candidate.kind)
    if not offers:
        other_kind = catalog.offers_for(request.model_name, request.model_format)
        why = f"{_label(request, None)} is not offered in {where}"
        formats = sorted(
            {o.format for o in catalog.offers if o.name.lower() == request.model_name.lower()}
            - {request.model_format}
        )
        suggestion = None  # where it is offered instead is added by whoever knows other regions
        if other_kind:
            kinds = sorted({offer.kind for offer in other_kind})
            why += f"; in {candidate.region} it is offered only to {', '.join(kinds)} accounts"
            suggestion = f"list a FoundryAccount of kind {' or '.join(kinds)} in spec.accounts"
        elif formats:
            why += f"; in {candidate.region} {request.model_name} has format {', '.join(formats)}"
            suggestion = f"set spec.model.format to {formats[0]}"
        return Verdict(candidate, False, why, Refusal.MODEL_NOT_OFFERED, suggestion=suggestion)
    offer = resolve_version(offers, request.model_version)
    if offer is None:
        versions = ", ".join(sorted({o.version for o in offers}))
        return Verdict(
            candidate,
            False,
            f"{request.model_name} version {request.model_version} is not offered in {where}; "
            f"offered in {candidate.region}: {versions}",
            Refusal.VERSION_NOT_OFFERED,
            suggestion=f"set spec.model.version to one of: {versions} (or omit it for the region's default)",
        )
    if offer.retirement_date is not None and offer.retirement_date <= now:
        replacement = f"; replacement: {offer.replacement}" if offer.replacement else ""
        return Verdict(
            candidate,
            False,
            f"{offer.label()} was retired on {offer.retirement_date.date().isoformat()} in {candidate.region}{replacement}",
            Refusal.RETIRED,
            offer=offer,
            suggestion=f"move to {offer.replacement}" if offer.replacement else None,
        )
    lifecycle = offer.lifecycle_status or ""
    if lifecycle in ("Deprecating", "Deprecated") and running_version != offer.version:
        replacement = f"; replacement: {offer.replacement}" if offer.replacement else ""
        return Verdict(
            candidate,
            False,
            f"{offer.label()} is {lifecycle} in {candidate.region}: it cannot be used for new deployments{replacement}",
            Refusal.DEPRECATING if lifecycle == "Deprecating" else Refusal.DEPRECATED,
            offer=offer,
            suggestion="change spec.model"
            + (f" to the catalog's replacement, {offer.replacement}" if offer.replacement else ""),
        )
    sku = offer.sku(request.sku_name)
    if sku is None:
        skus = ", ".join(s.name for s in offer.skus) or "none"
        return Verdict(
            candidate,
            False,
            f"{_label(request, offer.version)} is not offered in {where}; SKUs offered there: {skus}",
            Refusal.SKU_NOT_OFFERED,
            offer=offer,
            suggestion=f"set spec.sku.name to one of: {skus}",
        )
    capacity = request.capacity if request.capacity is not None else (sku.default or sku.minimum)
    out_of_range = capacity < sku.minimum or (sku.maximum is not None and capacity > sku.maximum)
    if out_of_range or (capacity - sku.minimum) % sku.step:
        return Verdict(
            candidate,
            False,
            f"capacity {capacity} is outside {sku.name}'s range {sku.range_text()} for {offer.label()} in {candidate.region}",
            Refusal.CAPACITY_OUT_OF_RANGE,
            offer=offer,
            sku=sku,
            suggestion=f"set spec.sku.capacity within {sku.range_text()}",
        )
    if sku.usage_name and usages is not None:
        usage = usages.get(sku.usage_name)
        extra = (reserved or {}).get(sku.usage_name, 0)
        needed = capacity - already_deployed_capacity
        if usage is not None and needed > 0 and needed > usage.headroom - extra:
            free = max(int(usage.headroom - extra), 0)
            return Verdict(
                candidate,
                False,
                f"quota {sku.usage_name} in {candidate.region} has {free} free "
                f"({int(usage.current + extra)} of {int(usage.limit)} used); {needed} more requested",
                Refusal.INSUFFICIENT_QUOTA,
                offer=offer,
                sku=sku,
                capacity=capacity,
                suggestion=f"lower spec.sku.capacity to {free + already_deployed_capacity} or less, or request more quota",
            )
    return Verdict(
        candidate, True, f"{offer.label()} {sku.name} offered in {where}", None, offer, sku, capacity
    )


def place(
    request: DeploymentRequest,
    candidates: Sequence[Candidate],
    catalogs: Mapping[str, RegionCatalog],
    usages: Mapping[str, Mapping[str, QuotaUsage]],
    now: datetime,
    *,
    current_account: str | None = None,
    deployed_capacity: Mapping[str, int] | None = None,
    reserved: Mapping[str, Mapping[str, int]] | None = None,
    offered_regions: Sequence[str] = (),
    running_versions: Mapping[str, str] | None = None,
) -> Placement:
    """Choose the first eligible candidate; a running placement (`current_account`) is kept while eligible."""
    verdicts: list[Verdict] = []
    for candidate in candidates:
        region = normalize_region(candidate.region) if candidate.region else None
        verdicts.append(
            evaluate(
                candidate,
                request,
                catalogs.get(region) if region else None,
                usages.get(region) if region else None,
                now,
                already_deployed_capacity=(deployed_capacity or {}).get(candidate.ref, 0),
                reserved=(reserved or {}).get(region or "", None),
                running_version=(running_versions or {}).get(candidate.ref),
            )
        )
    eligible = [verdict for verdict in verdicts if verdict.eligible]
    sticky = next((v for v in eligible if v.candidate.ref == current_account), None)
    chosen = sticky or (eligible[0] if eligible else None)
    if chosen is not None:
        message = f"placed on {chosen.candidate.account_name} in {chosen.candidate.region}: {chosen.reason}"
        return Placement(chosen, tuple(verdicts), message, tuple(offered_regions))
    message = refusal_message(request, verdicts, offered_regions)
    return Placement(None, tuple(verdicts), message, tuple(offered_regions))


def refusal_message(
    request: DeploymentRequest, verdicts: Sequence[Verdict], offered_regions: Sequence[str] = ()
) -> str:
    """Why nothing could be placed: each candidate's reason, and where the model is offered instead."""
    reasons = "; ".join(
        f"{v.candidate.ref}: {v.reason}" + (f" (fix: {v.suggestion})" if v.suggestion else "")
        for v in verdicts
    )
    message = f"{_label(request, None)} cannot be placed on any candidate account. {reasons}"
    candidate_regions = {normalize_region(v.candidate.region) for v in verdicts if v.candidate.region}
    elsewhere = [region for region in offered_regions if normalize_region(region) not in candidate_regions]
    if offered_regions:
        message += f". Offered in {', '.join(offered_regions)}"
        if elsewhere:
            message += f": add a FoundryAccount in {', '.join(elsewhere)} to spec.accounts"
    return message


def retirement_warning(offer: ModelOffer, now: datetime, window: timedelta) -> str | None:
    """A warning when the offer retires within the window (None when not announced or far away)."""
    if offer.retirement_date is None or offer.retirement_date <= now or offer.retirement_date - now > window:
        return None
    days = (offer.retirement_date - now).days
    replacement = f"; replacement: {offer.replacement}" if offer.replacement else ""
    return (
        f"{offer.label()} retires on {offer.retirement_date.date().isoformat()} (in {days} days){replacement}"
    )
