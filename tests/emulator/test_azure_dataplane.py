"""The accounts' data plane, called by the real openai SDK at the accounts' public host names,
routed to the emulator through its CONNECT proxy, with Entra ID tokens from azure-identity."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest
from azure.identity import ClientSecretCredential, get_bearer_token_provider
from openai import AzureOpenAI, OpenAI

from foundry_emulator.azure import AzureEmulator

if TYPE_CHECKING:
    from conftest import Sdk

RG = "aucert-foundation-rg"
CONSUMER_ID = "5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"  # inference-pods: a role on aucert-ai only
CONSUMER_SECRET = "emulator-inference-secret-not-a-real-secret"
DATA_SCOPE = "https://cognitiveservices.azure.com/.default"
WEST = "https://aucert-ai.openai.azure.com/"
API_VERSION = "2025-04-01-preview"
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"],
}


def deploy(
    sdk: Sdk, account: str, name: str, model: str, version: str, fmt: str = "OpenAI", capacity: int = 10
) -> None:
    """An out-of-band deployment (instantly Succeeded), through the admin API."""
    body = {"model": {"format": fmt, "name": model, "version": version}, "sku": {"capacity": capacity}}
    assert sdk.admin("PUT", f"/deployments/{RG}/{account}/{name}", body).status == 201


@pytest.fixture
def http(emu: AzureEmulator) -> Iterator[httpx.Client]:
    """What a local client uses: the emulator's proxy for the public host names, its CA for TLS."""
    with httpx.Client(
        proxy=emu.proxy_url, verify=ssl.create_default_context(cafile=str(emu.ca_file))
    ) as client:
        yield client


@pytest.fixture
def token_for(emu: AzureEmulator) -> Callable[..., Callable[[], str]]:
    def provider(
        client_id: str = CONSUMER_ID, secret: str = CONSUMER_SECRET, scope: str = DATA_SCOPE
    ) -> Callable[[], str]:
        credential = ClientSecretCredential(
            emu.tenant_id,
            client_id,
            secret,
            authority=emu.url,
            disable_instance_discovery=True,
            connection_verify=str(emu.ca_file),
        )
        return get_bearer_token_provider(credential, scope)

    return provider


def azure_client(http: httpx.Client, endpoint: str = WEST, **auth: Any) -> AzureOpenAI:
    return AzureOpenAI(
        azure_endpoint=endpoint, api_version=API_VERSION, http_client=http, max_retries=0, **auth
    )


def test_chat_completions_with_an_entra_token(
    emu: AzureEmulator, sdk: Sdk, http: httpx.Client, token_for: Callable[..., Callable[[], str]]
) -> None:
    deploy(sdk, "aucert-ai", "gpt-5.4-mini", "gpt-5.4-mini", "2026-03-17")
    client = azure_client(http, azure_ad_token_provider=token_for())
    answer = client.chat.completions.create(
        model="gpt-5.4-mini", messages=[{"role": "user", "content": "hello there"}]
    )
    assert answer.choices[0].message.content == (
        "[gpt-5.4-mini 2026-03-17 | deployment gpt-5.4-mini | account aucert-ai] prompt: hello there"
    )
    assert answer.model == "gpt-5.4-mini-2026-03-17"
    assert answer.usage is not None and answer.usage.prompt_tokens == 2
    again = client.chat.completions.create(
        model="gpt-5.4-mini", messages=[{"role": "user", "content": "hello there"}]
    )
    assert again.id == answer.id  # deterministic
    entry = sdk.admin("GET", "/requests").body["entries"][-1]
    assert (entry["service"], entry["principal"], entry["status"]) == ("dataplane", CONSUMER_ID, 200)


def test_v1_responses_with_tools_and_reasoning(
    sdk: Sdk, http: httpx.Client, token_for: Callable[..., Callable[[], str]]
) -> None:
    deploy(sdk, "aucert-ai", "gpt-5.4", "gpt-5.4", "2026-03-05")
    client = OpenAI(base_url=WEST + "openai/v1/", api_key=token_for(), http_client=http, max_retries=0)
    tools: Any = [{"type": "function", "name": "get_weather", "parameters": WEATHER}]
    first = client.responses.create(
        model="gpt-5.4", input="weather?", tools=tools, reasoning={"effort": "high"}
    )
    kinds = [item.type for item in first.output]
    assert kinds == ["reasoning", "function_call"]
    call = first.output[1]
    assert (
        call.type == "function_call"
        and call.name == "get_weather"
        and call.arguments == '{"city": "example"}'
    )
    second = client.responses.create(
        model="gpt-5.4",
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=tools,
    )
    assert second.output_text.endswith("tool result: sunny")


def test_chat_refuses_tools_with_reasoning_on_gpt_5_4(
    sdk: Sdk, http: httpx.Client, token_for: Callable[..., Callable[[], str]]
) -> None:
    deploy(sdk, "aucert-ai", "chat-main", "gpt-5.4", "2026-03-05")
    client = azure_client(http, azure_ad_token_provider=token_for())
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    messages: Any = [{"role": "user", "content": "weather?"}]
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="chat-main", messages=messages, tools=tools, reasoning_effort="high"
        )
    assert "Please use /v1/responses" in str(refused.value)
    # reasoning off: chat completions serve the tool call
    done = client.chat.completions.create(
        model="chat-main", messages=messages, tools=tools, reasoning_effort="none"
    )
    tool_calls = done.choices[0].message.tool_calls or []
    assert [c.function.name for c in tool_calls if c.type == "function"] == ["get_weather"]


def test_model_inference_with_the_account_key(emu: AzureEmulator, sdk: Sdk, http: httpx.Client) -> None:
    deploy(sdk, "aucert-ai", "Kimi-K2.6", "Kimi-K2.6", "2026-04-20", fmt="MoonshotAI")
    key = emu.state.get_account(RG, "aucert-ai").keys[0]
    client = OpenAI(
        base_url="https://aucert-ai.services.ai.azure.com/models",
        api_key=key,
        default_query={"api-version": "2024-05-01-preview"},
        http_client=http,
        max_retries=0,
    )
    answer = client.chat.completions.create(model="Kimi-K2.6", messages=[{"role": "user", "content": "hi"}])
    assert answer.model == "Kimi-K2.6"
    assert (answer.choices[0].message.content or "").endswith("account aucert-ai] prompt: hi")
    with pytest.raises(openai.AuthenticationError):
        OpenAI(
            base_url="https://aucert-ai.services.ai.azure.com/models",
            api_key="not-the-key",
            default_query={"api-version": "2024-05-01-preview"},
            http_client=http,
            max_retries=0,
        ).chat.completions.create(model="Kimi-K2.6", messages=[{"role": "user", "content": "hi"}])


def raw(http: httpx.Client, url: str, body: dict[str, Any], **headers: str) -> tuple[int, Any, httpx.Headers]:
    response = http.post(url, json=body, headers=headers)
    return response.status_code, response.json(), response.headers


CHAT = WEST + "openai/deployments/{}/chat/completions?api-version=" + API_VERSION
HELLO = {"messages": [{"role": "user", "content": "hi"}]}


def test_azure_error_shapes(
    emu: AzureEmulator, sdk: Sdk, http: httpx.Client, token_for: Callable[..., Callable[[], str]]
) -> None:
    deploy(sdk, "aucert-ai", "gpt-5.4-mini", "gpt-5.4-mini", "2026-03-17")
    deploy(sdk, "aucert-ai-east", "gpt-5.4-pro", "gpt-5.4-pro", "2026-03-05")
    token = token_for()()
    status, body, _ = raw(http, CHAT.format("gpt-5.4-mini"), HELLO)
    assert status == 401 and body["error"]["message"].startswith(
        "Access denied due to invalid subscription key"
    )
    arm_token = token_for(scope="https://management.azure.com/.default")()
    status, body, _ = raw(http, CHAT.format("gpt-5.4-mini"), HELLO, Authorization=f"Bearer {arm_token}")
    assert (
        status == 401
        and "audience is incorrect (https://cognitiveservices.azure.com)" in body["error"]["message"]
    )
    status, body, _ = raw(http, CHAT.format("missing"), HELLO, Authorization=f"Bearer {token}")
    assert (status, body["error"]["code"]) == (404, "DeploymentNotFound")
    # no data-plane role on the second account
    east = "https://aucert-ai-east.openai.azure.com/openai/deployments/gpt-5.4-pro/chat/completions"
    status, body, _ = raw(http, f"{east}?api-version={API_VERSION}", HELLO, Authorization=f"Bearer {token}")
    assert (status, body["error"]["code"]) == (403, "PermissionDenied")
    assert f"The principal `{CONSUMER_ID}` lacks the required data action" in body["error"]["message"]
    # the operator's own identity has control-plane rights but no data-plane role either
    operator = token_for(client_id=emu.client_id, secret=emu.client_secret)()
    status, _, _ = raw(http, CHAT.format("gpt-5.4-mini"), HELLO, Authorization=f"Bearer {operator}")
    assert status == 403
    # with the account key, the refusal that remains is the model's: no chatCompletion capability
    east_key = emu.state.get_account(RG, "aucert-ai-east").keys[1]
    status, body, _ = raw(http, f"{east}?api-version={API_VERSION}", HELLO, **{"api-key": east_key})
    assert (status, body["error"]["code"]) == (400, "OperationNotSupported")
    assert body["error"]["message"].startswith(
        "The chatCompletion operation does not work with the specified model, gpt-5.4-pro."
    )
    status, body, _ = raw(
        http, CHAT.format("gpt-5.4-mini").split("?")[0], HELLO, Authorization=f"Bearer {token}"
    )
    assert (status, body["error"]["message"]) == (404, "Resource not found")  # no api-version


def test_rate_limit_answers_429_with_retry_after(
    sdk: Sdk, http: httpx.Client, token_for: Callable[..., Callable[[], str]]
) -> None:
    deploy(sdk, "aucert-ai", "tiny", "gpt-5-nano", "2025-08-07", capacity=2)
    token = token_for()()
    statuses = [raw(http, CHAT.format("tiny"), HELLO, Authorization=f"Bearer {token}") for _ in range(3)]
    assert [s for s, _, _ in statuses] == [200, 200, 429]
    _, body, headers = statuses[2]
    assert body["error"]["code"] == "429" and "have exceeded call rate limit" in body["error"]["message"]
    assert 1 <= int(headers["retry-after"]) <= 10


def test_deployment_in_progress_is_not_found(
    emu: AzureEmulator, sdk: Sdk, http: httpx.Client, token_for: Callable[..., Callable[[], str]]
) -> None:
    client = sdk.client(retry_total=0)
    client.deployments.begin_create_or_update(RG, "aucert-ai", "gpt-5.4", sdk.deployment("gpt-5.4"))
    token = token_for()()
    status, body, _ = raw(http, CHAT.format("gpt-5.4"), HELLO, Authorization=f"Bearer {token}")
    assert (status, body["error"]["code"]) == (404, "DeploymentNotFound")  # still Creating


def test_unknown_hosts_get_a_clear_answer(emu: AzureEmulator, http: httpx.Client) -> None:
    with pytest.raises(httpx.ProxyError) as refused:
        http.post("https://nobody.openai.azure.com/openai/v1/responses", json={})
    assert "502" in str(refused.value)
    direct = httpx.post(
        emu.url + "/openai/v1/responses", json={}, verify=ssl.create_default_context(cafile=str(emu.ca_file))
    )
    assert direct.status_code == 404 and "HTTPS_PROXY" in direct.json()["error"]["message"]
