"""foundry-llm-client: llm-config resolution, folder reloads, and real openai clients against the emulator."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import openai
import pytest
from azure.identity.aio import ClientSecretCredential
from foundry_llm_client import FoundryClients, LlmConfig, LlmConfigError, normalize_key

from foundry_emulator.azure import AzureEmulator
from foundry_operator.publishing import render

from .conftest import CONSUMER_ID, CONSUMER_SECRET
from .support import deploy, grant_data_plane

WEST = "https://aucert-ai.openai.azure.com/"
EAST = "https://aucert-ai-east.openai.azure.com/"


def test_override_first_then_the_primary_endpoint() -> None:
    config = LlmConfig.from_environment(
        {
            "FOUNDRY_ENDPOINT": WEST,
            "FOUNDRY_DEPLOYMENT_DECISION": "gpt-5.4",
            "FOUNDRY_DEPLOYMENT_REASONING_PRO": "gpt-5.4-pro",
            "FOUNDRY_ENDPOINT_REASONING_PRO": EAST,
            "FOUNDRY_MODEL_REASONING_PRO": "gpt-5.4-pro",
            "UNRELATED": "x",
        }
    )
    assert config.resolve("decision").endpoint == WEST
    pro = config.resolve("reasoning-pro")
    assert (pro.key, pro.endpoint, pro.deployment, pro.model, pro.api_flavor) == (
        "REASONING_PRO", EAST, "gpt-5.4-pro", "gpt-5.4-pro", "openai",
    )  # fmt: skip
    assert config.keys() == ["DECISION", "REASONING_PRO"]


def test_errors_name_the_key_and_the_fix() -> None:
    config = LlmConfig.from_environment({"FOUNDRY_DEPLOYMENT_DECISION": "gpt-5.4"})
    with pytest.raises(
        LlmConfigError, match=r"no FOUNDRY_DEPLOYMENT_CODING .*keys present: DECISION.*spec.keys"
    ):
        config.resolve("coding")
    with pytest.raises(
        LlmConfigError, match=r"neither FOUNDRY_ENDPOINT_DECISION nor FOUNDRY_ENDPOINT.*primary"
    ):
        config.resolve("DECISION")
    with pytest.raises(LlmConfigError, match="not a key"):
        normalize_key("--")
    with pytest.raises(LlmConfigError, match="is not a folder"):
        LlmConfig.from_environment({"FOUNDRY_LLM_CONFIG_DIR": "/nonexistent/llm-config"})


def write_configmap(folder: Path, data: dict[str, str]) -> None:
    """As the kubelet does: files in a timestamped folder, swapped in through the ..data symlink."""
    version = folder / f"..{len(list(folder.glob('..*_2026')))}_2026"
    version.mkdir()
    for key, value in data.items():
        (version / key).write_text(value)
    (folder / "..data_tmp").symlink_to(version.name)
    os.replace(folder / "..data_tmp", folder / "..data")
    for key in data:
        if not (folder / key).is_symlink():
            (folder / key).symlink_to(f"..data/{key}")
    for stale in folder.iterdir():
        if not stale.name.startswith(".") and stale.name not in data:
            stale.unlink()


def test_a_mounted_folder_is_reread_when_the_configmap_changes(tmp_path: Path) -> None:
    write_configmap(tmp_path, {"FOUNDRY_ENDPOINT": WEST, "FOUNDRY_DEPLOYMENT_DECISION": "gpt-5.4"})
    config = LlmConfig.from_environment({"FOUNDRY_LLM_CONFIG_DIR": str(tmp_path)})
    assert config.resolve("DECISION").endpoint == WEST
    write_configmap(
        tmp_path,
        {
            "FOUNDRY_ENDPOINT": WEST,
            "FOUNDRY_DEPLOYMENT_DECISION": "gpt-5.4",
            "FOUNDRY_ENDPOINT_DECISION": EAST,
        },
    )
    assert config.resolve("DECISION").endpoint == EAST
    assert not config.refresh()  # nothing changed since


def test_clients_follow_a_changed_configmap(tmp_path: Path) -> None:
    write_configmap(tmp_path, {"FOUNDRY_ENDPOINT": WEST, "FOUNDRY_DEPLOYMENT_DECISION": "gpt-5.4"})
    clients = FoundryClients(LlmConfig.from_folder(tmp_path), api_key="local-key")
    first = clients.get("DECISION")
    assert clients.get("DECISION") is first  # cached while nothing changes
    assert str(first.client.base_url).startswith(WEST + "openai")
    write_configmap(
        tmp_path,
        {
            "FOUNDRY_ENDPOINT": WEST,
            "FOUNDRY_DEPLOYMENT_DECISION": "gpt-5.4",
            "FOUNDRY_ENDPOINT_DECISION": EAST,
        },
    )
    assert str(clients.get("DECISION").client.base_url).startswith(EAST + "openai")


def test_entra_clients_reach_every_key_through_the_published_endpoints(
    routed: AzureEmulator, tmp_path: Path
) -> None:
    """The operator's rendering, mounted as a folder; DefaultAzureCredential from the environment;
    the real openai SDK; HTTPS_PROXY routes the public host names to the emulator."""
    entries = [
        deploy(routed, "DECISION", "aucert-ai", "gpt-5.4", "gpt-5.4", "2026-03-05"),
        deploy(routed, "GENERATION", "aucert-ai", "Kimi-K2.6", "Kimi-K2.6", "2026-04-20", fmt="MoonshotAI"),
    ]
    mount = tmp_path / "llm-config"
    mount.mkdir()
    write_configmap(mount, render(entries, WEST).data)
    clients = FoundryClients(LlmConfig.from_folder(mount))
    decision = clients.get("DECISION")
    tools: Any = [{"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}]
    answer = decision.client.responses.create(
        model=decision.model, input="hi", tools=tools, reasoning={"effort": "high"}
    )
    assert [item.type for item in answer.output] == ["reasoning", "function_call"]
    chat = decision.client.chat.completions.create(
        model=decision.model, messages=[{"role": "user", "content": "hi"}]
    )
    assert (
        chat.choices[0].message.content
        == "[gpt-5.4 2026-03-05 | deployment gpt-5.4 | account aucert-ai] prompt: hi"
    )
    generation = clients.get("GENERATION")
    assert str(generation.client.base_url) == "https://aucert-ai.services.ai.azure.com/models/"
    kimi = generation.client.chat.completions.create(
        model=generation.model, messages=[{"role": "user", "content": "hi"}]
    )
    assert kimi.model == "Kimi-K2.6"


async def test_async_client_and_a_missing_role(routed: AzureEmulator) -> None:
    entry = deploy(routed, "REASONING_PRO", "aucert-ai-east", "gpt-5.4-pro", "gpt-5.4-pro", "2026-03-05")
    config = LlmConfig(render([entry], WEST).data)
    # aiohttp builds its default SSL context at import, before this test set SSL_CERT_FILE: name the CA.
    async with ClientSecretCredential(
        routed.tenant_id, CONSUMER_ID, CONSUMER_SECRET, connection_verify=str(routed.ca_file)
    ) as credential:
        pro = FoundryClients(config, async_credential=credential, max_retries=0).get_async("REASONING_PRO")
        # inference-pods holds no data-plane role on the second account: Azure's 403, named
        with pytest.raises(openai.PermissionDeniedError, match="lacks the required data action"):
            await pro.client.responses.create(model=pro.model, input="hi")
        grant_data_plane(routed, "aucert-ai-east")
        answer = await pro.client.responses.create(model=pro.model, input="hi")
        assert answer.output_text.endswith("account aucert-ai-east] prompt: hi")
        await pro.client.close()


def test_key_mode_for_local_development(routed: AzureEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = deploy(routed, "REASONING_PRO", "aucert-ai-east", "gpt-5.4-pro", "gpt-5.4-pro", "2026-03-05")
    monkeypatch.setenv(
        "FOUNDRY_API_KEY", routed.state.get_account("aucert-foundation-rg", "aucert-ai-east").keys[0]
    )
    pro = FoundryClients(LlmConfig(render([entry], WEST).data), max_retries=0).get("REASONING_PRO")
    answer = pro.client.responses.create(model=pro.model, input="hello")
    assert answer.output_text.endswith("account aucert-ai-east] prompt: hello")
    with pytest.raises(openai.BadRequestError, match="chatCompletion operation does not work"):
        pro.client.chat.completions.create(model=pro.model, messages=[{"role": "user", "content": "x"}])
