"""Entra ID: the real azure-identity credentials obtain tokens from the emulator over HTTPS."""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import DefaultAzureCredential, WorkloadIdentityCredential
from azure.identity.aio import ClientSecretCredential as AioClientSecretCredential
from azure.identity.aio import WorkloadIdentityCredential as AioWorkloadIdentityCredential

from foundry_emulator.azure import AzureEmulator, Scenario

if TYPE_CHECKING:
    from conftest import Sdk


ARM_SCOPE = "https://management.azure.com/.default"

SERVICE_ACCOUNT = "system:serviceaccount:foundry-operator:foundry-operator"


def get_json(emu: AzureEmulator, path: str) -> Any:
    context = ssl.create_default_context(cafile=str(emu.ca_file))
    with urllib.request.urlopen(emu.url + path, context=context) as response:
        return json.loads(response.read())


def claims_of(emu: AzureEmulator, token: str) -> dict[str, Any]:
    """Verify the token the way a relying party would: key from the discovery document's JWKS."""
    config = get_json(emu, f"/{emu.tenant_id}/v2.0/.well-known/openid-configuration")
    jwks = get_json(emu, config["jwks_uri"].removeprefix(emu.url))
    key = jwt.PyJWK(jwks["keys"][0])
    return jwt.decode(token, key.key, algorithms=["RS256"], audience="https://management.azure.com")


def service_account_token(
    subject: str = SERVICE_ACCOUNT, audience: str = "api://AzureADTokenExchange"
) -> str:
    """What a Kubernetes cluster projects into AZURE_FEDERATED_TOKEN_FILE (signed by a key the
    emulator cannot know, like the cluster's)."""
    now = int(time.time())
    return jwt.encode(
        {
            "iss": "https://oidc.example.test/cluster",
            "sub": subject,
            "aud": [audience],
            "iat": now,
            "exp": now + 3600,
        },
        "cluster-signing-key-unknown-to-the-emulator-xxxxxxxx",
        algorithm="HS256",
    )


def test_discovery_document_points_back_at_the_emulator(emu: AzureEmulator) -> None:
    for path in (
        f"/{emu.tenant_id}/v2.0/.well-known/openid-configuration",
        f"/{emu.tenant_id}/.well-known/openid-configuration",
    ):
        config = get_json(emu, path)
        authority = f"{emu.url}/{emu.tenant_id}"
        assert config["issuer"] == f"{authority}/v2.0"
        assert config["token_endpoint"] == f"{authority}/oauth2/v2.0/token"
        assert config["authorization_endpoint"] == f"{authority}/oauth2/v2.0/authorize"
        assert config["jwks_uri"] == f"{authority}/discovery/v2.0/keys"


def test_client_secret_credential(emu: AzureEmulator, sdk: Sdk) -> None:
    token = sdk.credential().get_token(ARM_SCOPE)
    assert token.expires_on > time.time() + 3000
    claims = claims_of(emu, token.token)
    assert claims["aud"] == "https://management.azure.com"
    assert claims["tid"] == emu.tenant_id
    assert claims["appid"] == claims["oid"] == emu.client_id
    assert claims["appidacr"] == "1"


async def test_aio_client_secret_credential(emu: AzureEmulator) -> None:
    async with AioClientSecretCredential(
        emu.tenant_id,
        emu.client_id,
        emu.client_secret,
        authority=emu.url,
        disable_instance_discovery=True,
        connection_verify=str(emu.ca_file),
    ) as cred:
        token = await cred.get_token("https://management.core.windows.net//.default")
    assert claims_of_any_audience(emu, token.token)["aud"] == "https://management.core.windows.net/"


def claims_of_any_audience(emu: AzureEmulator, token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def test_workload_identity_credential(emu: AzureEmulator, sdk: Sdk, tmp_path: Path) -> None:
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(service_account_token())
    cred = WorkloadIdentityCredential(
        tenant_id=emu.tenant_id,
        client_id=emu.client_id,
        token_file_path=str(token_file),
        authority=emu.url,
        connection_verify=str(emu.ca_file),
    )
    claims = claims_of(emu, cred.get_token(ARM_SCOPE).token)
    assert claims["appid"] == emu.client_id
    assert claims["appidacr"] == "2"
    # And the token works against ARM.
    from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

    client = CognitiveServicesManagementClient(
        cred,
        emu.subscription_id,
        base_url=emu.url,
        credential_scopes=[ARM_SCOPE],
        connection_verify=str(emu.ca_file),
    )
    assert client.accounts.get("aucert-foundation-rg", "aucert-ai").name == "aucert-ai"


async def test_aio_workload_identity_credential_from_environment(
    emu: AzureEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(service_account_token())
    monkeypatch.setenv("AZURE_TENANT_ID", emu.tenant_id)
    monkeypatch.setenv("AZURE_CLIENT_ID", emu.client_id)
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", emu.url)
    # (SSL_CERT_FILE would do for the CA too, but aiohttp reads it once at import: see test_azure_cli.)
    async with AioWorkloadIdentityCredential(connection_verify=str(emu.ca_file)) as cred:
        token = await cred.get_token(ARM_SCOPE)
    assert claims_of(emu, token.token)["appidacr"] == "2"


def test_workload_identity_with_unknown_subject_is_refused(emu: AzureEmulator, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(service_account_token(subject="system:serviceaccount:other:intruder"))
    cred = WorkloadIdentityCredential(
        tenant_id=emu.tenant_id,
        client_id=emu.client_id,
        token_file_path=str(token_file),
        authority=emu.url,
        connection_verify=str(emu.ca_file),
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS70021: No matching federated identity record"):
        cred.get_token(ARM_SCOPE)


def test_default_azure_credential_from_environment(
    emu: AzureEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_TENANT_ID", emu.tenant_id)
    monkeypatch.setenv("AZURE_CLIENT_ID", emu.client_id)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", emu.client_secret)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", emu.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(emu.ca_file))  # requests (the sync transport) reads it
    cred = DefaultAzureCredential(disable_instance_discovery=True)
    assert claims_of(emu, cred.get_token(ARM_SCOPE).token)["appid"] == emu.client_id


def test_wrong_secret_is_aadsts7000215(sdk: Sdk) -> None:
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215: Invalid client secret provided"):
        sdk.credential(client_secret="wrong").get_token(ARM_SCOPE)


def test_unknown_client_is_aadsts700016(sdk: Sdk) -> None:
    with pytest.raises(ClientAuthenticationError, match="AADSTS700016: Application with identifier 'nobody'"):
        sdk.credential(client_id="nobody").get_token(ARM_SCOPE)


def test_token_endpoint_error_shape(emu: AzureEmulator) -> None:
    context = ssl.create_default_context(cafile=str(emu.ca_file))
    data = f"grant_type=client_credentials&client_id={emu.client_id}&client_secret=bad&scope={ARM_SCOPE}".encode()
    request = urllib.request.Request(f"{emu.url}/{emu.tenant_id}/oauth2/v2.0/token", data=data)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, context=context)
    assert err.value.code == 401
    body = json.loads(err.value.read())
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")


def test_unknown_tenant(emu: AzureEmulator) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        get_json(emu, "/other-tenant/v2.0/.well-known/openid-configuration")
    assert err.value.code == 400
    assert json.loads(err.value.read())["error_codes"] == [90002]


async def test_restart_on_the_same_state_dir_keeps_ca_and_tokens(tmp_path: Path, scenario: Scenario) -> None:
    """A client configured once (CA file, cached token) keeps working across emulator restarts."""
    async with AzureEmulator(scenario, state_dir=tmp_path) as first:
        ca = first.ca_file.read_bytes()
        async with AioClientSecretCredential(
            first.tenant_id,
            first.client_id,
            first.client_secret,
            authority=first.url,
            disable_instance_discovery=True,
            connection_verify=str(first.ca_file),
        ) as cred:
            token = (await cred.get_token(ARM_SCOPE)).token
    async with AzureEmulator(scenario, state_dir=tmp_path) as second:
        assert second.ca_file.read_bytes() == ca
        context = ssl.create_default_context(cafile=str(second.ca_file))
        path = f"/subscriptions/{second.subscription_id}/providers/Microsoft.CognitiveServices/accounts"
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{second.url}{path}?api-version=2025-09-01",
                headers={"Authorization": f"Bearer {token}"},
                ssl=context,
            ) as response,
        ):
            assert response.status == 200
            assert len((await response.json())["value"]) == 2
