"""Deployments and role assignments set up through the emulator's own APIs."""

from __future__ import annotations

import json
import ssl
import urllib.request
import uuid
from typing import Any

from azure.identity import ClientSecretCredential

from foundry_emulator.azure import AzureEmulator
from foundry_operator.publishing import PublishedEntry

from .conftest import CONSUMER_ID, RG

OPENAI_USER = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"


def _request(emu: AzureEmulator, method: str, path: str, body: Any, token: str | None = None) -> int:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(emu.url + path, json.dumps(body).encode(), headers, method=method)
    context = ssl.create_default_context(cafile=str(emu.ca_file))
    with urllib.request.urlopen(request, context=context) as response:
        return int(response.status)


def deploy(
    emu: AzureEmulator, key: str, account: str, name: str, model: str, version: str, fmt: str = "OpenAI"
) -> PublishedEntry:
    """A Succeeded deployment, and the entry the operator would publish for it."""
    body = {"model": {"format": fmt, "name": model, "version": version}, "sku": {"capacity": 20}}
    assert _request(emu, "PUT", f"/_emulator/deployments/{RG}/{account}/{name}", body) == 201
    catalog = next(m for m in emu.state.scenario.models if m.name == model)
    openai = fmt == "OpenAI"
    endpoint = (
        f"https://{account}.openai.azure.com/" if openai else f"https://{account}.services.ai.azure.com/"
    )
    region = emu.state.get_account(RG, account).location
    return PublishedEntry(
        f"team/{key.lower()}", "2026-11-21T00:00:00Z", (key,), endpoint, "openai" if openai else "model-inference",
        name, model, version, fmt, "GlobalStandard", 20, account, region, tuple(sorted(catalog.capabilities.items())),
    )  # fmt: skip


def grant_data_plane(emu: AzureEmulator, account: str, principal: str = CONSUMER_ID) -> None:
    """Cognitive Services OpenAI User for ``principal`` on ``account``, through ARM (the operator's identity)."""
    credential = ClientSecretCredential(
        emu.tenant_id, emu.client_id, emu.client_secret, authority=emu.url,
        disable_instance_discovery=True, connection_verify=str(emu.ca_file),
    )  # fmt: skip
    token = credential.get_token("https://management.azure.com/.default").token
    scope = f"/subscriptions/{emu.subscription_id}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/{account}"
    role = f"/subscriptions/{emu.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{OPENAI_USER}"
    path = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}?api-version=2022-04-01"
    body = {
        "properties": {
            "roleDefinitionId": role,
            "principalId": principal,
            "principalType": "ServicePrincipal",
        }
    }
    assert _request(emu, "PUT", path, body, token) == 201
