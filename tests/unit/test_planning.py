"""The planner as a table: facts in, ordered steps and conditions out (no I/O)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from foundry_operator.api.models import FoundryDeploymentSpec, FoundryDeploymentStatus, RetiringDeployment
from foundry_operator.azure.arm import OWNER_TAG, DeploymentSnapshot
from foundry_operator.catalog import ModelOffer, RegionCatalog, SkuOffer
from foundry_operator.conditions import now_rfc3339
from foundry_operator.placement import Candidate
from foundry_operator.planning import (
    AccountFacts,
    DeleteRetired,
    Deploy,
    DeploymentFacts,
    Elsewhere,
    LeaveRetired,
    LookElsewhere,
    Plan,
    Publish,
    Retire,
    Serve,
    desired_version,
    plan,
)
from foundry_operator.views import KeyClaim, NameClaim

NOW = datetime(2026, 11, 21, tzinfo=UTC)
SUB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts"
WEST_ID, EAST_ID = f"{SUB}/aucert-ai", f"{SUB}/aucert-ai-east"
GS = SkuOffer("GlobalStandard", "OpenAI.GlobalStandard.m", 1, 1000, 1, 100)


def offer(region: str, name: str, version: str, fmt: str = "OpenAI", default: bool = True) -> ModelOffer:
    return ModelOffer(
        region, "AIServices", fmt, name, version, default, (GS,), "GenerallyAvailable", None, None
    )


CATALOGS = {
    "westus": RegionCatalog(
        "westus",
        (
            offer("westus", "gpt-5.4", "2026-03-05"),
            offer("westus", "Kimi-K2.5", "2025-12-01", "MoonshotAI"),
            offer("westus", "Kimi-K2.6", "2026-04-20", "MoonshotAI"),
        ),
    ),
    "eastus2": RegionCatalog(
        "eastus2", (offer("eastus2", "gpt-5.4", "2026-03-05"), offer("eastus2", "gpt-5.4-pro", "2026-03-05"))
    ),
}
WEST = AccountFacts(
    "aucert-ai", "aucert", "aucert-ai", "aucert-ai", "westus", "AIServices", WEST_ID, "https://w"
)
EAST = AccountFacts(
    "aucert-ai-east",
    "aucert",
    "aucert-ai-east",
    "aucert-ai-east",
    "eastus2",
    "AIServices",
    EAST_ID,
    "https://e",
)


def snapshot(
    name: str,
    model: str,
    version: str,
    *,
    account: str = WEST_ID,
    owner: str | None = "aucert.gpt",
    **kw: Any,
) -> DeploymentSnapshot:
    values: dict[str, Any] = {
        "model_format": "OpenAI",
        "sku_name": "GlobalStandard",
        "capacity": 100,
        "provisioning_state": "Succeeded",
        "version_upgrade_option": "OnceNewDefaultVersionAvailable",
        "rai_policy_name": None,
    }
    values.update(kw)
    tags = {OWNER_TAG: owner} if owner else {}
    return DeploymentSnapshot(
        name=name,
        resource_id=f"{account}/deployments/{name}",
        model_name=model,
        model_version=version,
        tags=tags,
        **values,
    )


def facts(
    spec: dict[str, Any],
    status: dict[str, Any] | None = None,
    *,
    accounts: tuple[AccountFacts, ...] = (WEST, EAST),
    deployments: dict[str, dict[str, DeploymentSnapshot]] | None = None,
    claims: list[NameClaim] | None = None,
    created: str = "2026-11-01T00:00:00Z uid-gpt",
    **extra: Any,
) -> DeploymentFacts:
    parsed = FoundryDeploymentSpec.model_validate(
        {"accounts": [a.ref for a in accounts] or ["aucert-ai"], **spec}
    )
    return DeploymentFacts(
        owner="aucert/gpt",
        namespace="aucert",
        name="gpt",
        created=created,
        keys=tuple(parsed.keys or ["GPT"]),
        spec=parsed,
        status=FoundryDeploymentStatus.model_validate(status or {}),
        candidates=tuple(Candidate(a.ref, a.account_name, a.location, a.kind) for a in accounts),
        accounts={a.ref: a for a in accounts},
        catalogs=CATALOGS,
        usages={},
        deployments={k.lower(): {n.lower(): d for n, d in v.items()} for k, v in (deployments or {}).items()},
        name_claims=claims or [],
        now=NOW,
        **extra,
    )


GPT54 = ("openai", "gpt-5.4", None)
SERVING_K25 = {
    "accountRef": "aucert-ai",
    "account": "aucert-ai",
    "accountNamespace": "aucert",
    "region": "westus",
    "deploymentName": "Kimi-K2.5",
    "resourceId": f"{WEST_ID}/deployments/Kimi-K2.5",
    "modelName": "Kimi-K2.5",
    "modelVersion": "2025-12-01",
    "capacity": 100,
}
K25 = snapshot("Kimi-K2.5", "Kimi-K2.5", "2025-12-01", model_format="MoonshotAI")
K26 = snapshot("Kimi-K2.6", "Kimi-K2.6", "2026-04-20", model_format="MoonshotAI")
KIMI_26 = {"model": {"name": "Kimi-K2.6", "format": "MoonshotAI"}, "drainSeconds": 60}


def kinds(result: Plan) -> list[str]:
    return [type(step).__name__ for step in result.steps]


def reason(result: Plan, kind: str = "Ready") -> str | None:
    found = [c for c in result.outcome.conditions if c.type == kind]
    return found[-1].reason if found else None


def retiring(not_before: datetime, name: str = "Kimi-K2.5", ref: str = "aucert/aucert-ai") -> dict[str, Any]:
    return RetiringDeployment(
        account_ref=ref,
        deployment_name=name,
        resource_id=f"{WEST_ID}/deployments/{name}",
        region="westus",
        not_before=now_rfc3339(not_before),
    ).wire()


@dataclass
class Case:
    name: str
    facts: DeploymentFacts
    steps: list[str]
    ready: str | None = None  # the Ready condition's reason, when the plan decides it
    check: Callable[[Plan], bool] = field(default=lambda _: True)


CASES = [
    Case("new deployment: create then publish", facts({"model": {"name": "gpt-5.4"}}), ["Deploy", "Publish"]),
    Case(
        "as desired already: no write, serve",
        facts(
            {"model": {"name": "gpt-5.4"}},
            deployments={WEST_ID: {"gpt-5.4": snapshot("gpt-5.4", "gpt-5.4", "2026-03-05")}},
        ),
        ["Serve", "Publish"],
        check=lambda p: isinstance(p.steps[0], Serve) and not p.steps[0].adopted,
    ),
    Case(
        "existing untagged deployment with the same model is adopted without a write",
        facts(
            {"model": {"name": "gpt-5.4"}},
            deployments={WEST_ID: {"gpt-5.4": snapshot("gpt-5.4", "gpt-5.4", "2026-03-05", owner=None)}},
        ),
        ["Serve", "Publish"],
        check=lambda p: isinstance(p.steps[0], Serve) and p.steps[0].adopted,
    ),
    Case(
        "capacity change: an update in place",
        facts(
            {"model": {"name": "gpt-5.4"}, "sku": {"capacity": 30}},
            SERVING_K25 | {"deploymentName": "gpt-5.4", "resourceId": f"{WEST_ID}/deployments/gpt-5.4"},
            deployments={WEST_ID: {"gpt-5.4": snapshot("gpt-5.4", "gpt-5.4", "2026-03-05")}},
        ),
        ["Deploy", "Publish"],
        check=lambda p: isinstance(p.steps[0], Deploy) and p.steps[0].desired.capacity == 30,
    ),
    Case(
        "model not in the preferred region: placed on the next account",
        facts({"model": {"name": "gpt-5.4-pro"}}),
        ["Deploy", "Publish"],
        check=lambda p: isinstance(p.steps[0], Deploy) and p.steps[0].account is EAST,
    ),
    Case(
        "nothing eligible, where-else unknown: read it first, write nothing",
        facts({"model": {"name": "gpt-5.4-pro"}}, accounts=(WEST,)),
        ["LookElsewhere"],
    ),
    Case(
        "nothing eligible: refused naming where it is offered",
        facts(
            {"model": {"name": "gpt-5.4-pro"}},
            accounts=(WEST,),
            elsewhere=Elsewhere(("eastus2",), (("aucert-ai-east", "eastus2"),)),
        ),
        [],
        "ModelNotOffered",
        lambda p: (
            p.blocker is not None
            and "gpt-5.4-pro is offered in eastus2" in p.blocker.message
            and p.blocker.fixes == ("add aucert-ai-east (eastus2) to spec.accounts",)
            and p.outcome.conditions[0].message == p.blocker.text
        ),
    ),
    Case(
        "a typo offered nowhere says so",
        facts({"model": {"name": "gpt-5.4-prro"}}, elsewhere=Elsewhere()),
        [],
        "ModelNotOffered",
        lambda p: "check spec.model.name (gpt-5.4-prro)" in p.outcome.conditions[0].message,
    ),
    Case(
        "no usable account, one not Ready yet: wait, no write",
        replace(
            facts({"model": {"name": "gpt-5.4"}}, accounts=()),
            candidates=(
                Candidate(
                    "aucert-ai",
                    "aucert-ai",
                    None,
                    None,
                    "FoundryAccount aucert/aucert-ai is not Ready: x",
                    waiting=True,
                ),
            ),
        ),
        [],
        "AccountNotReady",
        lambda p: p.outcome.retry_after == 3.0,
    ),
    Case(
        "the preferred account not reconciled yet, a later one eligible: wait, no write",
        replace(
            facts({"model": {"name": "gpt-5.4"}}, accounts=(EAST,)),
            candidates=(
                Candidate(
                    "aucert-ai",
                    "aucert-ai",
                    None,
                    None,
                    "FoundryAccount aucert/aucert-ai is not Ready: not reconciled yet",
                    pending=True,
                    waiting=True,
                ),
                Candidate(EAST.ref, EAST.account_name, EAST.location, EAST.kind),
            ),
        ),
        [],
        "AccountNotReady",
        lambda p: "waiting for FoundryAccount aucert-ai, listed before" in p.outcome.conditions[0].message,
    ),
    Case(
        "the preferred account failed (not pending), a later one eligible: placed on the later one",
        replace(
            facts({"model": {"name": "gpt-5.4"}}, accounts=(EAST,)),
            candidates=(
                Candidate(
                    "aucert-ai", "aucert-ai", None, None, "FoundryAccount aucert/aucert-ai is not Ready: 403"
                ),
                Candidate(EAST.ref, EAST.account_name, EAST.location, EAST.kind),
            ),
        ),
        ["Deploy", "Publish"],
        None,
        lambda p: (
            p.placement is not None
            and p.placement.chosen is not None
            and p.placement.chosen.candidate.ref == EAST.ref
        ),
    ),
    Case(
        "the only candidate is Stalled (AccountNotFound, say): stalled too, no hot wait",
        replace(
            facts({"model": {"name": "gpt-5.4"}}, accounts=()),
            candidates=(
                Candidate(
                    "aucert-ai", "aucert-ai", None, None, "FoundryAccount aucert/aucert-ai is not Ready: y"
                ),
            ),
        ),
        [],
        "NoUsableAccount",
        lambda p: p.outcome.retry_after is None,
    ),
    Case(
        "no usable account at all: stalled",
        replace(
            facts({"model": {"name": "gpt-5.4"}}, accounts=()),
            candidates=(
                Candidate("x", "x", None, None, "FoundryAccount aucert/x (spec.accounts[0]) does not exist"),
            ),
        ),
        [],
        "NoUsableAccount",
    ),
    Case(
        "an older object holds the Azure name on the account: conflict, no write",
        facts(
            {"model": {"name": "gpt-5.4"}},
            claims=[NameClaim("aucert/older", "2026-10-01T00:00:00Z u1", GPT54, held_on=WEST_ID.lower())],
        ),
        [],
        "Conflict",
        lambda p: (
            "also claimed by FoundryDeployment aucert/older" in p.outcome.conditions[0].message
            and "add its keys (GPT) to the spec.keys of aucert/older" in p.outcome.conditions[0].message
        ),
    ),
    Case(
        "a younger object already holds the name there: the holder keeps it, no write",
        facts(
            {"model": {"name": "gpt-5.4"}},
            claims=[NameClaim("aucert/younger", "2026-11-20T00:00:00Z u2", GPT54, held_on=WEST_ID.lower())],
        ),
        [],
        "Conflict",
    ),
    Case(
        "an older object that may still be placed on the account asks for the name: wait, no write",
        facts(
            {"model": {"name": "gpt-5.4"}},
            claims=[
                NameClaim(
                    "aucert/older", "2026-10-01T00:00:00Z u1", GPT54, ("aucert/aucert-ai",), undecided=True
                )
            ],
        ),
        [],
        "ClaimPending",
    ),
    Case(
        "an older object asking for the name on other accounts only does not stop this one",
        facts(
            {"model": {"name": "gpt-5.4"}},
            claims=[
                NameClaim(
                    "aucert/older", "2026-10-01T00:00:00Z u1", GPT54, ("aucert/elsewhere",), undecided=True
                )
            ],
        ),
        ["Deploy", "Publish"],
    ),
    Case(
        "an older object that was refused (decided, placed nowhere) does not stop this one",
        facts(
            {"model": {"name": "gpt-5.4"}},
            claims=[NameClaim("aucert/older", "2026-10-01T00:00:00Z u1", GPT54, ("aucert/aucert-ai",))],
        ),
        ["Deploy", "Publish"],
    ),
    Case(
        "a younger object asking for the name does not stop the older one",
        facts(
            {"model": {"name": "gpt-5.4"}},
            claims=[
                NameClaim(
                    "aucert/younger", "2026-11-20T00:00:00Z u2", GPT54, ("aucert/aucert-ai",), undecided=True
                )
            ],
        ),
        ["Deploy", "Publish"],
    ),
    Case(
        "an older object's SPEC asks for the key (nothing published yet): refused before any write",
        facts(
            {"model": {"name": "gpt-5.4"}},
            key_claims=[KeyClaim("aucert/older", "2026-10-01T00:00:00Z u1", ("GPT",))],
        ),
        [],
        "KeyConflict",
        lambda p: (
            "key GPT in ConfigMap aucert/llm-config is already published by FoundryDeployment aucert/older"
            in p.outcome.conditions[0].message
        ),
    ),
    Case(
        "same creation second: the tie is broken by uid, the same way in every process",
        facts(
            {"model": {"name": "gpt-5.4"}},
            key_claims=[KeyClaim("aucert/zeta", "2026-11-01T00:00:00Z uid-alpha", ("GPT",))],
        ),
        [],
        "KeyConflict",
    ),
    Case(
        "same creation second, a larger uid: this object is the older one",
        facts(
            {"model": {"name": "gpt-5.4"}},
            key_claims=[KeyClaim("aucert/alpha", "2026-11-01T00:00:00Z uid-zeta", ("GPT",))],
        ),
        ["Deploy", "Publish"],
    ),
    Case(
        "a younger object's spec claim does not stop the older one",
        facts(
            {"model": {"name": "gpt-5.4"}},
            key_claims=[KeyClaim("aucert/younger", "2026-11-02T00:00:00Z u2", ("GPT",))],
        ),
        ["Deploy", "Publish"],
    ),
    Case(
        "a foreign deployment with another model under the name: conflict",
        facts(
            {"model": {"name": "gpt-5.4"}},
            deployments={
                WEST_ID: {"gpt-5.4": snapshot("gpt-5.4", "gpt-5.1-codex", "2025-11-13", owner=None)}
            },
        ),
        [],
        "Conflict",
        lambda p: (
            "already exists on account aucert-ai with model OpenAI gpt-5.1-codex"
            in p.outcome.conditions[0].message
        ),
    ),
    Case(
        "model swap under a new name: create, switch the keys, then drain the old one",
        facts(KIMI_26, SERVING_K25, deployments={WEST_ID: {"Kimi-K2.5": K25}}),
        ["Deploy", "Publish", "Retire"],
        check=lambda p: (
            isinstance(p.steps[2], Retire)
            and p.steps[2].deployment.deployment_name == "Kimi-K2.5"
            and p.steps[2].deployment.not_before == now_rfc3339(NOW + timedelta(seconds=60))
            and p.requeue_after == 60
        ),
    ),
    Case(
        "model swap under a fixed name: refused with the fix, the old one keeps serving",
        facts(
            {**KIMI_26, "deploymentName": "kimi"},
            SERVING_K25 | {"deploymentName": "kimi", "resourceId": f"{WEST_ID}/deployments/kimi"},
            deployments={
                WEST_ID: {"kimi": replace(K25, name="kimi", resource_id=f"{WEST_ID}/deployments/kimi")}
            },
        ),
        [],
        "Conflict",
        lambda p: (
            "set spec.deploymentName to a new name" in p.outcome.conditions[0].message
            and any(c.reason == "ModelChangeNeedsNewName" for c in p.outcome.conditions)
        ),
    ),
    Case(
        "a move to another account is made before break too",
        facts(
            {"model": {"name": "gpt-5.4"}},
            SERVING_K25 | {"deploymentName": "gpt-5.4", "resourceId": f"{WEST_ID}/deployments/gpt-5.4"},
            accounts=(EAST,),
        ),
        ["Deploy", "Publish", "Retire"],
        check=lambda p: isinstance(p.steps[0], Deploy) and p.steps[0].account is EAST,
    ),
    Case(
        "Sticky: a running deployment stays on the second account though the first became eligible",
        facts(
            {"model": {"name": "gpt-5.4"}},
            SERVING_K25
            | {
                "accountRef": "aucert-ai-east",
                "deploymentName": "gpt-5.4",
                "resourceId": f"{EAST_ID}/deployments/gpt-5.4",
            },
            deployments={EAST_ID: {"gpt-5.4": snapshot("gpt-5.4", "gpt-5.4", "2026-03-05", account=EAST_ID)}},
        ),
        ["Serve", "Publish"],
        check=lambda p: isinstance(p.steps[0], Serve) and p.steps[0].account is EAST,
    ),
    Case(
        "PreferFirst: it moves to the first account, make-before-break",
        facts(
            {"model": {"name": "gpt-5.4"}, "placementPolicy": "PreferFirst"},
            SERVING_K25
            | {
                "accountRef": "aucert-ai-east",
                "account": "aucert-ai-east",
                "deploymentName": "gpt-5.4",
                "resourceId": f"{EAST_ID}/deployments/gpt-5.4",
            },
            deployments={EAST_ID: {"gpt-5.4": snapshot("gpt-5.4", "gpt-5.4", "2026-03-05", account=EAST_ID)}},
        ),
        ["Deploy", "Publish", "Retire"],
        check=lambda p: (
            isinstance(p.steps[0], Deploy)
            and p.steps[0].account is WEST
            and isinstance(p.steps[2], Retire)
            and p.steps[2].deployment.account_ref == "aucert/aucert-ai-east"
        ),
    ),
    Case(
        "drain not over: nothing deleted, come back when it ends",
        facts(
            KIMI_26,
            SERVING_K25
            | {
                "deploymentName": "Kimi-K2.6",
                "resourceId": f"{WEST_ID}/deployments/Kimi-K2.6",
                "retiring": [retiring(NOW + timedelta(seconds=20))],
            },
            deployments={WEST_ID: {"Kimi-K2.5": K25, "Kimi-K2.6": K26}},
            retiring_accounts={"aucert/aucert-ai": WEST_ID},
        ),
        ["Serve", "Publish"],
        check=lambda p: p.requeue_after == 20 and len(p.outcome.status.retiring) == 1,
    ),
    Case(
        "drain over, ours: delete it",
        facts(
            KIMI_26,
            SERVING_K25
            | {
                "deploymentName": "Kimi-K2.6",
                "resourceId": f"{WEST_ID}/deployments/Kimi-K2.6",
                "retiring": [retiring(NOW - timedelta(seconds=1))],
            },
            deployments={WEST_ID: {"Kimi-K2.5": K25, "Kimi-K2.6": K26}},
            retiring_accounts={"aucert/aucert-ai": WEST_ID},
        ),
        ["DeleteRetired", "Serve", "Publish"],
        check=lambda p: p.outcome.status.retiring == [] and p.requeue_after is None,
    ),
    Case(
        "drain over, adopted (not ours): left in place and reported",
        facts(
            KIMI_26,
            SERVING_K25
            | {
                "deploymentName": "Kimi-K2.6",
                "resourceId": f"{WEST_ID}/deployments/Kimi-K2.6",
                "retiring": [retiring(NOW - timedelta(seconds=1))],
            },
            deployments={WEST_ID: {"Kimi-K2.5": replace(K25, tags={}), "Kimi-K2.6": K26}},
            retiring_accounts={"aucert/aucert-ai": WEST_ID},
        ),
        ["LeaveRetired", "Serve", "Publish"],
        check=lambda p: isinstance(p.steps[0], LeaveRetired) and "adopted" in p.steps[0].why,
    ),
    Case(
        "drain over, already gone: forgotten",
        facts(
            KIMI_26,
            SERVING_K25
            | {
                "deploymentName": "Kimi-K2.6",
                "resourceId": f"{WEST_ID}/deployments/Kimi-K2.6",
                "retiring": [retiring(NOW - timedelta(seconds=1))],
            },
            deployments={WEST_ID: {"Kimi-K2.6": K26}},
            retiring_accounts={"aucert/aucert-ai": WEST_ID},
        ),
        ["Serve", "Publish"],
        check=lambda p: p.outcome.status.retiring == [],
    ),
    Case(
        "moving back onto a draining deployment: it serves again and is no longer retired",
        facts(
            {"model": {"name": "Kimi-K2.5", "format": "MoonshotAI"}},
            SERVING_K25
            | {
                "deploymentName": "Kimi-K2.6",
                "resourceId": f"{WEST_ID}/deployments/Kimi-K2.6",
                "retiring": [retiring(NOW + timedelta(seconds=30))],
            },
            deployments={WEST_ID: {"Kimi-K2.5": K25, "Kimi-K2.6": K26}},
            retiring_accounts={"aucert/aucert-ai": WEST_ID},
        ),
        ["Serve", "Publish", "Retire"],
        check=lambda p: (
            p.outcome.status.retiring == []
            and isinstance(p.steps[2], Retire)
            and p.steps[2].deployment.deployment_name == "Kimi-K2.6"
        ),
    ),
    Case(
        "Azure upgraded the version (auto-upgrade): accepted, no write back, announced",
        facts(
            {"model": {"name": "gpt-5.4", "version": "2026-03-05"}},
            SERVING_K25
            | {
                "deploymentName": "gpt-5.4",
                "resourceId": f"{WEST_ID}/deployments/gpt-5.4",
                "modelVersion": "2026-03-05",
            },
            deployments={WEST_ID: {"gpt-5.4": snapshot("gpt-5.4", "gpt-5.4", "2026-05-01")}},
        ),
        ["Serve", "Publish"],
        check=lambda p: any(e.reason == "VersionUpgraded" for e in p.outcome.events),
    ),
    Case(
        "a pinned version under NoAutoUpgrade is enforced by a write",
        facts(
            {"model": {"name": "gpt-5.4", "version": "2026-03-05"}, "versionUpgradeOption": "NoAutoUpgrade"},
            SERVING_K25 | {"deploymentName": "gpt-5.4", "resourceId": f"{WEST_ID}/deployments/gpt-5.4"},
            deployments={
                WEST_ID: {
                    "gpt-5.4": snapshot(
                        "gpt-5.4", "gpt-5.4", "2026-05-01", version_upgrade_option="NoAutoUpgrade"
                    )
                }
            },
        ),
        ["Deploy", "Publish"],
        check=lambda p: isinstance(p.steps[0], Deploy) and p.steps[0].desired.model_version == "2026-03-05",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_plan(case: Case) -> None:
    result = plan(case.facts)
    assert kinds(result) == case.steps
    if case.ready is not None:
        assert reason(result) == case.ready
    assert case.check(result)


def test_a_refused_change_writes_nothing_but_still_finishes_due_drains() -> None:
    result = plan(
        facts(
            {**KIMI_26, "deploymentName": "kimi"},
            SERVING_K25
            | {
                "deploymentName": "kimi",
                "resourceId": f"{WEST_ID}/deployments/kimi",
                "retiring": [retiring(NOW - timedelta(seconds=1), name="old")],
            },
            deployments={WEST_ID: {"kimi": replace(K25, name="kimi"), "old": snapshot("old", "x", "1")}},
            retiring_accounts={"aucert/aucert-ai": WEST_ID},
        )
    )
    assert [type(s) for s in result.steps] == [DeleteRetired]
    assert not any(isinstance(s, (Deploy, Publish)) for s in result.steps)


@pytest.mark.parametrize(
    ("option", "pinned", "running", "expected"),
    [
        ("OnceNewDefaultVersionAvailable", None, None, "offered"),
        ("OnceNewDefaultVersionAvailable", "1", None, "1"),
        ("OnceNewDefaultVersionAvailable", "1", "2", "2"),  # Azure moved on: accepted
        ("OnceNewDefaultVersionAvailable", "3", "2", "3"),  # the user raised the pin
        ("OnceCurrentVersionExpired", "1", "2", "2"),
        ("NoAutoUpgrade", "1", "2", "1"),  # enforced
        ("NoAutoUpgrade", None, "2", "2"),
    ],
)
def test_desired_version(option: str, pinned: str | None, running: str | None, expected: str) -> None:
    spec = FoundryDeploymentSpec.model_validate(
        {"accounts": ["a"], "model": {"name": "m", "version": pinned}, "versionUpgradeOption": option}
    )
    existing = snapshot("m", "m", running) if running else None
    assert desired_version(spec, existing, "offered") == expected


def test_look_elsewhere_is_the_only_step_when_placement_fails() -> None:
    assert [type(s) for s in plan(facts({"model": {"name": "nope"}})).steps] == [LookElsewhere]
