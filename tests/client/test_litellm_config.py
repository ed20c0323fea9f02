"""The rendered litellm.yaml, loaded by the real litellm Router as the proxy loads it, calls every
key against the emulator with Entra ID (no key anywhere), gpt-5.4 with tools and reasoning included."""

from __future__ import annotations

from typing import Any

import litellm
import pytest
import yaml

from foundry_emulator.azure import AzureEmulator
from foundry_operator.publishing import LITELLM_YAML, render

from .support import deploy, grant_data_plane

TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def test_every_key_answers_through_litellm(routed: AzureEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [
        deploy(routed, "DECISION", "aucert-ai", "gpt-5.4", "gpt-5.4", "2026-03-05"),
        # a custom deployment name hides the model: only the rendered config tells LiteLLM
        deploy(routed, "CHAT_MAIN", "aucert-ai", "chat-main", "gpt-5.4", "2026-03-05"),
        deploy(routed, "REASONING_PRO", "aucert-ai-east", "gpt-5.4-pro", "gpt-5.4-pro", "2026-03-05"),
        deploy(routed, "CODING", "aucert-ai", "gpt-5.3-codex", "gpt-5.3-codex", "2026-02-24"),
        deploy(routed, "GENERATION", "aucert-ai", "Kimi-K2.6", "Kimi-K2.6", "2026-04-20", fmt="MoonshotAI"),
    ]
    grant_data_plane(routed, "aucert-ai-east")  # the ADR's second account
    text = render(entries, "https://aucert-ai.openai.azure.com/", litellm=True).data[LITELLM_YAML]
    assert "api_key" not in text
    config = yaml.safe_load(text)
    for name, value in config["litellm_settings"].items():  # what `litellm --config` does with them
        monkeypatch.setattr(litellm, name, value)
    router = litellm.Router(model_list=config["model_list"], num_retries=0)
    answered: dict[tuple[str, bool], str] = {}
    for key in ("DECISION", "CHAT_MAIN", "REASONING_PRO", "CODING", "GENERATION"):
        plain = router.completion(model=key, messages=[{"role": "user", "content": f"hello {key}"}])
        answered[(key, False)] = plain.choices[0].message.content or ""
        extra: dict[str, Any] = {"reasoning_effort": "high"} if key != "GENERATION" else {}
        tooled = router.completion(
            model=key, messages=[{"role": "user", "content": "weather?"}], tools=TOOLS, **extra
        )
        calls = tooled.choices[0].message.tool_calls or []
        answered[(key, True)] = ",".join(c.function.name or "" for c in calls)
    deployments = {"DECISION": "gpt-5.4", "CHAT_MAIN": "chat-main", "REASONING_PRO": "gpt-5.4-pro"}
    for key, deployment in deployments.items():
        assert f"| deployment {deployment} |" in answered[(key, False)]
        assert answered[(key, True)] == "get_weather"
    assert "account aucert-ai-east] prompt: hello REASONING_PRO" in answered[("REASONING_PRO", False)]
    assert answered[("GENERATION", False)].startswith("[Kimi-K2.6 2026-04-20")
    assert answered[("CODING", True)] == answered[("GENERATION", True)] == "get_weather"
    log = routed.log.since(0)
    paths = [(e["path"], e["status"]) for e in log if e["service"] == "dataplane"]
    # gpt-5.4 with tools and reasoning went to the Responses API, never to chat completions
    assert ("/openai/deployments/chat-main/chat/completions", 400) not in paths
    assert all(status == 200 for _, status in paths), paths
    assert ("/models/chat/completions", 200) in paths and ("/openai/responses", 200) in paths
    # Entra ID at its public name, through the proxy: the token came from the emulator
    assert any(e["path"].endswith("/oauth2/v2.0/token") for e in log)
