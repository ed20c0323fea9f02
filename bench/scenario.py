"""The bench's generated world: M accounts in M regions, N FoundryDeployments spread over them.

The scenario goes through `parse_scenario` (the emulator's own loader, with its cross-checks), so
the bench world obeys the same rules as any scenario file. Every deployment is a small-capacity
deployment of one of a few models under its own deploymentName: N distinct Azure deployments
without needing N models, and quota sized so that none is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from foundry_emulator.azure import Scenario, parse_scenario

TENANT_ID = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"
SUBSCRIPTION_ID = "3c2b1a09-8f7e-4d6c-9b5a-1e2d3c4b5a69"
CLIENT_ID = "0d4c7b8a-2f1e-4d3c-8b5a-9e8f7a6b5c4d"
CLIENT_SECRET = "bench-client-secret-not-a-real-secret"
RESOURCE_GROUP = "bench-rg"
NAMESPACE = "bench"
GROUP_VERSION = "foundry.llmops.io/v1alpha1"

REGIONS = (
    "westus",
    "eastus2",
    "swedencentral",
    "southcentralus",
    "francecentral",
    "japaneast",
    "uksouth",
    "australiaeast",
)
# (name, version): OpenAI-format models, so that an adopted deployment's defaults (version upgrade
# option) match what the operator would have written.
MODELS = (
    ("gpt-5.4", "2026-03-05"),
    ("gpt-5.4-mini", "2026-03-17"),
    ("gpt-5-nano", "2025-08-07"),
    ("gpt-5.1-codex", "2025-11-13"),
)
CAPACITY = 1  # thousands of TPM per deployment: small, so quota is never what limits the bench


@dataclass(frozen=True)
class Planned:
    """One FoundryDeployment of the bench and where it will land."""

    object_name: str
    deployment_name: str
    model: str
    version: str
    account_index: int

    @property
    def key(self) -> str:
        return self.object_name.upper().replace("-", "_").replace(".", "_")


def account_name(index: int) -> str:
    return f"bench-ai-{index}"


def plan(n: int, accounts: int, prefix: str = "bench") -> list[Planned]:
    """N deployments, round-robin over the accounts (each lists only its own account, so placement
    is known in advance and the lower bound is exact)."""
    result = []
    for j in range(n):
        model, version = MODELS[j % len(MODELS)]
        result.append(Planned(f"{prefix}-{j:04d}", f"{model}-{prefix}-{j:04d}", model, version, j % accounts))
    return result


def lower_bound(planned: Sequence[Planned], accounts: int, lro_seconds: float) -> float:
    """The busiest account's serial sum: writes to one account cannot overlap."""
    per_account = [0] * accounts
    for item in planned:
        per_account[item.account_index] += 1
    return max(per_account) * lro_seconds


def build_scenario(
    accounts: int,
    lro_seconds: float,
    quota_per_model: int,
    existing: Sequence[Planned] = (),
    throttling: bool = True,
    poll_seconds: float = 0.2,
) -> Scenario:
    if not 1 <= accounts <= len(REGIONS):
        raise ValueError(f"accounts must be between 1 and {len(REGIONS)}")
    regions = REGIONS[:accounts]
    document: dict[str, Any] = {
        "tenantId": TENANT_ID,
        "subscriptionId": SUBSCRIPTION_ID,
        "principals": [
            {"displayName": "foundry-operator", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}
        ],
        "resourceGroups": [RESOURCE_GROUP],
        # pollSeconds is the Retry-After of long-running operations, the emulator's default.
        "timing": {"lroSeconds": lro_seconds, "pollSeconds": poll_seconds},
        "throttling": {"enabled": throttling},  # ARM's published limits (the emulator's defaults)
        "models": [
            {
                "format": "OpenAI",
                "name": name,
                "kinds": ["AIServices", "OpenAI"],
                "capabilities": {"chatCompletion": "true"},
                "skus": [
                    {
                        "name": "GlobalStandard",
                        "usageName": f"OpenAI.GlobalStandard.{name}",
                        "capacity": {"minimum": 1, "maximum": 10000, "step": 1, "default": CAPACITY},
                    }
                ],
                "versions": [{"version": version, "isDefaultVersion": True}],
            }
            for name, version in MODELS
        ],
        "regions": [
            {"name": region, "offers": [{"model": name} for name, _ in MODELS]} for region in regions
        ],
        "quotas": [
            {"region": region, "usageName": f"OpenAI.GlobalStandard.{name}", "limit": quota_per_model}
            for region in regions
            for name, _ in MODELS
        ],
        "accounts": [
            {
                "resourceGroup": RESOURCE_GROUP,
                "name": account_name(i),
                "location": region,
                "kind": "AIServices",
            }
            for i, region in enumerate(regions)
        ],
        "deployments": [
            {
                "account": account_name(item.account_index),
                "name": item.deployment_name,
                "model": {"format": "OpenAI", "name": item.model, "version": item.version},
                "sku": {"name": "GlobalStandard", "capacity": CAPACITY},
            }
            for item in existing
        ],
    }
    return parse_scenario(yaml.safe_dump(document, sort_keys=False), source="<bench scenario>")


def account_manifests(accounts: int) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": GROUP_VERSION,
            "kind": "FoundryAccount",
            "metadata": {"name": account_name(i)},
            "spec": {
                "subscriptionId": SUBSCRIPTION_ID,
                "resourceGroup": RESOURCE_GROUP,
                "accountName": account_name(i),
                "primary": i == 0,
            },
        }
        for i in range(accounts)
    ]


def deployment_manifest(item: Planned) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "FoundryDeployment",
        "metadata": {"name": item.object_name},
        "spec": {
            "model": {"name": item.model},
            "deploymentName": item.deployment_name,
            "sku": {"name": "GlobalStandard", "capacity": CAPACITY},
            "accounts": [account_name(item.account_index)],
        },
    }
