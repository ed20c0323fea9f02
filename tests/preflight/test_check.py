"""The preflight decision against a snapshot: the ADR's incidents, shared quota, retirement, conflicts."""

from __future__ import annotations

from foundry_operator.placement import Refusal
from foundry_operator.preflight.report import (
    CONFLICT,
    KEY_CONFLICT,
    RETIREMENT_SOON,
    DeploymentResult,
    Report,
    Result,
)
from foundry_operator.preflight.snapshot import DeploymentEntry
from tests.preflight.support import account, adr_accounts, deployment
from tests.preflight.world import SUB, adr_snapshot, run_check

BOTH = ["aucert-ai", "aucert-ai-east"]
WEST = ["aucert-ai"]


def row(report: Report, name: str) -> DeploymentResult:
    return next(r for r in report.deployments if r.name == name)


async def test_gpt_5_4_pro_on_westus_only_fails_and_names_the_east_account_and_region() -> None:
    report = await run_check([*adr_accounts(SUB), deployment("reasoning-pro", "gpt-5.4-pro", WEST)])
    result = row(report, "reasoning-pro")
    assert result.result == Result.FAIL and report.exit_code == 1
    (finding,) = result.errors
    assert finding.code == Refusal.MODEL_NOT_OFFERED.value
    assert "is not offered in westus (account aucert-ai)" in finding.message
    assert "offered in eastus2, southcentralus" in finding.message
    assert finding.fixes == (
        "add aucert-ai-east (eastus2) to spec.accounts",
        "or add a FoundryAccount in southcentralus to spec.accounts",
    )


async def test_gpt_5_4_pro_with_both_accounts_is_placed_on_the_east_account() -> None:
    report = await run_check([*adr_accounts(SUB), deployment("reasoning-pro", "gpt-5.4-pro", BOTH)])
    result = row(report, "reasoning-pro")
    assert result.result == Result.OK and result.placed and report.exit_code == 0
    assert (result.account, result.account_name, result.region) == (
        "aucert-ai-east",
        "aucert-ai-east",
        "eastus2",
    )
    assert (result.version, result.capacity, result.headroom) == ("2026-03-05", 20, 200)
    assert [(c.account, c.eligible) for c in result.candidates] == [
        ("aucert-ai", False),
        ("aucert-ai-east", True),
    ]


async def test_gpt_5_3_codex_with_the_wrong_version_suggests_the_catalog_version() -> None:
    report = await run_check(
        [*adr_accounts(SUB), deployment("coding", "gpt-5.3-codex", WEST, version="2025-12-20")]
    )
    (finding,) = row(report, "coding").errors
    assert finding.code == Refusal.VERSION_NOT_OFFERED.value
    assert "version 2025-12-20 is not offered in westus" in finding.message
    assert finding.fixes == (
        "set spec.model.version to one of: 2026-02-24 (or omit it for the region's default)",
    )


async def test_quota_is_summed_over_deployments_that_share_it() -> None:
    # westus gpt-5.4: limit 1000, 100 used: 900 free for both deployments together.
    report = await run_check(
        [
            *adr_accounts(SUB),
            deployment("first", "gpt-5.4", WEST, sku={"capacity": 600}),
            deployment("second", "gpt-5.4", WEST, deploymentName="gpt-5.4-b", sku={"capacity": 400}),
            # Another region has its own quota: the fallback account takes it.
            deployment("third", "gpt-5.4", BOTH, deploymentName="gpt-5.4-c", sku={"capacity": 400}),
        ]
    )
    first, second, third = report.deployments
    assert first.result == Result.OK and (first.capacity, first.headroom) == (600, 900)
    assert second.result == Result.FAIL and (second.capacity, second.headroom) == (400, 300)
    (finding,) = second.errors
    assert finding.code == Refusal.INSUFFICIENT_QUOTA.value
    assert (
        "quota OpenAI.GlobalStandard.gpt-5.4 in westus has 300 free (700 of 1000 used); 400 more requested"
        in (finding.message)
    )
    assert finding.fixes[0] == "lower spec.sku.capacity to 300 or less, or request more quota"
    assert "add aucert-ai-east (eastus2) to spec.accounts" in finding.fixes
    # The failed one reserved nothing, so the third still sees 300 in westus, and goes east.
    assert third.result == Result.OK and third.region == "eastus2" and third.headroom == 1000


async def test_existing_azure_deployment_of_the_same_model_is_not_counted_twice() -> None:
    existing = DeploymentEntry(
        name="gpt-5.4",
        format="OpenAI",
        model="gpt-5.4",
        version="2026-03-05",
        capacity=500,
        owner="default.gpt-5.4",
    )
    snapshot = adr_snapshot(deployments=[existing], gpt54_used=500)
    report = await run_check(
        [*adr_accounts(SUB), deployment("gpt-5.4", "gpt-5.4", BOTH, sku={"capacity": 900})], snapshot
    )
    result = row(report, "gpt-5.4")
    # 500 free + its own 500 already deployed: 900 fits, on the account it already runs on.
    assert result.result == Result.OK and result.account == "aucert-ai" and result.headroom == 1000


async def test_existing_azure_deployment_of_another_model_is_a_conflict() -> None:
    other = DeploymentEntry(
        name="coding", format="OpenAI", model="gpt-5.4", version="2026-03-05", capacity=10
    )
    report = await run_check(
        [*adr_accounts(SUB), deployment("coding", "gpt-5.3-codex", WEST, deploymentName="coding")],
        adr_snapshot(deployments=[other]),
    )
    (finding,) = row(report, "coding").errors
    assert (
        finding.code == CONFLICT
        and "already exists on account aucert-ai with model OpenAI gpt-5.4" in finding.message
    )


async def test_retired_model_fails_with_its_replacement() -> None:
    report = await run_check([*adr_accounts(SUB), deployment("reporting", "gpt-4o-mini", WEST)])
    result = row(report, "reporting")
    (finding,) = result.errors
    assert finding.code == Refusal.RETIRED.value
    assert "was retired on 2026-09-30 in westus" in finding.message
    assert finding.fixes == ("move to gpt-5.4-mini 2026-03-17",)
    assert result.version == "2024-07-18" and result.region == "westus"


async def test_retirement_within_the_window_warns_and_passes() -> None:
    documents = [*adr_accounts(SUB), deployment("nano", "gpt-5-nano", WEST)]
    report = await run_check(documents)
    result = row(report, "nano")
    assert result.result == Result.WARN and report.exit_code == 0
    (warning,) = result.warnings
    assert warning.code == RETIREMENT_SOON and "retires on 2026-12-03 (in 12 days)" in warning.message
    assert result.retirement_date == "2026-12-03"
    outside = await run_check(documents, window_days=7)
    assert row(outside, "nano").result == Result.OK


async def test_two_objects_claiming_one_azure_deployment_conflict() -> None:
    report = await run_check(
        [
            *adr_accounts(SUB),
            deployment("generation", "Kimi-K2.6", WEST, format="MoonshotAI", keys=["GENERATION"]),
            deployment("reporting", "Kimi-K2.6", WEST, format="MoonshotAI", keys=["REPORTING"]),
        ]
    )
    generation, reporting = report.deployments
    assert generation.result == Result.OK
    (finding,) = reporting.errors
    assert finding.code == CONFLICT
    assert (
        "Azure deployment Kimi-K2.6 on account aucert-ai is also claimed by FoundryDeployment default/generation"
        in (finding.message)
    )
    assert finding.fixes[0] == "set spec.deploymentName to another name"
    assert "add its keys (REPORTING) to the spec.keys of default/generation" in finding.fixes[1]


async def test_a_key_published_twice_in_one_configmap_fails_the_second() -> None:
    report = await run_check(
        [
            *adr_accounts(SUB),
            deployment("decision", "gpt-5.4", WEST, keys=["DECISION"]),
            deployment("coding", "gpt-5.3-codex", WEST, keys=["CODING", "DECISION"]),
            # Another ConfigMap, or another namespace, is another key space.
            deployment("other-cm", "gpt-5-nano", WEST, keys=["DECISION"], configMapName="llm-config-2"),
        ]
    )
    decision, coding, other = report.deployments
    assert decision.result == Result.OK and other.result != Result.FAIL
    (finding,) = coding.errors
    assert finding.code == KEY_CONFLICT
    assert (
        "key DECISION in ConfigMap default/llm-config is already published by FoundryDeployment default/decision"
        in (finding.message)
    )
    # Still placed: the operator deploys it and refuses only the key.
    assert coding.placed and coding.account == "aucert-ai"


async def test_accounts_of_other_namespaces_need_allowed_namespaces() -> None:
    team = deployment("reasoning", "gpt-5.4", ["default/aucert-ai"], namespace="team-a")
    refused = await run_check([*adr_accounts(SUB), team])
    (finding,) = row(refused, "reasoning").errors
    assert (
        "does not allow namespace team-a: add it to that account's spec.allowedNamespaces" in finding.message
    )
    allowed = await run_check([account("aucert-ai", SUB, allowedNamespaces=["team-a"]), team])
    assert row(allowed, "reasoning").result == Result.OK


async def test_an_account_missing_from_the_manifests_is_named() -> None:
    report = await run_check([*adr_accounts(SUB), deployment("x", "gpt-5.4", ["nowhere", "aucert-ai"])])
    result = row(report, "x")
    assert result.result == Result.OK and result.account == "aucert-ai"
    assert "FoundryAccount default/nowhere (spec.accounts[0]) is not among the manifests checked" in (
        result.candidates[0].reason
    )


async def test_managed_account_not_yet_created_uses_its_spec_location_offline() -> None:
    managed = account("aucert-ai-new", SUB, management="Managed", location="eastus2")
    adopted_missing = account("aucert-ai-gone", SUB)
    report = await run_check(
        [managed, adopted_missing, deployment("pro", "gpt-5.4-pro", ["aucert-ai-gone", "aucert-ai-new"])]
    )
    result = row(report, "pro")
    assert result.result == Result.OK and result.region == "eastus2" and result.account == "aucert-ai-new"
    gone = next(a for a in report.accounts if a.name == "aucert-ai-gone")
    assert gone.problem is not None and "is not in the catalog snapshot" in gone.problem
    assert next(a for a in report.accounts if a.name == "aucert-ai-new").planned
    assert report.result == Result.WARN  # an unusable account is worth a warning, not a failure


async def test_a_region_missing_from_the_snapshot_is_named_with_the_fix() -> None:
    far = account("aucert-ai-south", SUB, management="Managed", location="southcentralus")
    report = await run_check([far, deployment("pro", "gpt-5.4-pro", ["aucert-ai-south"])])
    (finding,) = row(report, "pro").errors
    assert "the catalog snapshot has no catalog of southcentralus" in finding.message
    assert "--region southcentralus" in finding.message
