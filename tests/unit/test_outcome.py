"""Status patches come from the pydantic status models: only the fields a reconcile set, camelCase."""

from __future__ import annotations

from foundry_operator.api.models import CandidateStatus, FoundryAccountStatus, RetiringDeployment
from foundry_operator.outcome import Outcome, deployment_outcome


def test_only_the_fields_set_are_patched_and_none_deletes() -> None:
    outcome = deployment_outcome()
    outcome.status.config_map_name = "llm-config"
    outcome.status.retirement_warning = None  # no retirement announced any more: the field goes
    outcome.status.candidates = [CandidateStatus(account="aucert-ai", eligible=True, reason="chosen")]
    outcome.status.retiring = [
        RetiringDeployment(
            account_ref="aucert/aucert-ai",
            deployment_name="Kimi-K2.5",
            resource_id="/x/deployments/Kimi-K2.5",
            region=None,
            not_before="2026-11-29T00:00:00Z",
        )
    ]
    assert outcome.status_patch() == {
        "configMapName": "llm-config",
        "retirementWarning": None,
        "candidates": [{"account": "aucert-ai", "eligible": True, "reason": "chosen"}],
        "retiring": [
            {
                "accountRef": "aucert/aucert-ai",
                "deploymentName": "Kimi-K2.5",
                "resourceId": "/x/deployments/Kimi-K2.5",
                "notBefore": "2026-11-29T00:00:00Z",
            }
        ],
    }


def test_an_account_outcome_patches_the_account_status_fields() -> None:
    outcome = Outcome(FoundryAccountStatus())
    outcome.status.deployment_count = 0
    outcome.status.endpoints = {"openai": "https://a.openai.azure.com/"}
    assert outcome.status_patch() == {
        "deploymentCount": 0,
        "endpoints": {"openai": "https://a.openai.azure.com/"},
    }
