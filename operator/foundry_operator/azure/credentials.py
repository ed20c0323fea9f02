"""Credentials: the operator's own identity, or a per-account service principal from a Secret."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import ClientSecretCredential, DefaultAzureCredential, WorkloadIdentityCredential

from foundry_operator.settings import AzureSettings

SECRET_KEYS = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")


@dataclass(frozen=True)
class ServicePrincipal:
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)

    @property
    def fingerprint(self) -> str:
        """Identifies the credential in caches without keeping or logging the secret itself."""
        digest = hashlib.sha256(
            f"{self.tenant_id}\0{self.client_id}\0{self.client_secret}".encode()
        ).hexdigest()
        return f"sp:{self.client_id}:{digest[:16]}"


class CredentialError(Exception):
    """A credential cannot be built; the message names what to fix and never holds a secret."""


def principal_from_secret(namespace: str, name: str, data: dict[str, str]) -> ServicePrincipal:
    missing = [key for key in SECRET_KEYS if not data.get(key)]
    if missing:
        raise CredentialError(
            f"Secret {namespace}/{name} lacks {', '.join(missing)}: "
            f"it must hold {', '.join(SECRET_KEYS)} (spec.credentials.secretRef)"
        )
    return ServicePrincipal(data["AZURE_TENANT_ID"], data["AZURE_CLIENT_ID"], data["AZURE_CLIENT_SECRET"])


def _common(settings: AzureSettings) -> dict[str, object]:
    options: dict[str, object] = {"authority": settings.authority_host}
    if settings.instance_discovery_disabled:
        options["disable_instance_discovery"] = True
    if settings.ca_bundle:
        options["connection_verify"] = settings.ca_bundle
    return options


def operator_credential(settings: AzureSettings) -> AsyncTokenCredential:
    """The operator's identity: workload identity on AKS, else a client secret, else the default chain."""
    options = _common(settings)
    if settings.federated_token_file and settings.client_id and settings.tenant_id:
        return WorkloadIdentityCredential(
            tenant_id=settings.tenant_id,
            client_id=settings.client_id,
            token_file_path=settings.federated_token_file,
            **options,  # type: ignore[arg-type]
        )
    if settings.client_secret and settings.client_id and settings.tenant_id:
        return ClientSecretCredential(
            settings.tenant_id, settings.client_id, settings.client_secret, **options
        )  # type: ignore[arg-type]
    return DefaultAzureCredential(**options)  # type: ignore[arg-type]


def principal_credential(settings: AzureSettings, principal: ServicePrincipal) -> AsyncTokenCredential:
    return ClientSecretCredential(
        principal.tenant_id,
        principal.client_id,
        principal.client_secret,
        **_common(settings),  # type: ignore[arg-type]
    )
