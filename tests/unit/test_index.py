"""What one FoundryDeployment puts in the operator's index, by key shape."""

from __future__ import annotations

from foundry_operator.views import KeyClaim, NameClaim, deployment_index_entries

ACCOUNT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/aucert-ai"
META = {"creationTimestamp": "2026-11-29T10:00:00Z", "uid": "u-1", "generation": 2}
SPEC = {"model": {"name": "Kimi-K2.6", "format": "MoonshotAI"}, "accounts": ["aucert-ai", "ops/east"]}


def test_a_new_object_wishes_for_its_name_and_claims_each_key() -> None:
    entries = deployment_index_entries("aucert", "kimi", META, {**SPEC, "keys": ["GEN", "REP"]}, {})
    claim = KeyClaim(
        "aucert/kimi", "2026-11-29T10:00:00Z u-1", ("GEN", "REP"), ("moonshotai", "kimi-k2.6", None)
    )
    assert (
        entries[("key", "aucert", "llm-config", "GEN")]
        == entries[("key", "aucert", "llm-config", "REP")]
        == claim
    )
    wish = entries[("name", "kimi-k2.6")]
    assert wish == NameClaim(
        "aucert/kimi",
        claim.created,
        claim.model,
        ("aucert/aucert-ai", "ops/east"),
        held_on=None,
        undecided=True,
    )
    assert ("placed", ACCOUNT.lower()) not in entries


def test_mid_swap_it_wishes_for_the_new_name_and_still_holds_the_old_one() -> None:
    status = {
        "resourceId": f"{ACCOUNT}/deployments/Kimi-K2.5",
        "observedGeneration": 2,
        "conditions": [{"type": "Ready", "status": "False", "reason": "Reconciling"}],
    }
    entries = deployment_index_entries("aucert", "kimi", META, SPEC, status)
    # The new name is not held yet, and the change is not settled: a younger object waits for it.
    assert entries[("name", "kimi-k2.6")].held_on is None and entries[("name", "kimi-k2.6")].undecided
    assert entries[("name", "kimi-k2.5")].held_on == ACCOUNT.lower()
    assert [c.owner for c in [entries[("placed", ACCOUNT.lower())]]] == ["aucert/kimi"]


def test_a_refused_object_is_decided_and_holds_nothing() -> None:
    status = {
        "observedGeneration": 2,
        "conditions": [{"type": "Stalled", "status": "True", "reason": "ModelNotOffered"}],
    }
    wish = deployment_index_entries("aucert", "kimi", META, SPEC, status)[("name", "kimi-k2.6")]
    assert wish.held_on is None and not wish.undecided
