"""litellm.yaml and the content hash, rendered without I/O."""

from __future__ import annotations

import yaml

from foundry_operator.publishing import LITELLM_YAML, PublishedEntry, content_hash, render, render_litellm

GPT = (("chatCompletion", "true"), ("functionCalling", "true"), ("maxContextToken", "1050000"),
       ("reasoning", "true"), ("responses", "true"))  # fmt: skip
PRO = (("reasoning", "true"), ("responses", "true"))
KIMI = (("chatCompletion", "true"), ("functionCalling", "true"))


def entry(owner: str, keys: tuple[str, ...], deployment: str, model: str, caps: tuple[tuple[str, str], ...],
          flavour: str = "openai", account: str = "aucert-ai", created: str = "2026-01-01") -> PublishedEntry:  # fmt: skip
    host = "openai.azure.com" if flavour == "openai" else "services.ai.azure.com"
    return PublishedEntry(
        owner, created, keys, f"https://{account}.{host}/", flavour, deployment, model, "v1",
        "OpenAI" if flavour == "openai" else "MoonshotAI", "GlobalStandard", 10, account, "westus", caps,
    )  # fmt: skip


ENTRIES = [
    entry("ns/chat", ("CHAT_MAIN",), "chat-main", "gpt-5.4", GPT),
    entry("ns/pro", ("REASONING_PRO",), "gpt-5.4-pro", "gpt-5.4-pro", PRO, account="aucert-ai-east"),
    entry("ns/kimi", ("GENERATION", "REPORTING"), "Kimi-K2.6", "Kimi-K2.6", KIMI, flavour="model-inference"),
]


def models() -> dict[str, dict[str, object]]:
    config = yaml.safe_load(render_litellm(ENTRIES))
    assert config["litellm_settings"] == {"enable_azure_ad_token_refresh": True}
    return {m["model_name"]: m for m in config["model_list"]}


def test_one_entry_per_key_with_the_provider_of_the_api_flavour() -> None:
    found = models()
    assert list(found) == ["CHAT_MAIN", "GENERATION", "REASONING_PRO", "REPORTING"]
    assert found["CHAT_MAIN"]["litellm_params"] == {
        "model": "azure/chat-main",
        "api_base": "https://aucert-ai.openai.azure.com/",
        "api_version": "2025-04-01-preview",
        "base_model": "azure/gpt-5.4",
    }
    assert found["GENERATION"]["litellm_params"] == {
        "model": "azure_ai/Kimi-K2.6",
        "api_base": "https://aucert-ai.services.ai.azure.com/models",
        "api_version": "2024-05-01-preview",
        "base_model": "azure_ai/Kimi-K2.6",
    }
    assert found["REPORTING"]["litellm_params"] == found["GENERATION"]["litellm_params"]


def test_routing_mode_follows_the_catalog_capabilities() -> None:
    found = models()
    info = {key: m["model_info"] for key, m in found.items()}
    assert info["CHAT_MAIN"]["mode"] == "responses"  # tools with reasoning: chat completions refuse them
    assert info["REASONING_PRO"]["mode"] == "responses"  # no chatCompletion at all
    assert info["GENERATION"]["mode"] == "chat"
    assert info["CHAT_MAIN"]["max_input_tokens"] == 1050000
    assert info["GENERATION"]["supports_reasoning"] is False


def test_no_secret_and_opt_in() -> None:
    text = render_litellm(ENTRIES)
    assert "api_key" not in text and "secret" not in text.lower()
    assert LITELLM_YAML not in render(ENTRIES, "https://aucert-ai.openai.azure.com/").data
    assert render(ENTRIES, "https://aucert-ai.openai.azure.com/", litellm=True).data[LITELLM_YAML] == text


def test_a_key_conflict_keeps_the_older_object_in_litellm_too() -> None:
    newer = entry("ns/newer", ("CHAT_MAIN",), "other", "gpt-5.4", GPT, created="2026-06-01")
    config = yaml.safe_load(render_litellm([newer, *ENTRIES]))
    chat = next(m for m in config["model_list"] if m["model_name"] == "CHAT_MAIN")
    assert chat["litellm_params"]["model"] == "azure/chat-main"


def test_content_hash_is_order_independent_and_sensitive() -> None:
    data = render(ENTRIES, "https://aucert-ai.openai.azure.com/", litellm=True).data
    assert content_hash(data) == content_hash(dict(reversed(list(data.items()))))
    assert len(content_hash(data)) == 64
    changed = {**data, "FOUNDRY_DEPLOYMENT_CHAT_MAIN": "chat-main-2"}
    assert content_hash(changed) != content_hash(data)
