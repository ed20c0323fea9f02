"""The ADR world end to end: examples/ applied, llm-config as DESIGN.md section 5 says."""

from __future__ import annotations

import asyncio
import json

import yaml

from foundry_emulator.sandbox import Sandbox
from foundry_operator.publishing import CONTENT_HASH_ANNOTATION, MANAGED_KEYS_ANNOTATION, content_hash
from tests.integration.conftest import NAMESPACE, arm_requests, azure_deployments, examples


async def test_examples_converge_and_publish_the_contract(box: Sandbox) -> None:
    await box.start_operator()
    await box.apply(examples(), NAMESPACE)
    names = ["gpt-5.4", "reasoning-pro", "gpt-5.3-codex", "gpt-5.1-codex", "deepseek-v3.2", "kimi-k2.6"]
    for name in names:
        await box.wait_condition("FoundryDeployment", NAMESPACE, name, timeout=60)

    pro = await box.get("FoundryDeployment", NAMESPACE, "reasoning-pro")
    assert pro["status"]["account"] == "aucert-ai-east" and pro["status"]["region"] == "eastus2"
    west = pro["status"]["candidates"][0]
    assert west["eligible"] is False and "is not offered in westus (account aucert-ai)" in west["reason"]
    assert pro["status"]["observedGeneration"] == pro["metadata"]["generation"]

    data = await box.config_map(NAMESPACE)
    assert data is not None
    assert data["FOUNDRY_ENDPOINT"] == "https://aucert-ai.openai.azure.com/"
    assert data["FOUNDRY_ENDPOINT_REASONING_PRO"] == "https://aucert-ai-east.openai.azure.com/"
    assert "FOUNDRY_ENDPOINT_DECISION" not in data  # same endpoint as the primary: no override
    assert data["FOUNDRY_DEPLOYMENT_GENERATION"] == data["FOUNDRY_DEPLOYMENT_REPORTING"] == "Kimi-K2.6"
    assert (
        data["FOUNDRY_ENDPOINT_GENERATION"] == "https://aucert-ai.services.ai.azure.com/"
    )  # MoonshotAI format
    assert data["FOUNDRY_MODEL_VERSION_CODING"] == "2026-02-24"
    assert data["FOUNDRY_DEPLOYMENT_REASONING_PRO"] == "gpt-5.4-pro"  # deployment name = model name, verbatim
    models = json.loads(data["models.json"])
    assert models["REASONING_PRO"]["account"] == "aucert-ai-east"
    assert models["GENERATION"]["apiFlavor"] == "model-inference"
    assert models["DECISION"]["capabilities"]["responses"] == "true"

    # In Azure: six deployments, named as the models, on the right accounts; no write ever collided.
    west_names = set(azure_deployments(box, "aucert-ai"))
    east_names = set(azure_deployments(box, "aucert-ai-east"))
    assert west_names == {"gpt-5.4", "gpt-5.3-codex", "gpt-5.1-codex", "DeepSeek-V3.2", "Kimi-K2.6"}
    assert east_names == {"gpt-5.4-pro"}
    assert arm_requests(box, status=409) == []
    assert len(arm_requests(box, "PUT", "deployment")) == 6

    config_map = await asyncio.to_thread(box.core.read_namespaced_config_map, "llm-config", NAMESPACE)
    managed = set(config_map.metadata.annotations[MANAGED_KEYS_ANNOTATION].split(","))
    assert managed == set(data)
    # The LiteLLM proxy config, one entry per key, and a hash of the content for Reloader-style rollouts.
    litellm = yaml.safe_load(data["litellm.yaml"])
    assert {entry["model_name"] for entry in litellm["model_list"]} == set(models)
    assert config_map.metadata.annotations[CONTENT_HASH_ANNOTATION] == content_hash(data)


async def test_catalog_is_read_once_per_region_not_per_object(box: Sandbox) -> None:
    await box.start_operator()
    await box.apply(examples(), NAMESPACE)
    for name in ("gpt-5.4", "reasoning-pro", "kimi-k2.6"):
        await box.wait_condition("FoundryDeployment", NAMESPACE, name, timeout=60)
    catalog_reads = arm_requests(box, "GET", "location.models")
    regions = sorted(entry["path"].split("/locations/")[1].split("/")[0] for entry in catalog_reads)
    assert regions == ["eastus2", "westus"]


async def test_metrics_count_arm_requests_cache_use_and_readiness(box: Sandbox) -> None:
    handle = await box.start_operator()
    await box.apply(examples(), NAMESPACE)
    for name in ("gpt-5.4", "reasoning-pro", "gpt-5.3-codex", "gpt-5.1-codex", "deepseek-v3.2", "kimi-k2.6"):
        await box.wait_condition("FoundryDeployment", NAMESPACE, name, timeout=60)
    registry = handle.metrics.registry

    def value(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    assert value("foundry_arm_requests_total", operation="deployment", method="PUT", status="201") == 6
    assert value("foundry_arm_requests_total", operation="location.models", method="GET", status="200") == 2
    # Six objects, two regions: all but the first lookup per region were served by the cache.
    assert value("foundry_cache_lookups_total", cache="catalog", result="miss") == 2
    assert (
        value("foundry_cache_lookups_total", cache="catalog", result="hit")
        + value("foundry_cache_lookups_total", cache="catalog", result="shared")
        >= 4
    )
    assert value("foundry_deployments", status="True", reason="Ready") == 6
    assert (
        value(
            "foundry_quota_headroom",
            subscription=box.azure.subscription_id,
            region="eastus2",
            usage="OpenAI.GlobalStandard.gpt-5.4-pro",
        )
        == 200
    )
    assert (
        value(
            "foundry_reconcile_duration_seconds_count",
            kind="FoundryDeployment",
            trigger="apply",
            outcome="ready",
        )
        == 6
    )
