"""Settings from the environment: the operator's own (FOUNDRY_*) and Azure's standard variables."""

from __future__ import annotations

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PUBLIC_AUTHORITY_HOST = "https://login.microsoftonline.com"
# Authorities MSAL knows; any other host (a sovereign private cloud, Azure Stack, the emulator)
# is used as given, without instance discovery against the public cloud.
KNOWN_AUTHORITY_HOSTS = (
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
)


class OperatorSettings(BaseSettings):
    """Behaviour of the operator (env prefix FOUNDRY_)."""

    model_config = SettingsConfigDict(env_prefix="FOUNDRY_", extra="ignore")

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


class AzureSettings(BaseSettings):
    """Azure's standard variable names (as azure-identity and Azure Service Operator read them)."""

    model_config = SettingsConfigDict(env_prefix="AZURE_", extra="ignore", populate_by_name=True)

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
