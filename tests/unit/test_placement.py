"""Placement and version resolution: pure decisions, the ADR's incidents among them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from foundry_operator.catalog import ModelOffer, QuotaUsage, RegionCatalog, SkuOffer
from foundry_operator.placement import (
    Candidate,
    DeploymentRequest,
    Refusal,
    place,
    resolve_version,
    retirement_warning,
)

NOW = datetime(2026, 11, 21, tzinfo=UTC)
GS = SkuOffer("GlobalStandard", "OpenAI.GlobalStandard.{m}", 1, 1000, 1, 100)


def offer(
    region: str,
    name: str,
    version: str,
    *,
    default: bool = True,
    fmt: str = "OpenAI",
    kind: str = "AIServices",
    retire: datetime | None = None,
    replacement: str | None = None,
    sku: SkuOffer = GS,
) -> ModelOffer:
    sku = SkuOffer(
        sku.name, (sku.usage_name or "").format(m=name), sku.minimum, sku.maximum, sku.step, sku.default
    )
    return ModelOffer(
        region, kind, fmt, name, version, default, (sku,), "GenerallyAvailable", retire, replacement
    )


CATALOGS = {
    "westus": RegionCatalog(
        "westus",
        (
            offer("westus", "gpt-5.4", "2026-03-05"),
            offer("westus", "gpt-5.3-codex", "2026-02-24"),
            offer(
                "westus",
                "gpt-4o-mini",
                "2024-07-18",
                retire=datetime(2026, 9, 30, tzinfo=UTC),
                replacement="gpt-5.4-mini",
            ),
            offer(
                "westus",
                "gpt-5-nano",
                "2025-08-07",
                retire=NOW + timedelta(days=12),
                replacement="gpt-5.4-mini",
            ),
        ),
    ),
    "eastus2": RegionCatalog(
        "eastus2",
        (
            offer("eastus2", "gpt-5.4", "2026-03-05"),
            offer("eastus2", "gpt-5.4-pro", "2026-03-05"),
        ),
    ),
}
WEST = Candidate("aucert-ai", "aucert-ai", "westus", "AIServices")
EAST = Candidate("aucert-ai-east", "aucert-ai-east", "eastus2", "AIServices")
NO_USAGE: dict[str, dict[str, QuotaUsage]] = {}


def request(
    name: str, version: str | None = None, capacity: int | None = None, sku: str = "GlobalStandard"
) -> DeploymentRequest:
    return DeploymentRequest(name, "OpenAI", version, sku, capacity)


def test_model_not_in_preferred_region_goes_to_the_next_account() -> None:
    placement = place(request("gpt-5.4-pro"), [WEST, EAST], CATALOGS, NO_USAGE, NOW)
    assert placement.chosen is not None and placement.chosen.candidate is EAST
    assert placement.chosen.version == "2026-03-05"
    west_verdict = placement.verdicts[0]
    assert not west_verdict.eligible and west_verdict.refusal is Refusal.MODEL_NOT_OFFERED
    assert "gpt-5.4-pro (GlobalStandard) is not offered in westus (account aucert-ai)" in west_verdict.reason


def test_no_eligible_account_names_each_reason_and_the_offered_regions() -> None:
    placement = place(
        request("gpt-5.4-pro"), [WEST], CATALOGS, NO_USAGE, NOW, offered_regions=["eastus2", "southcentralus"]
    )
    assert placement.chosen is None and placement.refusal is Refusal.MODEL_NOT_OFFERED
    assert (
        "aucert-ai: gpt-5.4-pro (GlobalStandard) is not offered in westus (account aucert-ai)"
        in placement.message
    )
    assert "Offered in eastus2, southcentralus" in placement.message
    assert "add a FoundryAccount in eastus2, southcentralus" in placement.message


def test_wrong_version_lists_the_versions_offered() -> None:
    placement = place(request("gpt-5.3-codex", "2025-12-20"), [WEST], CATALOGS, NO_USAGE, NOW)
    assert placement.refusal is Refusal.VERSION_NOT_OFFERED
    assert (
        "gpt-5.3-codex version 2025-12-20 is not offered in westus (account aucert-ai); offered in westus: 2026-02-24"
        in placement.message
    )
    assert placement.verdicts[0].suggestion and "2026-02-24" in placement.verdicts[0].suggestion


def test_no_version_resolves_to_the_default_and_else_the_newest() -> None:
    offers = [
        offer("westus", "m", "1", default=False),
        offer("westus", "m", "3", default=False),
        offer("westus", "m", "2", default=True),
    ]
    assert (resolved := resolve_version(offers, None)) is not None and resolved.version == "2"
    assert (resolved := resolve_version(offers[:2], None)) is not None and resolved.version == "3"
    assert resolve_version(offers, "9") is None


def test_retired_model_is_refused_with_its_replacement() -> None:
    placement = place(request("gpt-4o-mini"), [WEST], CATALOGS, NO_USAGE, NOW)
    assert placement.refusal is Refusal.RETIRED
    assert "retired on 2026-09-30" in placement.message and "gpt-5.4-mini" in placement.message


def test_retirement_within_window_warns() -> None:
    nano = CATALOGS["westus"].offers[3]
    warning = retirement_warning(nano, NOW, timedelta(days=30))
    assert warning is not None and "in 12 days" in warning and "replacement: gpt-5.4-mini" in warning
    assert retirement_warning(nano, NOW, timedelta(days=7)) is None
    assert retirement_warning(CATALOGS["westus"].offers[0], NOW, timedelta(days=30)) is None


def test_capacity_range_and_step() -> None:
    stepped = SkuOffer("GlobalStandard", "u", 50, 2000, 50, 100)
    catalogs = {"westus": RegionCatalog("westus", (offer("westus", "p", "1", sku=stepped),))}
    assert (
        place(request("p", capacity=75), [WEST], catalogs, NO_USAGE, NOW).refusal
        is Refusal.CAPACITY_OUT_OF_RANGE
    )
    assert (
        place(request("p", capacity=3000), [WEST], catalogs, NO_USAGE, NOW).refusal
        is Refusal.CAPACITY_OUT_OF_RANGE
    )
    chosen = place(request("p"), [WEST], catalogs, NO_USAGE, NOW).chosen
    assert chosen is not None and chosen.capacity == 100  # the SKU's default


def test_sku_not_offered_lists_the_skus() -> None:
    placement = place(request("gpt-5.4", sku="Standard"), [WEST], CATALOGS, NO_USAGE, NOW)
    assert (
        placement.refusal is Refusal.SKU_NOT_OFFERED
        and "SKUs offered there: GlobalStandard" in placement.message
    )


def test_quota_headroom_counts_reservations_and_our_own_capacity() -> None:
    usages = {
        "westus": {"OpenAI.GlobalStandard.gpt-5.4": QuotaUsage("OpenAI.GlobalStandard.gpt-5.4", 950, 1000)}
    }
    refused = place(request("gpt-5.4", capacity=100), [WEST, EAST], CATALOGS, usages, NOW)
    assert refused.chosen is not None and refused.chosen.candidate is EAST  # west is full, east takes it
    assert refused.verdicts[0].refusal is Refusal.INSUFFICIENT_QUOTA
    assert "has 50 free (950 of 1000 used); 100 more requested" in refused.verdicts[0].reason
    # An existing deployment of 80 on west counts as ours: scaling it to 100 needs only 20 more.
    grown = place(
        request("gpt-5.4", capacity=100), [WEST], CATALOGS, usages, NOW, deployed_capacity={"aucert-ai": 80}
    )
    assert grown.chosen is not None
    reserved = place(
        request("gpt-5.4", capacity=40),
        [WEST],
        CATALOGS,
        usages,
        NOW,
        reserved={"westus": {"OpenAI.GlobalStandard.gpt-5.4": 20}},
    )
    assert reserved.chosen is None and "has 30 free" in reserved.message


def test_placement_is_sticky_while_the_current_account_stays_eligible() -> None:
    # gpt-5.4 runs on east; westus (preferred) offers it too, but a running deployment does not move.
    placement = place(
        request("gpt-5.4"), [WEST, EAST], CATALOGS, NO_USAGE, NOW, current_account="aucert-ai-east"
    )
    assert placement.chosen is not None and placement.chosen.candidate is EAST


def test_unusable_account_is_reported_not_crashed() -> None:
    broken = Candidate(
        "team/other", "other", None, None, problem="FoundryAccount team/other does not allow namespace aucert"
    )
    placement = place(request("gpt-5.4"), [broken, WEST], CATALOGS, NO_USAGE, NOW)
    assert placement.chosen is not None and placement.chosen.candidate is WEST
    assert placement.verdicts[0].refusal is Refusal.ACCOUNT_UNAVAILABLE
    assert "does not allow namespace aucert" in placement.verdicts[0].reason


def test_kind_mismatch_is_explained() -> None:
    openai_only = {"westus": RegionCatalog("westus", (offer("westus", "o1", "1", kind="OpenAI"),))}
    placement = place(request("o1"), [WEST], openai_only, NO_USAGE, NOW)
    assert "offered only to OpenAI accounts" in placement.message


def test_a_deprecating_version_is_refused_for_a_new_deployment_but_serves_a_running_one() -> None:
    deprecating = ModelOffer(
        "westus", "AIServices", "MoonshotAI", "Kimi-K2.5", "1", True, (GS,), "Deprecating", None, "Kimi-K2.6"
    )
    catalogs = {"westus": RegionCatalog("westus", (deprecating,))}
    kimi = DeploymentRequest("Kimi-K2.5", "MoonshotAI", None, "GlobalStandard", None)
    new = place(kimi, [WEST], catalogs, NO_USAGE, NOW)
    assert new.chosen is None and new.refusal is Refusal.DEPRECATING
    assert "cannot be used for new deployments; replacement: Kimi-K2.6" in new.message
    assert "fix: change spec.model to the catalog's replacement, Kimi-K2.6" in new.message
    running = place(kimi, [WEST], catalogs, NO_USAGE, NOW, running_versions={"aucert-ai": "1"})
    assert running.chosen is not None
