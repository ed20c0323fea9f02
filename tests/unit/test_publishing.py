"""The llm-config contract, rendered and merged without I/O."""

from __future__ import annotations

import json

from foundry_operator.publishing import (
    INFERENCE_API,
    OPENAI_API,
    PublishedEntry,
    endpoint_for_format,
    merge,
    primary_endpoint,
    render,
)

WEST = {
    OPENAI_API: "https://aucert-ai.openai.azure.com/",
    INFERENCE_API: "https://aucert-ai.services.ai.azure.com/",
}
EAST = {
    OPENAI_API: "https://aucert-ai-east.openai.azure.com/",
    INFERENCE_API: "https://aucert-ai-east.services.ai.azure.com/",
}


def entry(
    owner: str,
    keys: tuple[str, ...],
    endpoints: dict[str, str],
    model: str,
    fmt: str = "OpenAI",
    created: str = "2026-11-21T00:00:00Z",
    region: str = "westus",
) -> PublishedEntry:
    endpoint, flavour = endpoint_for_format(endpoints, None, fmt)
    assert endpoint is not None
    return PublishedEntry(
        owner,
        created,
        keys,
        endpoint,
        flavour,
        model,
        model,
        "v1",
        fmt,
        "GlobalStandard",
        100,
        "aucert-ai",
        region,
    )


def test_adr_contract() -> None:
    primary = primary_endpoint(WEST, None)
    rendering = render(
        [
            entry("ns/gpt-5.4", ("DECISION",), WEST, "gpt-5.4"),
            entry("ns/reasoning-pro", ("REASONING_PRO",), EAST, "gpt-5.4-pro", region="eastus2"),
            entry("ns/kimi", ("GENERATION", "REPORTING"), WEST, "Kimi-K2.6", fmt="MoonshotAI"),
        ],
        primary,
    )
    data = rendering.data
    assert data["FOUNDRY_ENDPOINT"] == "https://aucert-ai.openai.azure.com/"
    assert data["FOUNDRY_DEPLOYMENT_DECISION"] == "gpt-5.4"
    assert "FOUNDRY_ENDPOINT_DECISION" not in data  # same as the primary: no override
    assert data["FOUNDRY_ENDPOINT_REASONING_PRO"] == "https://aucert-ai-east.openai.azure.com/"
    # Kimi is not OpenAI-format: the model-inference endpoint, which differs from the primary.
    assert (
        data["FOUNDRY_ENDPOINT_GENERATION"]
        == data["FOUNDRY_ENDPOINT_REPORTING"]
        == "https://aucert-ai.services.ai.azure.com/"
    )
    assert data["FOUNDRY_DEPLOYMENT_GENERATION"] == data["FOUNDRY_DEPLOYMENT_REPORTING"] == "Kimi-K2.6"
    assert data["FOUNDRY_MODEL_REPORTING"] == "Kimi-K2.6" and data["FOUNDRY_MODEL_VERSION_REPORTING"] == "v1"
    models = json.loads(data["models.json"])
    assert set(models) == {"DECISION", "REASONING_PRO", "GENERATION", "REPORTING"}
    assert (
        models["GENERATION"]["apiFlavor"] == "model-inference"
        and models["REASONING_PRO"]["region"] == "eastus2"
    )
    assert rendering.key_conflicts == {}


def test_rendering_is_deterministic() -> None:
    entries = [entry("ns/a", ("A",), WEST, "m1"), entry("ns/b", ("B",), EAST, "m2")]
    assert render(entries, None).data == render(list(reversed(entries)), None).data


def test_older_object_keeps_a_contested_key() -> None:
    rendering = render(
        [
            entry("ns/new", ("SHARED",), EAST, "new-model", created="2026-11-21T10:00:00Z"),
            entry("ns/old", ("SHARED",), WEST, "old-model", created="2026-11-20T10:00:00Z"),
        ],
        None,
    )
    assert rendering.data["FOUNDRY_DEPLOYMENT_SHARED"] == "old-model"
    assert rendering.key_conflicts == {"SHARED": ("ns/old", "ns/new")}


def test_merge_keeps_foreign_keys_and_drops_only_our_stale_ones() -> None:
    existing = {"LOG_LEVEL": "debug", "FOUNDRY_DEPLOYMENT_OLD": "x", "FOUNDRY_DEPLOYMENT_A": "a0"}
    merged = merge(
        existing, {"FOUNDRY_DEPLOYMENT_OLD", "FOUNDRY_DEPLOYMENT_A"}, {"FOUNDRY_DEPLOYMENT_A": "a1"}
    )
    assert merged == {"LOG_LEVEL": "debug", "FOUNDRY_DEPLOYMENT_A": "a1"}


def test_endpoint_choice_by_format_with_fallbacks() -> None:
    assert endpoint_for_format(WEST, None, "OpenAI") == ("https://aucert-ai.openai.azure.com/", "openai")
    assert endpoint_for_format(WEST, None, "DeepSeek") == (
        "https://aucert-ai.services.ai.azure.com/",
        "model-inference",
    )
    openai_kind = {OPENAI_API: "https://o.openai.azure.com/"}
    assert endpoint_for_format(openai_kind, None, "Meta") == ("https://o.openai.azure.com/", "openai")
    assert endpoint_for_format({}, "https://fallback/", "OpenAI") == ("https://fallback/", "openai")
