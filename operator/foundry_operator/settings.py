"""Settings from the environment: the operator's own (FOUNDRY_*) and Azure's standard variables.

Plain pydantic models that read `os.environ` when they are built (pydantic-settings did the same
for these flat fields, and cost the operator's process about 6 MiB of imports): a field `name`
of a model with prefix `P` is read from the variable `P` + `NAME`, in any case, or from the
names its `validation_alias` lists; keyword arguments win over the environment. A value that
does not validate is reported under the field's name, which `variable()` turns back into the
environment variable a user sets.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

PUBLIC_AUTHORITY_HOST = "https://login.microsoftonline.com"
# Authorities MSAL knows; any other host (a sovereign private cloud, Azure Stack, the emulator)
# is used as given, without instance discovery against the public cloud.
KNOWN_AUTHORITY_HOSTS = (
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
)


class EnvironmentSettings(BaseModel):
    """Fields filled from environment variables named `env_prefix` + field name (case-insensitive)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    env_prefix: ClassVar[str] = ""

    @classmethod
    def variables(cls, field_name: str) -> list[str]:
        """The environment variables a field is read from, in order of precedence."""
        alias = cls.model_fields[field_name].validation_alias
        if isinstance(alias, AliasChoices):
            return [str(choice) for choice in alias.choices]
        if isinstance(alias, str):
            return [alias]
        return [f"{cls.env_prefix}{field_name}".upper()]

    @classmethod
    def variable(cls, field_name: str) -> str:
        """The variable to name in an error about `field_name`."""
        if field_name not in cls.model_fields:
            return field_name
        return cls.variables(field_name)[0]

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        values = dict(data)
        environment = {name.upper(): value for name, value in os.environ.items()}
        for field_name in cls.model_fields:
            if field_name in values or any(name in values for name in cls.variables(field_name)):
                continue  # given as a keyword: wins over the environment
            for name in cls.variables(field_name):
                if name.upper() in environment:
                    values[field_name] = environment[name.upper()]
                    break
        return values


class OperatorSettings(EnvironmentSettings):
    """Behaviour of the operator (env prefix FOUNDRY_)."""

    env_prefix: ClassVar[str] = "FOUNDRY_"

    resync_interval_seconds: float = Field(default=300.0, gt=0, description="Drift check period per object.")
    catalog_ttl_seconds: float = Field(
        default=600.0, gt=0, description="How long a region's catalog is reused."
    )
    usage_ttl_seconds: float = Field(default=60.0, gt=0, description="How long quota usages are reused.")
    retirement_window_days: int = Field(default=30, ge=0, description="RetirementSoon this many days ahead.")
    lro_poll_seconds: float = Field(
        default=5.0, gt=0, description="Poll interval when Azure sends no Retry-After."
    )
    conflict_retry_seconds: float = Field(
        default=2.0, gt=0, description="First backoff after a foreign RequestConflict."
    )
    conflict_retry_attempts: int = Field(
        default=8, ge=1, description="Attempts on RequestConflict before giving up for now."
    )
    transient_retry_seconds: float = Field(
        default=15.0, gt=0, description="Delay before kopf retries after a transient error."
    )
    arm_retry_total: int = Field(
        default=6, ge=0, description="azure-core retries for 429/5xx/connection errors."
    )
    arm_retry_backoff_max_seconds: float = Field(
        default=30.0, gt=0, description="Cap of azure-core's backoff."
    )
    configmap_debounce_seconds: float = Field(
        default=0.05, ge=0, description="Coalescing window of ConfigMap writes."
    )
    peering_lifetime_seconds: float = Field(
        default=60.0,
        gt=0,
        description="With replicas > 1 (kopf peering): a standby takes over once the active replica has "
        "been silent this long.",
    )
    worker_limit: int = Field(
        default=0,
        ge=0,
        description="Objects kopf processes at once (0: no limit). Each in-flight object holds its body, "
        "its handler's state and its Azure responses: a bound keeps the memory peak of a burst flat.",
    )
    metrics_port: int = Field(default=9090, ge=0, le=65535, description="Prometheus port; 0 disables.")
    log_format: str = Field(default="text", pattern="^(text|json)$")
    log_level: str = Field(default="info", pattern="^(debug|info|warning|error)$")


class AzureSettings(EnvironmentSettings):
    """Azure's standard variable names (as azure-identity and Azure Service Operator read them)."""

    env_prefix: ClassVar[str] = "AZURE_"

    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = Field(default=None, repr=False)
    federated_token_file: str | None = None
    authority_host: str = PUBLIC_AUTHORITY_HOST
    resource_manager_endpoint: str = "https://management.azure.com/"
    # Defaults to the endpoint: a sovereign cloud's tokens are for its own ARM (as ASO does).
    resource_manager_audience: str | None = None
    ca_bundle: str | None = Field(
        default=None, validation_alias=AliasChoices("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
    )

    @model_validator(mode="after")
    def _audience_follows_endpoint(self) -> AzureSettings:
        if not self.resource_manager_audience:
            self.resource_manager_audience = self.resource_manager_endpoint
        return self

    @property
    def scope(self) -> str:
        return (self.resource_manager_audience or self.resource_manager_endpoint).rstrip("/") + "/.default"

    @property
    def instance_discovery_disabled(self) -> bool:
        host = self.authority_host.split("://", 1)[-1].split("/", 1)[0].lower()
        return host not in KNOWN_AUTHORITY_HOSTS
