"""The llm-config contract: what the ConfigMap holds for a set of published deployments.

Pure: given what each FoundryDeployment publishes and the namespace's primary endpoint, render the
keys; given the ConfigMap as it is, merge without touching keys the operator did not write.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

# The ConfigMap remembers which keys the operator wrote, so that it can later remove exactly
# those (and never a key someone else wrote), even after a restart.
MANAGED_KEYS_ANNOTATION = "foundry.llmops.io/managed-keys"
MODELS_JSON = "models.json"
ENDPOINT_KEY = "FOUNDRY_ENDPOINT"

OPENAI_API = "OpenAI Language Model Instance API"
INFERENCE_API = "Azure AI Model Inference API"
FOUNDRY_API = "AI Foundry API"


@dataclass(frozen=True)
class PublishedEntry:
    """What one FoundryDeployment publishes, under each of its keys."""

    owner: str  # "<namespace>/<name>" of the FoundryDeployment
    created: str  # creationTimestamp, so that the older object wins a key
    keys: tuple[str, ...]
    endpoint: str
    api_flavor: str
    deployment_name: str
    model_name: str
    model_version: str | None
    model_format: str
    sku_name: str
    capacity: int | None
    account: str
    region: str
    capabilities: tuple[tuple[str, str], ...] = ()
    retirement_date: str | None = None

    def describe(self) -> dict[str, object]:
        return {
            "endpoint": self.endpoint,
            "apiFlavor": self.api_flavor,
            "deployment": self.deployment_name,
            "model": self.model_name,
            "version": self.model_version,
            "format": self.model_format,
            "sku": self.sku_name,
            "capacity": self.capacity,
            "account": self.account,
            "region": self.region,
            "capabilities": dict(self.capabilities),
            "retirementDate": self.retirement_date,
        }


@dataclass(frozen=True)
class Rendering:
    data: dict[str, str]
    key_conflicts: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (winner, loser)


def endpoint_for_format(
    endpoints: Mapping[str, str], fallback: str | None, model_format: str
) -> tuple[str | None, str]:
    """(endpoint, api flavour): OpenAI-format models use the OpenAI-compatible endpoint, others model inference."""
    if model_format.lower() == "openai":
        order = [(OPENAI_API, "openai"), (INFERENCE_API, "model-inference"), (FOUNDRY_API, "model-inference")]
    else:
        order = [(INFERENCE_API, "model-inference"), (FOUNDRY_API, "model-inference"), (OPENAI_API, "openai")]
    for api_name, flavour in order:
        if endpoints.get(api_name):
            return endpoints[api_name], flavour
    return fallback, "openai" if model_format.lower() == "openai" else "model-inference"


def primary_endpoint(endpoints: Mapping[str, str], fallback: str | None) -> str | None:
    """FOUNDRY_ENDPOINT: the primary account's OpenAI-compatible endpoint (most clients speak that)."""
    endpoint, _ = endpoint_for_format(endpoints, fallback, "OpenAI")
    return endpoint


def render(entries: Iterable[PublishedEntry], primary: str | None) -> Rendering:
    """Render every key. When two objects publish the same key, the older object keeps it."""
    ordered = sorted(entries, key=lambda entry: (entry.created, entry.owner))
    data: dict[str, str] = {}
    models: dict[str, dict[str, object]] = {}
    owners: dict[str, str] = {}
    conflicts: dict[str, tuple[str, str]] = {}
    if primary:
        data[ENDPOINT_KEY] = primary
    for entry in ordered:
        for key in entry.keys:
            if key in owners and owners[key] != entry.owner:
                conflicts[key] = (owners[key], entry.owner)
                continue
            owners[key] = entry.owner
            data[f"FOUNDRY_DEPLOYMENT_{key}"] = entry.deployment_name
            if entry.endpoint != primary:
                data[f"FOUNDRY_ENDPOINT_{key}"] = entry.endpoint
            data[f"FOUNDRY_MODEL_{key}"] = entry.model_name
            if entry.model_version:
                data[f"FOUNDRY_MODEL_VERSION_{key}"] = entry.model_version
            models[key] = entry.describe()
    if models or primary:
        data[MODELS_JSON] = json.dumps(dict(sorted(models.items())), indent=2, sort_keys=True) + "\n"
    return Rendering(data, conflicts)


def merge(
    existing: Mapping[str, str], previously_managed: Iterable[str], rendered: Mapping[str, str]
) -> dict[str, str]:
    """New ConfigMap data: foreign keys kept, our stale keys dropped, our current keys set."""
    stale = set(previously_managed) - set(rendered)
    merged = {key: value for key, value in existing.items() if key not in stale}
    merged.update(rendered)
    return merged


def parse_managed_keys(annotation: str | None) -> set[str]:
    return {key for key in (annotation or "").split(",") if key}


def format_managed_keys(keys: Sequence[str] | set[str]) -> str:
    return ",".join(sorted(keys))
