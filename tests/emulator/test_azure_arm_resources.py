"""ARM routes driven by the real azure-mgmt-cognitiveservices clients: every response deserializes
into the SDK's models with no unmapped field, and the long-running operations' pollers complete."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from foundry_emulator.azure import AzureEmulator, Scenario

if TYPE_CHECKING:
    from conftest import Sdk

RG = "aucert-foundation-rg"


def test_accounts_read(sdk: Sdk, emu: AzureEmulator) -> None:
    client = sdk.client()
    account = client.accounts.get(RG, "aucert-ai")
    assert sdk.unknown_fields(account) == []
    assert account.id == (
        f"/subscriptions/{emu.subscription_id}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/aucert-ai"
    )
    assert (account.location, account.kind, account.sku.name) == ("westus", "AIServices", "S0")
    props = account.properties
    assert props.provisioning_state == "Succeeded"
    assert props.custom_sub_domain_name == "aucert-ai"
    assert props.endpoints["OpenAI Language Model Instance API"] == "https://aucert-ai.openai.azure.com/"
    assert props.endpoints["Azure AI Model Inference API"] == "https://aucert-ai.services.ai.azure.com/"
    assert props.endpoints["AI Foundry API"] == "https://aucert-ai.services.ai.azure.com/"
    assert props.endpoint == "https://aucert-ai.cognitiveservices.azure.com/"
    assert len(props.internal_id) == 32 and props.date_created
    by_group = [a.name for a in client.accounts.list_by_resource_group(RG)]
    assert sorted(by_group) == ["aucert-ai", "aucert-ai-east"]
    assert sorted(a.name for a in client.accounts.list()) == sorted(by_group)
    keys = client.accounts.list_keys(RG, "aucert-ai")
    assert keys.key1 and keys.key2 and keys.key1 != keys.key2


def test_account_lifecycle(sdk: Sdk) -> None:
    client = sdk.client()
    poller = client.accounts.begin_create(
        RG,
        "aucert-ai-openai",
        {
            "location": "Sweden Central",
            "kind": "OpenAI",
            "sku": {"name": "S0"},
            "properties": {"customSubDomainName": "aucert-openai", "publicNetworkAccess": "Enabled"},
            "tags": {"env": "test"},
        },
    )
    initial = poller.polling_method()._initial_response.http_response
    assert initial.status_code == 201
    assert initial.json()["properties"]["provisioningState"] == "Creating"
    assert "azure-asyncoperation" in {k.lower() for k in initial.headers}
    account = poller.result()
    assert sdk.unknown_fields(account) == []
    assert (account.location, account.kind, account.properties.provisioning_state) == (
        "swedencentral",
        "OpenAI",
        "Succeeded",
    )
    assert account.properties.endpoint == "https://aucert-openai.openai.azure.com/"
    assert (
        account.properties.endpoints["OpenAI Language Model Instance API"]
        == "https://aucert-openai.openai.azure.com/"
    )
    assert "Azure AI Model Inference API" not in account.properties.endpoints
    updated = client.accounts.begin_update(RG, "aucert-ai-openai", {"tags": {"env": "prod"}}).result()
    assert updated.tags == {"env": "prod"}
    # Partner models are not offered to an OpenAI-kind account; OpenAI models are.
    names = {m.name for m in client.accounts.list_models(RG, "aucert-ai-openai")}
    assert "gpt-5.4" in names and "DeepSeek-V3.2" not in names
    client.accounts.begin_delete(RG, "aucert-ai-openai").result()
    with pytest.raises(ResourceNotFoundError) as err:
        client.accounts.get(RG, "aucert-ai-openai")
    assert err.value.error.code == "ResourceNotFound"
    assert err.value.error.message == (
        "The Resource 'Microsoft.CognitiveServices/accounts/aucert-ai-openai' under resource group "
        f"'{RG}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    )


def test_account_create_errors(sdk: Sdk) -> None:
    client = sdk.client(retry_total=0)
    body = {"location": "westus", "kind": "AIServices", "sku": {"name": "S0"}, "properties": {}}
    with pytest.raises(HttpResponseError) as err:
        client.accounts.begin_create(RG, "x", {**body, "location": "mars"})
    assert err.value.error.code == "LocationNotAvailableForResourceType"
    with pytest.raises(HttpResponseError) as err:
        client.accounts.begin_create(RG, "x", {**body, "properties": {"customSubDomainName": "aucert-ai"}})
    assert err.value.error.code == "CustomDomainInUse"
    with pytest.raises(HttpResponseError) as err:
        client.accounts.begin_create("no-such-rg", "x", body)
    assert (err.value.status_code, err.value.error.code) == (404, "ResourceGroupNotFound")
    assert err.value.error.message == "Resource group 'no-such-rg' could not be found."


def test_deployment_lifecycle(sdk: Sdk, emu: AzureEmulator) -> None:
    client = sdk.client()
    poller = client.deployments.begin_create_or_update(
        RG, "aucert-ai", "Kimi-K2.6", sdk.deployment("Kimi-K2.6", format="MoonshotAI")
    )
    initial = poller.polling_method()._initial_response.http_response
    assert initial.status_code == 201
    assert initial.json()["properties"]["provisioningState"] == "Accepted"
    headers = {k.lower(): v for k, v in initial.headers.items()}
    root = f"{emu.url}/subscriptions/{emu.subscription_id}/providers/Microsoft.CognitiveServices/locations/westus"
    assert headers["azure-asyncoperation"].startswith(f"{root}/operationStatuses/")
    assert headers["location"].startswith(f"{root}/operationResults/")
    assert headers["retry-after"] == "0.05"
    started = time.monotonic()
    deployment = poller.result()
    assert time.monotonic() - started < 1.0  # the poller honours the short Retry-After
    assert sdk.unknown_fields(deployment) == []
    assert deployment.name == "Kimi-K2.6"
    assert deployment.properties.provisioning_state == "Succeeded"
    # No version given: the region's default version; no capacity: the SKU's default.
    assert (deployment.properties.model.format, deployment.properties.model.version) == (
        "MoonshotAI",
        "2026-04-20",
    )
    assert (deployment.sku.name, deployment.sku.capacity) == ("GlobalStandard", 50)
    assert deployment.id.endswith("/accounts/aucert-ai/deployments/Kimi-K2.6")
    assert [d.name for d in client.deployments.list(RG, "aucert-ai")] == ["Kimi-K2.6"]

    scaled = client.deployments.begin_update(
        RG, "aucert-ai", "Kimi-K2.6", {"sku": {"name": "GlobalStandard", "capacity": 80}}
    ).result()
    assert sdk.unknown_fields(scaled) == []
    assert (scaled.sku.capacity, scaled.properties.provisioning_state) == (80, "Succeeded")
    replaced = client.deployments.begin_create_or_update(
        RG, "aucert-ai", "Kimi-K2.6", sdk.deployment("Kimi-K2.6", "2026-04-20", 40, format="MoonshotAI")
    ).result()
    assert replaced.sku.capacity == 40
    assert (
        client.deployments.get(RG, "aucert-ai", "kimi-k2.6").name == "Kimi-K2.6"
    )  # names are case-insensitive

    client.deployments.begin_delete(RG, "aucert-ai", "Kimi-K2.6").result()
    with pytest.raises(ResourceNotFoundError) as err:
        client.deployments.get(RG, "aucert-ai", "Kimi-K2.6")
    assert (err.value.error.code, err.value.error.message) == (
        "DeploymentNotFound",
        "Deployment 'Kimi-K2.6' could not be found.",
    )
    client.deployments.begin_delete(RG, "aucert-ai", "Kimi-K2.6").result()  # absent: 204, done


async def test_aio_deployment_lifecycle(sdk: Sdk) -> None:
    async with sdk.aio_client() as client:
        poller = await client.deployments.begin_create_or_update(
            RG, "aucert-ai-east", "gpt-5.4-pro", sdk.deployment("gpt-5.4-pro", "2026-03-05", 10)
        )
        deployment = await poller.result()
        assert sdk.unknown_fields(deployment) == []
        assert deployment.properties.provisioning_state == "Succeeded"
        poller = await client.deployments.begin_update(
            RG, "aucert-ai-east", "gpt-5.4-pro", {"sku": {"name": "GlobalStandard", "capacity": 12}}
        )
        assert (await poller.result()).sku.capacity == 12
        names = [d.name async for d in client.deployments.list(RG, "aucert-ai-east")]
        assert names == ["gpt-5.4-pro"]
        await (await client.deployments.begin_delete(RG, "aucert-ai-east", "gpt-5.4-pro")).result()
        assert [d.name async for d in client.deployments.list(RG, "aucert-ai-east")] == []
        account = await client.accounts.get(RG, "aucert-ai-east")
        assert (
            account.properties.endpoints["OpenAI Language Model Instance API"]
            == "https://aucert-ai-east.openai.azure.com/"
        )


def test_provisioning_state_progress(
    scenario: Scenario, start_emulator: Callable[[Scenario], AzureEmulator], make_sdk: type[Sdk]
) -> None:
    scenario.timing.lroSeconds = 1.0
    sdk = make_sdk(start_emulator(scenario))
    client = sdk.client()
    poller = client.deployments.begin_create_or_update(RG, "aucert-ai", "gpt-5.4", sdk.deployment("gpt-5.4"))
    seen = [client.deployments.get(RG, "aucert-ai", "gpt-5.4").properties.provisioning_state]
    time.sleep(0.4)
    seen.append(client.deployments.get(RG, "aucert-ai", "gpt-5.4").properties.provisioning_state)
    poller.result()
    seen.append(client.deployments.get(RG, "aucert-ai", "gpt-5.4").properties.provisioning_state)
    assert seen == ["Accepted", "Creating", "Succeeded"]
    client.deployments.begin_update(
        RG, "aucert-ai", "gpt-5.4", {"sku": {"name": "GlobalStandard", "capacity": 5}}
    )
    time.sleep(0.4)
    assert client.deployments.get(RG, "aucert-ai", "gpt-5.4").properties.provisioning_state == "Updating"
    time.sleep(0.7)
    client.deployments.begin_delete(RG, "aucert-ai", "gpt-5.4")
    time.sleep(0.4)
    assert client.deployments.get(RG, "aucert-ai", "gpt-5.4").properties.provisioning_state == "Deleting"


def test_catalog_reads(sdk: Sdk, emu: AzureEmulator) -> None:
    client = sdk.client()
    models = list(client.models.list("westus"))
    assert sdk.unknown_fields(models) == []
    entries = {(m.kind, m.model.name, m.model.version) for m in models}
    assert ("AIServices", "gpt-5.3-codex", "2026-02-24") in entries
    assert ("OpenAI", "gpt-5.3-codex", "2026-02-24") in entries
    assert ("AIServices", "Kimi-K2.6", "2026-04-20") in entries
    assert ("OpenAI", "Kimi-K2.6", "2026-04-20") not in entries
    assert not any(name == "gpt-5.4-pro" for _, name, _ in entries)
    mini = next(m.model for m in models if m.model.name == "gpt-4o-mini" and m.kind == "AIServices")
    assert mini.deprecation.inference == "2026-09-30T00:00:00Z"
    assert mini.lifecycle_status == "Deprecated"
    assert (mini.replacement_config.target_model_name, mini.replacement_config.target_model_version) == (
        "gpt-5.4-mini",
        "2026-03-17",
    )
    gpt = next(m for m in models if m.model.name == "gpt-5.4")
    assert gpt.sku_name == "S0" and gpt.model.is_default_version
    [sku] = gpt.model.skus
    assert (sku.name, sku.usage_name) == ("GlobalStandard", "OpenAI.GlobalStandard.gpt-5.4")
    assert (sku.capacity.minimum, sku.capacity.maximum, sku.capacity.step, sku.capacity.default) == (
        1,
        10000,
        1,
        100,
    )

    account_models = list(client.accounts.list_models(RG, "aucert-ai"))
    assert sdk.unknown_fields(account_models) == []
    assert {m.name for m in account_models} == {name for kind, name, _ in entries if kind == "AIServices"}

    capacities = list(
        client.model_capacities.list(
            model_format="OpenAI", model_name="gpt-5.4-pro", model_version="2026-03-05"
        )
    )
    assert sdk.unknown_fields(capacities) == []
    assert sorted(
        (c.location, c.properties.sku_name, c.properties.available_capacity) for c in capacities
    ) == [
        ("eastus2", "GlobalStandard", 200),
        ("southcentralus", "GlobalStandard", 200),
    ]
    assert capacities[0].id == (
        f"/subscriptions/{emu.subscription_id}/providers/Microsoft.CognitiveServices/locations/eastus2"
        "/models/OpenAI.gpt-5.4-pro.2026-03-05/skuCapacities/GlobalStandard"
    )
    local = list(
        client.location_based_model_capacities.list(
            "southcentralus", model_format="OpenAI", model_name="gpt-5.4-pro", model_version="2026-03-05"
        )
    )
    assert [(c.location, c.name) for c in local] == [("southcentralus", "GlobalStandard")]

    usages = {u.name.value: u for u in client.usages.list("westus")}
    assert sdk.unknown_fields(list(usages.values())) == []
    gpt_usage = usages["OpenAI.GlobalStandard.gpt-5.4"]
    assert gpt_usage.name.localized_value == "Tokens Per Minute (thousands) - gpt-5.4 - GlobalStandard"
    assert (gpt_usage.current_value, gpt_usage.limit, gpt_usage.unit) == (0, 1000, "Count")
    assert usages["AccountCount"].current_value == 1
    client.deployments.begin_create_or_update(
        RG, "aucert-ai", "gpt-5.4", sdk.deployment("gpt-5.4", capacity=250)
    ).result()
    assert {u.name.value: u.current_value for u in client.usages.list("westus")}[
        "OpenAI.GlobalStandard.gpt-5.4"
    ] == 250
    [westus] = client.location_based_model_capacities.list(
        "westus", model_format="OpenAI", model_name="gpt-5.4", model_version="2026-03-05"
    )
    assert westus.properties.available_capacity == 750


def test_paging_follows_next_links(
    scenario: Scenario, start_emulator: Callable[[Scenario], AzureEmulator], make_sdk: type[Sdk]
) -> None:
    scenario.pageSize = 2
    sdk = make_sdk(start_emulator(scenario))
    first = sdk.http(
        "GET",
        f"/subscriptions/{sdk.emu.subscription_id}/providers/Microsoft.CognitiveServices/locations/westus/models?api-version=2025-09-01",
    )
    assert len(first.body["value"]) == 2
    assert first.body["nextLink"].startswith(sdk.emu.url + "/subscriptions/")
    models = list(sdk.client().models.list("westus"))
    assert len(models) == 15  # westus: 6 OpenAI models for both kinds, 3 partner models for AIServices
    assert len({(m.kind, m.model.name) for m in models}) == len(models)


def test_error_shapes(sdk: Sdk, emu: AzureEmulator) -> None:
    sub = emu.subscription_id
    base = f"/subscriptions/{sub}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts"
    missing = sdk.http("GET", f"{base}/aucert-ai")
    assert missing.status == 400
    assert missing.body["error"] == {
        "code": "MissingApiVersionParameter",
        "message": "The api-version query parameter (?api-version=) is required for all requests.",
    }
    for path, status, code in [
        (f"{base}/nope", 404, "ResourceNotFound"),
        (f"{base}/aucert-ai/deployments/nope", 404, "DeploymentNotFound"),
        (
            f"/subscriptions/{sub}/resourceGroups/nope/providers/Microsoft.CognitiveServices/accounts/x",
            404,
            "ResourceGroupNotFound",
        ),
        (
            "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.CognitiveServices/accounts",
            404,
            "SubscriptionNotFound",
        ),
        (f"{base}/aucert-ai/projects", 404, "InvalidResourceType"),
        (
            f"/subscriptions/{sub}/providers/Microsoft.Compute/virtualMachines",
            409,
            "MissingSubscriptionRegistration",
        ),
    ]:
        answer = sdk.http("GET", f"{path}?api-version=2025-09-01")
        assert (answer.status, answer.body["error"]["code"]) == (status, code), path
    # Any api-version is accepted; the response headers carry the remaining read budget.
    answer = sdk.http("GET", f"{base}/aucert-ai?api-version=2023-05-01")
    assert answer.status == 200
    assert int(answer.headers["x-ms-ratelimit-remaining-subscription-reads"]) > 0


async def test_aio_reads_and_account_lifecycle(sdk: Sdk) -> None:
    async with sdk.aio_client() as client:
        assert sorted([a.name async for a in client.accounts.list()]) == ["aucert-ai", "aucert-ai-east"]
        assert len([a async for a in client.accounts.list_by_resource_group(RG)]) == 2
        assert (await client.accounts.list_keys(RG, "aucert-ai-east")).key1
        models = [m async for m in client.models.list("eastus2")]
        assert sdk.unknown_fields(models) == []
        assert any(m.model.name == "gpt-5.4-pro" for m in models)
        account_models = [m async for m in client.accounts.list_models(RG, "aucert-ai-east")]
        assert sdk.unknown_fields(account_models) == [] and account_models
        capacities = [
            c
            async for c in client.model_capacities.list(
                model_format="MoonshotAI", model_name="Kimi-K2.6", model_version="2026-04-20"
            )
        ]
        assert sorted(c.location for c in capacities) == ["eastus2", "westus"]
        local = [
            c
            async for c in client.location_based_model_capacities.list(
                "eastus2", model_format="MoonshotAI", model_name="Kimi-K2.6", model_version="2026-04-20"
            )
        ]
        assert [c.properties.available_capacity for c in local] == [500]
        usages = [u async for u in client.usages.list("eastus2")]
        assert sdk.unknown_fields(usages) == []
        body = {"location": "southcentralus", "kind": "AIServices", "sku": {"name": "S0"}, "properties": {}}
        account = await (await client.accounts.begin_create(RG, "aucert-ai-scus", body)).result()
        assert (account.properties.provisioning_state, account.properties.custom_sub_domain_name) == (
            "Succeeded",
            None,
        )
        # Without a custom subdomain Azure serves the account from the shared regional host.
        assert account.properties.endpoint == "https://southcentralus.api.cognitive.microsoft.com/"
        patched = await (
            await client.accounts.begin_update(RG, "aucert-ai-scus", {"tags": {"a": "b"}})
        ).result()
        assert patched.tags == {"a": "b"}
        await (await client.accounts.begin_delete(RG, "aucert-ai-scus")).result()
        assert sorted([a.name async for a in client.accounts.list()]) == ["aucert-ai", "aucert-ai-east"]
