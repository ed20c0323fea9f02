"""The admin API under /_emulator/: request log, reset, scenarios, state, faults, catalog edits,
quotas and drift."""

from __future__ import annotations

import http.client
import time
import urllib.error
from typing import TYPE_CHECKING

import pytest
import yaml
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from foundry_emulator.azure import AzureEmulator, default_scenario_path

if TYPE_CHECKING:
    from conftest import Sdk

RG = "aucert-foundation-rg"


def account_path(emu: AzureEmulator, tail: str = "") -> str:
    return (
        f"/subscriptions/{emu.subscription_id}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices"
        f"/accounts/aucert-ai{tail}?api-version=2025-09-01"
    )


def test_request_log(sdk: Sdk, emu: AzureEmulator) -> None:
    client = sdk.client()
    client.accounts.get(RG, "aucert-ai")
    log = sdk.admin("GET", "/requests").body
    token, arm = log["entries"][-2:]
    assert (token["method"], token["service"], token["principal"]) == ("POST", "entra", emu.client_id)
    assert token["path"] == f"/{emu.tenant_id}/oauth2/v2.0/token"
    assert arm["path"] == account_path(emu).split("?")[0]
    assert arm["query"] == {"api-version": "2025-09-01"}
    assert (arm["status"], arm["operation"], arm["principal"], arm["service"]) == (
        200,
        "read",
        emu.client_id,
        "arm",
    )
    assert arm["durationMs"] >= 0 and arm["timestamp"]
    cursor = log["cursor"]
    assert list(client.deployments.list(RG, "aucert-ai")) == []
    newer = sdk.admin("GET", f"/requests?since={cursor}").body["entries"]
    assert [e["path"].rsplit("/", 1)[-1] for e in newer] == ["deployments"]
    assert sdk.admin("DELETE", "/requests").status == 204
    assert sdk.admin("GET", "/requests").body["entries"] == []
    assert sdk.admin("GET", "/requests?since=x").status == 400


def test_reset_and_state(sdk: Sdk) -> None:
    client = sdk.client()
    client.deployments.begin_create_or_update(
        RG, "aucert-ai", "gpt-5.4", sdk.deployment("gpt-5.4", capacity=30)
    ).result()
    state = sdk.admin("GET", "/state").body
    [account] = [a for a in state["accounts"] if a["name"] == "aucert-ai"]
    assert account["endpoint"] == "https://aucert-ai.cognitiveservices.azure.com/"
    assert account["deployments"] == [
        {
            "name": "gpt-5.4",
            "format": "OpenAI",
            "model": "gpt-5.4",
            "version": "2026-03-05",
            "sku": "GlobalStandard",
            "capacity": 30,
            "usageName": "OpenAI.GlobalStandard.gpt-5.4",
            "provisioningState": "Succeeded",
        }
    ]
    quota = next(
        q
        for q in state["quotas"]
        if q["region"] == "westus" and q["usageName"] == "OpenAI.GlobalStandard.gpt-5.4"
    )
    assert (quota["usage"], quota["limit"], quota["available"]) == (30, 1000, 970)
    assert state["operationsInFlight"] == []
    sdk.admin("POST", "/faults", {"path": "/accounts", "status": 500})
    reset = sdk.admin("POST", "/reset").body
    assert all(a["deployments"] == [] for a in reset["accounts"])
    assert sdk.admin("GET", "/faults").body["faults"] == []  # reset drops faults too
    assert list(client.deployments.list(RG, "aucert-ai")) == []


def test_load_scenario(sdk: Sdk, emu: AzureEmulator) -> None:
    data = yaml.safe_load(default_scenario_path().read_text())
    data["accounts"].append(
        {"resourceGroup": RG, "name": "aucert-ai-swe", "location": "swedencentral", "kind": "OpenAI"}
    )
    data["deployments"] = [
        {
            "account": "aucert-ai-swe",
            "name": "gpt-5.4",
            "model": {"name": "gpt-5.4", "version": "2026-03-05"},
            "sku": {"capacity": 10},
        }
    ]
    loaded = sdk.admin("POST", "/scenario", yaml.safe_dump(data))
    assert loaded.status == 200
    deployment = sdk.client().deployments.get(RG, "aucert-ai-swe", "gpt-5.4")
    assert (deployment.sku.capacity, deployment.properties.provisioning_state) == (10, "Succeeded")
    assert sdk.admin("GET", "/scenario").body["accounts"][-1]["name"] == "aucert-ai-swe"

    data["accounts"][-1]["location"] = "mars"
    bad = sdk.admin("POST", "/scenario", yaml.safe_dump(data))
    assert bad.status == 400
    assert bad.body["issues"][0]["field"] == "accounts[2].location"
    assert "unknown region 'mars'" in bad.body["error"]
    # A failed load leaves the running scenario alone.
    assert sdk.client().deployments.get(RG, "aucert-ai-swe", "gpt-5.4").name == "gpt-5.4"


def test_fault_status_with_retry_after(sdk: Sdk, emu: AzureEmulator) -> None:
    fault = {
        "method": "GET",
        "path": r"/accounts/aucert-ai$",
        "status": 503,
        "code": "ServiceUnavailable",
        "message": "Try later.",
        "retryAfter": 1,
        "count": 1,
    }
    created = sdk.admin("POST", "/faults", fault)
    assert created.status == 201 and created.body["remaining"] == 1
    first = sdk.http("GET", account_path(emu))
    assert (first.status, first.body, first.headers["retry-after"]) == (
        503,
        {"error": {"code": "ServiceUnavailable", "message": "Try later."}},
        "1",
    )
    assert sdk.http("GET", account_path(emu)).status == 200
    [listed] = sdk.admin("GET", "/faults").body["faults"]
    assert (listed["hits"], listed["remaining"]) == (1, 0)
    log = sdk.admin("GET", "/requests").body["entries"]
    assert [e["fault"] for e in log if e["service"] == "arm"] == ["status", None]
    assert sdk.admin("DELETE", "/faults").status == 204
    # The SDK's retry policy honours Retry-After and retries 503 by itself.
    sdk.admin("POST", "/faults", {**fault, "retryAfter": 0})
    assert sdk.client(retry_backoff_factor=0.01).accounts.get(RG, "aucert-ai").name == "aucert-ai"


def test_fault_delay_and_drop(sdk: Sdk, emu: AzureEmulator) -> None:
    sdk.admin("POST", "/faults", {"path": "/deployments$", "delaySeconds": 0.3, "count": 1})
    started = time.monotonic()
    assert sdk.http("GET", account_path(emu, "/deployments")).status == 200
    assert time.monotonic() - started >= 0.3
    sdk.admin("POST", "/faults", {"path": "/deployments$", "drop": True, "count": 1})
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
        sdk.http("GET", account_path(emu, "/deployments"))
    assert sdk.http("GET", account_path(emu, "/deployments")).status == 200
    dropped = [e for e in sdk.admin("GET", "/requests").body["entries"] if e["fault"] == "drop"]
    assert dropped and dropped[0]["status"] is None


def test_fault_probability(sdk: Sdk, emu: AzureEmulator) -> None:
    sdk.admin("POST", "/faults", {"path": "/deployments$", "status": 500, "probability": 0.5})
    token = sdk.credential().get_token("https://management.azure.com/.default").token
    statuses = [sdk.http("GET", account_path(emu, "/deployments"), token=token).status for _ in range(60)]
    assert 10 <= statuses.count(500) <= 50
    assert sdk.admin("POST", "/faults", {"path": "x"}).status == 400  # a fault needs an effect


def test_catalog_edits(sdk: Sdk) -> None:
    client = sdk.client(retry_total=0)
    pro = sdk.deployment("gpt-5.4-pro", "2026-03-05", 10)
    with pytest.raises(HttpResponseError):
        client.deployments.begin_create_or_update(RG, "aucert-ai", "gpt-5.4-pro", pro)
    rolled = sdk.admin("POST", "/catalog/rollout", {"region": "westus", "model": "gpt-5.4-pro"})
    assert any(o["name"] == "gpt-5.4-pro" for o in rolled.body["westus"])
    client.deployments.begin_create_or_update(RG, "aucert-ai", "gpt-5.4-pro", pro).result()

    retire = {
        "model": "gpt-5.4",
        "inferenceDate": "2099-01-31",
        "replacement": {"name": "gpt-5.4-mini", "version": "2026-03-17"},
    }
    assert sdk.admin("POST", "/catalog/retire", retire).status == 200
    entry = next(m.model for m in client.models.list("westus") if m.model.name == "gpt-5.4")
    assert (entry.lifecycle_status, entry.deprecation.inference) == ("Deprecating", "2099-01-31T00:00:00Z")
    assert entry.replacement_config.target_model_name == "gpt-5.4-mini"
    with pytest.raises(HttpResponseError) as err:
        client.deployments.begin_create_or_update(RG, "aucert-ai", "gpt-5.4", sdk.deployment("gpt-5.4"))
    assert err.value.error.code == "ServiceModelDeprecating"
    sdk.admin("POST", "/catalog/retire", {**retire, "inferenceDate": "2020-01-01"})
    with pytest.raises(HttpResponseError) as err:
        client.deployments.begin_create_or_update(RG, "aucert-ai", "gpt-5.4", sdk.deployment("gpt-5.4"))
    assert err.value.error.code == "ServiceModelDeprecated"

    catalog = sdk.admin("GET", "/catalog").body
    assert {o["name"] for o in catalog["eastus2"]} >= {"gpt-5.4-pro", "Kimi-K2.6"}
    withdrawn = sdk.admin("POST", "/catalog/withdraw", {"region": "westus", "model": "gpt-5.1-codex"})
    assert not any(o["name"] == "gpt-5.1-codex" for o in withdrawn.body["westus"])
    with pytest.raises(HttpResponseError) as err:
        client.deployments.begin_create_or_update(
            RG, "aucert-ai", "gpt-5.1-codex", sdk.deployment("gpt-5.1-codex", "2025-11-13")
        )
    assert err.value.error.code == "InvalidResourceProperties"

    definition = {
        "format": "OpenAI",
        "name": "gpt-6",
        "kinds": ["AIServices", "OpenAI"],
        "skus": [
            {
                "name": "GlobalStandard",
                "usageName": "OpenAI.GlobalStandard.gpt-6",
                "capacity": {"maximum": 100, "default": 10},
            }
        ],
        "versions": [{"version": "2027-01-01", "isDefaultVersion": True}],
    }
    sdk.admin("POST", "/catalog/rollout", {"region": "westus", "model": "gpt-6", "definition": definition})
    sdk.admin("PUT", "/quotas", {"region": "westus", "usageName": "OpenAI.GlobalStandard.gpt-6", "limit": 50})
    created = client.deployments.begin_create_or_update(
        RG, "aucert-ai", "gpt-6", sdk.deployment("gpt-6")
    ).result()
    assert (created.properties.model.version, created.sku.capacity) == ("2027-01-01", 10)
    bad = sdk.admin("POST", "/catalog/rollout", {"region": "westus", "model": "gpt-7"})
    assert bad.status == 400 and "unknown model" in bad.body["error"]
    assert sdk.admin("PUT", "/quotas", {"region": "mars", "usageName": "x", "limit": 1}).status == 400


def test_drift(sdk: Sdk) -> None:
    client = sdk.client()
    client.deployments.begin_create_or_update(
        RG, "aucert-ai", "gpt-5.4", sdk.deployment("gpt-5.4", capacity=30)
    ).result()
    changed = sdk.admin(
        "PATCH", f"/deployments/{RG}/aucert-ai/gpt-5.4", {"capacity": 7, "version": "2025-01-01"}
    )
    assert changed.status == 200 and changed.body["sku"]["capacity"] == 7
    deployment = client.deployments.get(RG, "aucert-ai", "gpt-5.4")
    assert (deployment.sku.capacity, deployment.properties.model.version) == (7, "2025-01-01")
    assert {u.name.value: u.current_value for u in client.usages.list("westus")}[
        "OpenAI.GlobalStandard.gpt-5.4"
    ] == 7

    assert sdk.admin("DELETE", f"/deployments/{RG}/aucert-ai/gpt-5.4").status == 204
    with pytest.raises(ResourceNotFoundError):
        client.deployments.get(RG, "aucert-ai", "gpt-5.4")
    assert sdk.admin("DELETE", f"/deployments/{RG}/aucert-ai/gpt-5.4").status == 404

    oob = {
        "model": {"format": "OpenAI", "name": "gpt-5.4-mini", "version": "2026-03-17"},
        "sku": {"capacity": 5},
    }
    created = sdk.admin("PUT", f"/deployments/{RG}/aucert-ai/legacy-chat", oob)
    assert created.status == 201
    legacy = client.deployments.get(RG, "aucert-ai", "legacy-chat")
    assert (legacy.properties.model.name, legacy.properties.provisioning_state) == (
        "gpt-5.4-mini",
        "Succeeded",
    )
    assert legacy.system_data.created_by == "portal"
