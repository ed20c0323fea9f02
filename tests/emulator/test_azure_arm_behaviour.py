"""The resource provider's behaviour, as the SDK surfaces it: conflicts, validation, quota,
throttling, authentication and authorization, failed operations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
from cryptography.hazmat.primitives.asymmetric import rsa

from foundry_emulator.azure import AzureEmulator, Scenario
from foundry_emulator.azure.entra import SigningKey

if TYPE_CHECKING:
    from conftest import Sdk

RG = "aucert-foundation-rg"
ARM = "https://management.azure.com/.default"


def account_id(emu: AzureEmulator, name: str) -> str:
    return f"/subscriptions/{emu.subscription_id}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/{name}"


async def test_concurrent_writes_on_one_account_conflict(sdk: Sdk, emu: AzureEmulator) -> None:
    models = ["gpt-5.4", "gpt-5.1-codex", "gpt-5.3-codex", "gpt-5.4-mini", "gpt-5-nano"]
    async with sdk.aio_client(retry_total=0) as client:

        async def create(name: str) -> Any:
            poller = await client.deployments.begin_create_or_update(
                RG, "aucert-ai", name, sdk.deployment(name)
            )
            return await poller.result()

        results = await asyncio.gather(*(create(m) for m in models), return_exceptions=True)
        winners = [r for r in results if not isinstance(r, BaseException)]
        losers = [r for r in results if isinstance(r, BaseException)]
        assert len(winners) == 1 and len(losers) == 4
        for err in losers:
            assert isinstance(err, HttpResponseError)
            assert (err.status_code, err.error.code) == (409, "RequestConflict")
            assert err.error.message == (
                f"Another operation is being performed on the parent resource '{account_id(emu, 'aucert-ai')}'. "
                "Please try again later."
            )
        # Reads do not wait for the write, and once it ended the next write is accepted.
        assert [d.name async for d in client.deployments.list(RG, "aucert-ai")] == [winners[0].name]
        loser = next(m for m in models if m != winners[0].name)
        assert (await create(loser)).properties.provisioning_state == "Succeeded"


def test_account_write_in_flight_blocks_deployment_writes(sdk: Sdk, emu: AzureEmulator) -> None:
    client = sdk.client(retry_total=0)
    client.accounts.begin_create(
        RG, "aucert-ai", {"location": "westus", "kind": "AIServices", "tags": {"a": "b"}}
    )
    with pytest.raises(HttpResponseError) as err:
        client.deployments.begin_create_or_update(RG, "aucert-ai", "gpt-5.4", sdk.deployment("gpt-5.4"))
    assert err.value.error.code == "RequestConflict"


async def test_writes_on_two_accounts_proceed_in_parallel(
    scenario: Scenario, start_emulator: Callable[[Scenario], AzureEmulator], make_sdk: type[Sdk]
) -> None:
    scenario.timing.lroSeconds = 0.6
    sdk = make_sdk(start_emulator(scenario))
    async with sdk.aio_client(retry_total=0) as client:

        async def create(account: str, name: str) -> None:
            await (
                await client.deployments.begin_create_or_update(RG, account, name, sdk.deployment(name))
            ).result()

        started = time.monotonic()
        await create("aucert-ai", "gpt-5.4")
        await create("aucert-ai", "gpt-5.1-codex")
        serial = time.monotonic() - started
        started = time.monotonic()
        await asyncio.gather(create("aucert-ai", "gpt-5-nano"), create("aucert-ai-east", "gpt-5.4-pro"))
        parallel = time.monotonic() - started
    assert parallel < serial * 0.75, (parallel, serial)


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (
            ("gpt-5.4-pro", "2026-03-05", None, "GlobalStandard", "OpenAI"),
            "InvalidResourceProperties",
            "The specified SKU 'GlobalStandard' for model 'gpt-5.4-pro 2026-03-05' is not supported in this region 'westus'.",
        ),
        (
            ("gpt-5.3-codex", "2025-12-20", None, "GlobalStandard", "OpenAI"),
            "InvalidResourceProperties",
            "The specified SKU 'GlobalStandard' for model 'gpt-5.3-codex 2025-12-20' is not supported in this region 'westus'.",
        ),
        (
            ("gpt-5.4", "2026-03-05", None, "Standard", "OpenAI"),
            "InvalidResourceProperties",
            "The specified SKU 'Standard' for model 'gpt-5.4 2026-03-05' is not supported in this region 'westus'.",
        ),
        (
            ("gpt-5.4", None, 10001, "GlobalStandard", "OpenAI"),
            "InvalidResourceProperties",
            "The capacity '10001' of account deployment is not valid for SKU 'GlobalStandard' of model "
            "'gpt-5.4 2026-03-05'. The capacity should be between 1 and 10000 and a multiple of 1.",
        ),
        (
            ("gpt-4o-mini", "2024-07-18", None, "GlobalStandard", "OpenAI"),
            "ServiceModelDeprecated",
            "The model 'Format:OpenAI,Name:gpt-4o-mini,Version:2024-07-18' has been deprecated since 09/30/2026 00:00:00.",
        ),
        (
            ("Kimi-K2.5", None, None, "GlobalStandard", "MoonshotAI"),
            "ServiceModelDeprecating",
            "The model 'Format:MoonshotAI,Name:Kimi-K2.5,Version:2026-01-27' is in deprecating state and cannot be "
            "used for new deployments.",
        ),
        (
            ("gpt-5.4-pro", None, None, "GlobalStandard", "OpenAI"),
            "InvalidResourceProperties",
            "The specified model 'gpt-5.4-pro' is not supported in this region 'westus'.",
        ),
    ],
)
def test_validation_errors(sdk: Sdk, body: tuple[Any, ...], code: str, message: str) -> None:
    model, version, capacity, sku, fmt = body
    client = sdk.client(retry_total=0)
    with pytest.raises(HttpResponseError) as err:
        client.deployments.begin_create_or_update(
            RG, "aucert-ai", model, sdk.deployment(model, version, capacity, sku=sku, format=fmt)
        )
    assert (err.value.status_code, err.value.error.code, err.value.error.message) == (400, code, message)
    assert list(client.deployments.list(RG, "aucert-ai")) == []


def test_model_of_a_deployment_cannot_change(sdk: Sdk) -> None:
    client = sdk.client(retry_total=0)
    client.deployments.begin_create_or_update(RG, "aucert-ai", "chat", sdk.deployment("gpt-5.4")).result()
    with pytest.raises(HttpResponseError) as err:
        client.deployments.begin_create_or_update(RG, "aucert-ai", "chat", sdk.deployment("gpt-5.4-mini"))
    assert (err.value.error.code, err.value.error.message) == (
        "CannotChangeDeploymentModel",
        "The model of deployment cannot be changed.",
    )


def test_quota_is_consumed_and_released(sdk: Sdk) -> None:
    assert (
        sdk.admin(
            "PUT", "/quotas", {"region": "westus", "usageName": "OpenAI.GlobalStandard.gpt-5.4", "limit": 100}
        ).status
        == 200
    )
    client = sdk.client(retry_total=0)
    client.deployments.begin_create_or_update(
        RG, "aucert-ai", "a", sdk.deployment("gpt-5.4", capacity=60)
    ).result()
    with pytest.raises(HttpResponseError) as err:
        client.deployments.begin_create_or_update(
            RG, "aucert-ai", "b", sdk.deployment("gpt-5.4", capacity=50)
        )
    quota = "Tokens Per Minute (thousands) - gpt-5.4 - GlobalStandard"
    assert (err.value.status_code, err.value.error.code) == (400, "InsufficientQuota")
    assert err.value.error.message == (
        f"This operation require 50 new capacity in quota {quota}, which is bigger than the current available "
        f"capacity 40. The current quota usage is 60 and the quota limit is 100 for quota {quota}."
    )
    # Scaling up needs only the difference; scaling down releases quota.
    with pytest.raises(HttpResponseError) as err:
        client.deployments.begin_update(
            RG, "aucert-ai", "a", {"sku": {"name": "GlobalStandard", "capacity": 101}}
        )
    assert err.value.error.code == "InsufficientQuota"
    assert "require 41 new capacity" in err.value.error.message
    client.deployments.begin_update(
        RG, "aucert-ai", "a", {"sku": {"name": "GlobalStandard", "capacity": 20}}
    ).result()
    client.deployments.begin_create_or_update(
        RG, "aucert-ai", "b", sdk.deployment("gpt-5.4", capacity=50)
    ).result()

    def used() -> float:
        return {u.name.value: u.current_value for u in client.usages.list("westus")}[
            "OpenAI.GlobalStandard.gpt-5.4"
        ]

    assert used() == 70
    client.deployments.begin_delete(RG, "aucert-ai", "a").result()
    assert used() == 50
    # Quota is per region: eastus2 is untouched.
    east = {u.name.value: u.current_value for u in client.usages.list("eastus2")}
    assert east["OpenAI.GlobalStandard.gpt-5.4"] == 0


def test_throttling(
    scenario: Scenario, start_emulator: Callable[[Scenario], AzureEmulator], make_sdk: type[Sdk]
) -> None:
    scenario.throttling.reads.capacity = 3
    scenario.throttling.reads.refillPerSecond = 0.5
    sdk = make_sdk(start_emulator(scenario))
    path = f"/subscriptions/{sdk.emu.subscription_id}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/aucert-ai?api-version=2025-09-01"
    token = sdk.credential().get_token(ARM).token
    remaining = [
        sdk.http("GET", path, token=token).headers["x-ms-ratelimit-remaining-subscription-reads"]
        for _ in range(3)
    ]
    assert remaining == ["2", "1", "0"]
    throttled = sdk.http("GET", path, token=token)
    assert throttled.status == 429
    assert throttled.headers["retry-after"] == "2"
    assert throttled.body["error"]["code"] == "SubscriptionRequestsThrottled"
    assert throttled.body["error"]["message"] == (
        f"Number of 'read' requests for subscription '{sdk.emu.subscription_id}' actor '{sdk.emu.client_id}' "
        "exceeded. Please try again after '2' seconds after additional tokens are available. Refer to "
        "https://aka.ms/arm-throttling for additional information."
    )
    # Writes and deletes have buckets of their own.
    put = sdk.http(
        "PUT",
        path.replace("aucert-ai?", "aucert-ai/deployments/gpt-5.4?"),
        {"sku": {"name": "GlobalStandard"}, "properties": {"model": {"format": "OpenAI", "name": "gpt-5.4"}}},
        token=token,
    )
    assert put.status == 201
    assert put.headers["x-ms-ratelimit-remaining-subscription-writes"] == "199"
    with pytest.raises(HttpResponseError) as err:
        sdk.client(retry_total=0).accounts.get(RG, "aucert-ai")
    assert (err.value.status_code, err.value.error.code) == (429, "SubscriptionRequestsThrottled")


class StaticToken:
    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


def test_authentication_failures(sdk: Sdk, emu: AzureEmulator) -> None:
    path = f"/subscriptions/{emu.subscription_id}/providers/Microsoft.CognitiveServices/accounts?api-version=2025-09-01"
    missing = sdk.http("GET", path, token=None)
    assert (missing.status, missing.body["error"]["code"]) == (401, "AuthenticationFailed")
    assert missing.headers["www-authenticate"].startswith(
        f'Bearer authorization_uri="{emu.url}/{emu.tenant_id}"'
    )

    foreign_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    foreign = jwt.encode(
        {
            "aud": "https://management.azure.com",
            "tid": emu.tenant_id,
            "appid": emu.client_id,
            "exp": now + 600,
        },
        foreign_key,
        algorithm="RS256",
    )
    answer = sdk.http("GET", path, token=foreign)
    assert (answer.status, answer.body["error"]) == (
        401,
        {"code": "InvalidAuthenticationToken", "message": "The access token is invalid."},
    )
    client = CognitiveServicesManagementClient(
        StaticToken(foreign),
        emu.subscription_id,
        base_url=emu.url,
        connection_verify=str(emu.ca_file),
        retry_total=0,
    )
    with pytest.raises(ClientAuthenticationError) as err:
        client.accounts.get(RG, "aucert-ai")
    assert err.value.error.code == "InvalidAuthenticationToken"

    expired = SigningKey(emu.state_dir).sign(
        {"aud": "https://management.azure.com", "tid": emu.tenant_id, "appid": emu.client_id, "exp": now - 60}
    )
    answer = sdk.http("GET", path, token=expired)
    assert (answer.status, answer.body["error"]["code"]) == (401, "ExpiredAuthenticationToken")

    wrong_audience = sdk.credential().get_token("https://cognitiveservices.azure.com/.default").token
    answer = sdk.http("GET", path, token=wrong_audience)
    assert answer.body["error"]["code"] == "InvalidAuthenticationTokenAudience"
    assert answer.body["error"]["message"].startswith(
        "The access token has been obtained for wrong audience or resource 'https://cognitiveservices.azure.com'."
    )
    # Both ARM audiences are accepted.
    legacy = sdk.credential().get_token("https://management.core.windows.net//.default").token
    assert sdk.http("GET", path, token=legacy).status == 200


def test_principal_outside_its_scopes_gets_403(sdk: Sdk, emu: AzureEmulator) -> None:
    sandbox = next(p for p in emu.state.scenario.principals if p.displayName == "team-sandbox-app")
    client = sdk.client(client_id=sandbox.clientId, client_secret=sandbox.clientSecret, retry_total=0)
    with pytest.raises(HttpResponseError) as err:
        client.deployments.begin_create_or_update(RG, "aucert-ai", "gpt-5.4", sdk.deployment("gpt-5.4"))
    assert (err.value.status_code, err.value.error.code) == (403, "AuthorizationFailed")
    assert err.value.error.message == (
        f"The client '{sandbox.clientId}' with object id '{sandbox.clientId}' does not have authorization to perform "
        "action 'Microsoft.CognitiveServices/accounts/deployments/write' over scope "
        f"'{account_id(emu, 'aucert-ai')}/deployments/gpt-5.4' or the scope is invalid. If access was recently "
        "granted, please refresh your credentials."
    )
    with pytest.raises(HttpResponseError) as err:
        list(client.models.list("westus"))  # a subscription-level read
    assert err.value.error.code == "AuthorizationFailed"
    # Within its scope the principal is authorized (and finds no account there).
    assert list(client.accounts.list_by_resource_group("team-sandbox-rg")) == []


def test_failed_operation(sdk: Sdk) -> None:
    fault = {
        "method": "PUT",
        "path": "/deployments/gpt-5.4$",
        "failOperation": True,
        "code": "InternalServerError",
        "message": "The deployment failed for an internal reason.",
        "count": 1,
    }
    assert sdk.admin("POST", "/faults", fault).status == 201
    client = sdk.client(retry_total=0)
    poller = client.deployments.begin_create_or_update(RG, "aucert-ai", "gpt-5.4", sdk.deployment("gpt-5.4"))
    with pytest.raises(HttpResponseError) as err:
        poller.result()
    assert (err.value.error.code, err.value.error.message) == (
        "InternalServerError",
        "The deployment failed for an internal reason.",
    )
    failed = client.deployments.get(RG, "aucert-ai", "gpt-5.4")
    assert failed.properties.provisioning_state == "Failed"
    usage = {u.name.value: u.current_value for u in client.usages.list("westus")}
    assert usage["OpenAI.GlobalStandard.gpt-5.4"] == 0  # a failed deployment holds no quota
    # A retry (the fault was for one request) repairs it.
    assert (
        client.deployments.begin_create_or_update(RG, "aucert-ai", "gpt-5.4", sdk.deployment("gpt-5.4"))
        .result()
        .properties.provisioning_state
        == "Succeeded"
    )
