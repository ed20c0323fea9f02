"""The llm-config contract: what the ConfigMap holds for a set of published deployments.

Pure: given what each FoundryDeployment publishes and the namespace's primary endpoint, render the
keys; given the ConfigMap as it is, merge without touching keys the operator did not write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import yaml

# The ConfigMap remembers which keys the operator wrote, so that it can later remove exactly
# those (and never a key someone else wrote), even after a restart.
MANAGED_KEYS_ANNOTATION = "foundry.llmops.io/managed-keys"
MODELS_JSON = "models.json"
LITELLM_YAML = "litellm.yaml"
ENDPOINT_KEY = "FOUNDRY_ENDPOINT"
# sha256 of the ConfigMap's data: pods can carry it in their template (a checksum annotation) so that
# a change rolls them; kube.py sets it on every write.
CONTENT_HASH_ANNOTATION = "foundry.llmops.io/content-hash"

# API versions LiteLLM sends: the first Azure OpenAI version with the Responses API, and model inference's.
LITELLM_AZURE_API_VERSION = "2025-04-01-preview"
LITELLM_INFERENCE_API_VERSION = "2024-05-01-preview"

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


def _winners(
    entries: Iterable[PublishedEntry],
) -> tuple[list[tuple[str, PublishedEntry]], dict[str, tuple[str, str]]]:
    """(key, entry) for every key, the older object winning a shared key; and the conflicts."""
    ordered = sorted(entries, key=lambda entry: (entry.created, entry.owner))
    owners: dict[str, str] = {}
    winners: list[tuple[str, PublishedEntry]] = []
    conflicts: dict[str, tuple[str, str]] = {}
    for entry in ordered:
        for key in entry.keys:
            if key in owners and owners[key] != entry.owner:
                conflicts[key] = (owners[key], entry.owner)
                continue
            if key not in owners:
                winners.append((key, entry))
            owners[key] = entry.owner
    return winners, conflicts


def render(entries: Iterable[PublishedEntry], primary: str | None, *, litellm: bool = False) -> Rendering:
    """Render every key. When two objects publish the same key, the older object keeps it.
    ``litellm``: also the ``litellm.yaml`` key (see ``render_litellm``)."""
    winners, conflicts = _winners(entries)
    data: dict[str, str] = {}
    models: dict[str, dict[str, object]] = {}
    if primary:
        data[ENDPOINT_KEY] = primary
    for key, entry in winners:
        data[f"FOUNDRY_DEPLOYMENT_{key}"] = entry.deployment_name
        if entry.endpoint != primary:
            data[f"FOUNDRY_ENDPOINT_{key}"] = entry.endpoint
        data[f"FOUNDRY_MODEL_{key}"] = entry.model_name
        if entry.model_version:
            data[f"FOUNDRY_MODEL_VERSION_{key}"] = entry.model_version
        models[key] = entry.describe()
    if models or primary:
        data[MODELS_JSON] = json.dumps(dict(sorted(models.items())), indent=2, sort_keys=True) + "\n"
        if litellm:
            data[LITELLM_YAML] = _litellm_yaml(winners)
    return Rendering(data, conflicts)


def render_litellm(entries: Iterable[PublishedEntry]) -> str:
    """A LiteLLM proxy config (``config.yaml``) with one ``model_list`` entry per key."""
    winners, _ = _winners(entries)
    return _litellm_yaml(winners)


def litellm_model(key: str, entry: PublishedEntry) -> dict[str, object]:
    """One ``model_list`` entry. The provider follows the API flavour: ``azure/`` calls the
    OpenAI-compatible endpoint by deployment name; ``azure_ai/`` calls model inference
    (``<endpoint>/models``, the deployment name as ``model``). ``base_model`` names the underlying
    model, which a custom deployment name hides: LiteLLM takes the model's parameters and routing
    from it (gpt-5.4 with tools and reasoning goes to the Responses API). No key is written: LiteLLM
    authenticates with Entra ID (see ``litellm_settings``)."""
    capabilities = dict(entry.capabilities)
    openai = entry.api_flavor == "openai"
    provider = "azure" if openai else "azure_ai"
    params: dict[str, object] = {
        "model": f"{provider}/{entry.deployment_name}",
        "api_base": entry.endpoint if openai else entry.endpoint.rstrip("/") + "/models",
        "api_version": LITELLM_AZURE_API_VERSION if openai else LITELLM_INFERENCE_API_VERSION,
        "base_model": f"{provider}/{entry.model_name}",
    }
    info: dict[str, object] = {"base_model": f"{provider}/{entry.model_name}"}
    if _enabled(capabilities, "responses") and (
        _enabled(capabilities, "reasoning") or not _enabled(capabilities, "chatCompletion")
    ):
        # Responses-only models (gpt-5.4-pro, codex) refuse chat completions, and gpt-5.4 and later
        # refuse function tools with reasoning there. LiteLLM bridges to the Responses API by the
        # deployment name, not base_model, so a custom name would reach chat completions: pin it.
        info["mode"] = "responses"
    elif _enabled(capabilities, "chatCompletion"):
        info["mode"] = "chat"
    info["supports_function_calling"] = _enabled(capabilities, "functionCalling")
    info["supports_reasoning"] = _enabled(capabilities, "reasoning")
    context = capabilities.get("maxContextToken", "")
    if context.isdigit():
        info["max_input_tokens"] = int(context)
    info["foundry"] = {
        "account": entry.account,
        "region": entry.region,
        "deployment": entry.deployment_name,
        "version": entry.model_version,
    }
    return {"model_name": key, "litellm_params": params, "model_info": info}


def _litellm_yaml(winners: Sequence[tuple[str, PublishedEntry]]) -> str:
    config = {
        "model_list": [litellm_model(key, entry) for key, entry in sorted(winners, key=lambda w: w[0])],
        # Entra ID without keys: the pod's identity (workload identity, or AZURE_CLIENT_ID/_SECRET),
        # for https://cognitiveservices.azure.com, refreshed before it expires.
        "litellm_settings": {"enable_azure_ad_token_refresh": True},
    }
    header = (
        "# Rendered by foundry-operator from the same entries as the FOUNDRY_* keys; do not edit.\n"
        "# One model per llm-config key. Run: litellm --config litellm.yaml (see docs/consumers.md).\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def _enabled(capabilities: Mapping[str, str], name: str) -> bool:
    return capabilities.get(name, "").lower() == "true"


def content_hash(data: Mapping[str, str]) -> str:
    """sha256 over the ConfigMap's data (keys and values, order-independent), for
    ``CONTENT_HASH_ANNOTATION``: equal data, equal hash; any change to a key or value changes it."""
    canonical = json.dumps(dict(sorted(data.items())), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


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
