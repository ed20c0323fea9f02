"""What a periodic look at one FoundryDeployment does, as a table (the handler only dispatches)."""

from __future__ import annotations

from typing import Any

import pytest

from foundry_operator.api.models import FoundryDeploymentStatus
from foundry_operator.steady import Resync, resync_kind

READY = [{"type": "Ready", "status": "True", "reason": "Ready"}]
STALLED = [
    {"type": "Ready", "status": "False", "reason": "InsufficientQuota"},
    {"type": "Stalled", "status": "True", "reason": "InsufficientQuota"},
]
WAITING = [{"type": "Ready", "status": "False", "reason": "AzureUnavailable"}]
RETIRING = {
    "accountRef": "aucert/aucert-ai",
    "deploymentName": "Kimi-K2.5",
    "resourceId": "/x/deployments/Kimi-K2.5",
    "notBefore": "2026-11-29T00:00:00Z",
}


@pytest.mark.parametrize(
    ("spec", "status", "conditions", "expected"),
    [
        ({"accounts": ["a"]}, {"accountRef": "a"}, READY, Resync.CHECK),
        ({"accounts": ["a", "b"]}, {"accountRef": "b"}, READY, Resync.CHECK),  # Sticky stays
        (
            {"accounts": ["a", "b"], "placementPolicy": "PreferFirst"},
            {"accountRef": "b"},
            READY,
            Resync.RECONCILE,
        ),
        (
            {"accounts": ["a", "b"], "placementPolicy": "PreferFirst"},
            {"accountRef": "a"},
            READY,
            Resync.CHECK,
        ),
        ({"accounts": ["a"]}, {"accountRef": "a", "retiring": [RETIRING]}, READY, Resync.RECONCILE),
        ({"accounts": ["a"]}, {"failedGeneration": 3}, STALLED, Resync.SKIP),  # Azure refused this spec
        ({"accounts": ["a"]}, {"failedGeneration": 2}, STALLED, Resync.RECONCILE),  # the spec changed since
        ({"accounts": ["a"]}, {}, STALLED, Resync.RECONCILE),  # placement may succeed now
        ({"accounts": ["a"]}, {}, WAITING, Resync.RECONCILE),
    ],
)
def test_resync_kind(spec: dict[str, Any], status: dict[str, Any], conditions: Any, expected: Resync) -> None:
    typed = FoundryDeploymentStatus.model_validate(status)
    assert resync_kind(spec, typed, conditions, generation=3) is expected
