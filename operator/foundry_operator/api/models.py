"""The API of foundry.llmops.io/v1alpha1: the single source of the CRDs.

Every field carries its description and default here; `crdgen` turns these models into the
checked-in CRDs, and the operator parses the objects it receives with the same models. Rules a
structural schema cannot say (uniqueness, cross-field requirements, immutability) are CEL
`x-kubernetes-validations` attached where they apply, so the API server refuses a bad manifest
before the operator sees it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonDict

GROUP = "foundry.llmops.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Azure deployment names: letters, digits, '.', '_', '-', 2 to 64 characters (Kimi-K2.6 verbatim).
DEPLOYMENT_NAME_PATTERN = r"^[A-Za-z0-9._-]{2,64}$"
# A key becomes the suffix of an environment variable name: FOUNDRY_DEPLOYMENT_<KEY>.
KEY_PATTERN = r"^[A-Z][A-Z0-9_]{0,62}$"
# A FoundryAccount reference: "name" (same namespace) or "namespace/name".
ACCOUNT_REF_PATTERN = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-.a-z0-9]*[a-z0-9])?$"
NAMESPACE_PATTERN = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?|\*)$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
RESOURCE_GROUP_PATTERN = r"^[-\w._()]{1,90}$"
ACCOUNT_NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,62}[a-zA-Z0-9]$"
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$"
CONFIGMAP_NAME_PATTERN = r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$"


def _unique(field: str) -> JsonDict:
    return {
        "rule": f"!has(self.{field}) || self.{field}.all(x, self.{field}.exists_one(y, y == x))",
        "message": f"{field} must not list the same entry twice",
        "fieldPath": f".{field}",
        # Not FieldValueDuplicate: for that reason the API server drops the message and prints
        # only 'Duplicate value: "object"', which does not say what is duplicated.
        "reason": "FieldValueInvalid",
    }


# Conditions are a map keyed by type, so server-side apply and strategic merges treat them right.
_CONDITION_LIST: dict[str, Any] = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}


def _immutable(what: str) -> JsonDict:
    return {"rule": "self == oldSelf", "message": f"{what} is immutable; create a new object instead"}


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields refused (kubectl's strict validation)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", regex_engine="python-re"
    )

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# ---------------------------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------------------------


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """A Kubernetes-style condition, as Argo CD, kstatus and `kubectl wait` read them."""

    type: str = Field(
        description="Ready, Reconciling, Stalled, Placed, Deployed, Published, Conflict, RetirementSoon or ConsumerAccess."
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="A CamelCase reason, stable for automation.")
    message: str = Field(default="", description="A human-readable explanation.")
    last_transition_time: str = Field(description="When the status last changed (RFC 3339).")
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this condition describes."
    )


class SecretReference(ApiModel):
    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=CONFIGMAP_NAME_PATTERN,
        description="Name of a Secret in the FoundryAccount's namespace holding AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET.",
    )


class CredentialSource(StrEnum):
    OPERATOR_IDENTITY = "OperatorIdentity"
    SECRET = "Secret"


class Credentials(ApiModel):
    """Who the operator is when it talks to Azure about this account."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    # has(): the API server also checks the defaults it would apply, and the
                    # default credentials ({}) carry no source yet.
                    "rule": "!has(self.source) || self.source != 'Secret' || has(self.secretRef)",
                    "message": "credentials.secretRef is required when credentials.source is Secret",
                    "fieldPath": ".secretRef",
                    "reason": "FieldValueRequired",
                },
                {
                    "rule": "(has(self.source) && self.source == 'Secret') || !has(self.secretRef)",
                    "message": "credentials.secretRef is only used when credentials.source is Secret",
                    "fieldPath": ".secretRef",
                },
            ]
        }
    )

    source: CredentialSource = Field(
        default=CredentialSource.OPERATOR_IDENTITY,
        description="OperatorIdentity (the operator's own identity, workload identity on AKS) or Secret.",
    )
    secret_ref: SecretReference | None = Field(
        default=None, description="The Secret used when source is Secret."
    )


# ---------------------------------------------------------------------------------------------
# FoundryAccount
# ---------------------------------------------------------------------------------------------


class Management(StrEnum):
    ADOPT = "Adopt"
    MANAGED = "Managed"


class AccountKind(StrEnum):
    AI_SERVICES = "AIServices"
    OPENAI = "OpenAI"


class AccountDeletionPolicy(StrEnum):
    ORPHAN = "Orphan"
    DELETE = "Delete"


class FoundryAccountSpec(ApiModel):
    """One Azure account (Microsoft.CognitiveServices/accounts) the operator may deploy models into."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.management != 'Managed' || has(self.location)",
                    "message": "location is required when management is Managed (the operator creates the account there)",
                    "fieldPath": ".location",
                    "reason": "FieldValueRequired",
                },
                {
                    "rule": "self.deletionPolicy != 'Delete' || self.management == 'Managed'",
                    "message": "deletionPolicy Delete is only allowed for Managed accounts; an adopted account is never deleted",
                    "fieldPath": ".deletionPolicy",
                },
            ]
        }
    )

    subscription_id: str = Field(
        pattern=UUID_PATTERN,
        max_length=36,
        description="Azure subscription ID (a GUID).",
        json_schema_extra={"x-kubernetes-validations": [_immutable("subscriptionId")]},
    )
    resource_group: str = Field(
        pattern=RESOURCE_GROUP_PATTERN,
        max_length=90,
        description="Resource group of the account.",
        json_schema_extra={"x-kubernetes-validations": [_immutable("resourceGroup")]},
    )
    account_name: str = Field(
        pattern=ACCOUNT_NAME_PATTERN,
        min_length=2,
        max_length=64,
        description="Name of the Microsoft.CognitiveServices account.",
        json_schema_extra={"x-kubernetes-validations": [_immutable("accountName")]},
    )
    management: Management = Field(
        default=Management.ADOPT,
        description="Adopt: read the account, never create or delete it. Managed: create it (location, kind, sku, customSubDomainName).",
    )
    location: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]+$",
        max_length=40,
        description="Azure region for a Managed account, e.g. westus. For Adopt it is read from Azure.",
    )
    kind: AccountKind = Field(
        default=AccountKind.AI_SERVICES, description="Account kind for a Managed account."
    )
    sku: Literal["S0"] = Field(default="S0", description="Account SKU for a Managed account.")
    custom_sub_domain_name: str | None = Field(
        default=None,
        pattern=ACCOUNT_NAME_PATTERN,
        max_length=64,
        description="Custom subdomain for a Managed account's endpoints; defaults to accountName.",
    )
    primary: bool = Field(
        default=False,
        description="This account's endpoint becomes FOUNDRY_ENDPOINT in this namespace's ConfigMaps.",
    )
    credentials: Credentials = Field(
        default_factory=Credentials,
        description="Identity used for this account (per-resource credentials).",
        json_schema_extra={"default": {}},
    )
    allowed_namespaces: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Other namespaces whose FoundryDeployments may use this account ('*' for all). Its own namespace is always allowed.",
        json_schema_extra={"items": {"type": "string", "pattern": NAMESPACE_PATTERN, "maxLength": 63}},
    )
    deletion_policy: AccountDeletionPolicy = Field(
        default=AccountDeletionPolicy.ORPHAN,
        description="Orphan (default) leaves the Azure account when this object is deleted; Delete removes a Managed account.",
    )


class FoundryAccountStatus(ApiModel):
    observed_generation: int | None = Field(
        default=None, description="The generation the operator last acted on."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Reconciling, Stalled, InUse.",
        json_schema_extra=_CONDITION_LIST,
    )
    resource_id: str | None = Field(default=None, description="ARM id of the account.")
    location: str | None = Field(default=None, description="Azure region of the account.")
    kind: str | None = Field(default=None, description="AIServices or OpenAI, as Azure reports it.")
    endpoint: str | None = Field(
        default=None, description="The account's primary endpoint (properties.endpoint)."
    )
    endpoints: dict[str, str] = Field(
        default_factory=dict, description="properties.endpoints as Azure returns it, keyed by API name."
    )
    provisioning_state: str | None = Field(default=None, description="Azure provisioningState.")
    deployment_count: int | None = Field(
        default=None,
        description="FoundryDeployments placed on this account; the InUse condition is False when there are none.",
    )


# ---------------------------------------------------------------------------------------------
# FoundryDeployment
# ---------------------------------------------------------------------------------------------


class ModelSpec(ApiModel):
    name: str = Field(
        pattern=MODEL_NAME_PATTERN,
        max_length=128,
        description="Model name as in the catalog, e.g. gpt-5.4 or Kimi-K2.6.",
    )
    version: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        max_length=64,
        description="Model version, e.g. 2026-02-24. Omitted: the region's default version.",
    )
    format: str = Field(
        default="OpenAI",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        max_length=64,
        description="Model format (publisher) as in the catalog: OpenAI, MoonshotAI, DeepSeek, Meta, Mistral AI, xAI...",
    )


class SkuName(StrEnum):
    GLOBAL_STANDARD = "GlobalStandard"
    STANDARD = "Standard"
    DATA_ZONE_STANDARD = "DataZoneStandard"
    GLOBAL_PROVISIONED_MANAGED = "GlobalProvisionedManaged"
    DATA_ZONE_PROVISIONED_MANAGED = "DataZoneProvisionedManaged"
    PROVISIONED_MANAGED = "ProvisionedManaged"
    GLOBAL_BATCH = "GlobalBatch"
    DATA_ZONE_BATCH = "DataZoneBatch"
    DEVELOPER_TIER = "DeveloperTier"


class SkuSpec(ApiModel):
    name: SkuName = Field(
        default=SkuName.GLOBAL_STANDARD,
        description="Deployment SKU; GlobalStandard is serverless pay-per-token.",
    )
    capacity: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Capacity in the catalog's units (thousands of TPM for standard SKUs). Omitted: the catalog's SKU default.",
    )


class VersionUpgradeOption(StrEnum):
    ONCE_NEW_DEFAULT = "OnceNewDefaultVersionAvailable"
    ONCE_EXPIRED = "OnceCurrentVersionExpired"
    NO_AUTO_UPGRADE = "NoAutoUpgrade"


class PlacementPolicy(StrEnum):
    STICKY = "Sticky"
    PREFER_FIRST = "PreferFirst"


class DeploymentDeletionPolicy(StrEnum):
    DELETE = "Delete"
    ORPHAN = "Orphan"


class PrincipalType(StrEnum):
    SERVICE_PRINCIPAL = "ServicePrincipal"
    USER = "User"
    GROUP = "Group"


class AccessPolicy(StrEnum):
    CHECK = "Check"
    GRANT = "Grant"


class Consumer(ApiModel):
    """An identity that calls this model (a workload identity's principal, say)."""

    principal_id: str = Field(
        pattern=UUID_PATTERN,
        max_length=36,
        description=(
            "Entra ID object id (principal id) of the calling identity: for AKS workload identity, the "
            "managed identity's principalId (az identity show --query principalId), not its clientId."
        ),
    )
    name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/ -]{0,62}$",
        max_length=63,
        description="A label used in conditions and Events, e.g. the namespace/serviceaccount of the pods.",
    )
    principal_type: PrincipalType = Field(
        default=PrincipalType.SERVICE_PRINCIPAL,
        description="ServicePrincipal (managed and workload identities), User or Group.",
    )

    def label(self) -> str:
        return f"{self.name} ({self.principal_id})" if self.name else self.principal_id


class FoundryDeploymentSpec(ApiModel):
    """One model the namespace wants, placed on the first eligible account and published to a ConfigMap."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _unique("accounts"),
                _unique("keys"),
                {
                    "rule": "!has(self.consumers) || "
                    "self.consumers.all(x, self.consumers.exists_one(y, y.principalId == x.principalId))",
                    "message": "consumers must not list the same principalId twice",
                    "fieldPath": ".consumers",
                    "reason": "FieldValueInvalid",
                },
            ]
        }
    )

    model: ModelSpec = Field(description="The model to deploy.")
    deployment_name: str | None = Field(
        default=None,
        pattern=DEPLOYMENT_NAME_PATTERN,
        min_length=2,
        max_length=64,
        description="Azure deployment name; defaults to model.name verbatim.",
    )
    sku: SkuSpec = Field(
        default_factory=SkuSpec, description="Deployment SKU and capacity.", json_schema_extra={"default": {}}
    )
    accounts: list[str] = Field(
        min_length=1,
        max_length=16,
        description="FoundryAccounts in order of preference ('name' or 'namespace/name'): the placement candidates.",
        json_schema_extra={"items": {"type": "string", "pattern": ACCOUNT_REF_PATTERN, "maxLength": 317}},
    )
    keys: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Names published in the ConfigMap (FOUNDRY_DEPLOYMENT_<KEY>...). Default: the object name in UPPER_SNAKE.",
        json_schema_extra={"items": {"type": "string", "pattern": KEY_PATTERN, "maxLength": 63}},
    )
    config_map_name: str = Field(
        default="llm-config",
        pattern=CONFIGMAP_NAME_PATTERN,
        max_length=253,
        description="ConfigMap in this namespace that receives the keys.",
    )
    version_upgrade_option: VersionUpgradeOption = Field(
        default=VersionUpgradeOption.ONCE_NEW_DEFAULT,
        description="Azure's version upgrade policy for the deployment.",
    )
    rai_policy_name: str | None = Field(
        default=None, max_length=128, description="Responsible AI (content filter) policy name."
    )
    deletion_policy: DeploymentDeletionPolicy = Field(
        default=DeploymentDeletionPolicy.DELETE,
        description="Delete removes the Azure deployment with this object; Orphan leaves it.",
    )
    consumers: list[Consumer] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "Identities that call this model. On the account it is placed on, each needs Cognitive Services "
            "User or Cognitive Services OpenAI User (account, resource group or subscription scope); the "
            "ConsumerAccess condition reports who lacks it."
        ),
    )
    access_policy: AccessPolicy = Field(
        default=AccessPolicy.CHECK,
        description=(
            "Check (default): report a consumer without a data-plane role (ConsumerAccess=False, a Warning "
            "Event, Ready unchanged). Grant: create the missing role assignment (Cognitive Services User at "
            "the account scope); the operator's identity then needs Microsoft.Authorization/roleAssignments/write."
        ),
    )

    placement_policy: PlacementPolicy = Field(
        default=PlacementPolicy.STICKY,
        description=(
            "Sticky: a running deployment stays on its account while that account is eligible. PreferFirst: "
            "when an account earlier in spec.accounts becomes eligible (a model rolled out to its region, quota "
            "freed up), the deployment moves there, make-before-break."
        ),
    )
    drain_seconds: int = Field(
        default=300,
        ge=0,
        le=86_400,
        description=(
            "After a change that replaces the Azure deployment (a model change, a move to another account), "
            "the old deployment is kept this long after the keys point at the new one, so that clients "
            "holding the old name finish their calls; then it is deleted if this object created it."
        ),
    )

    def effective_deployment_name(self) -> str:
        return self.deployment_name or self.model.name


class CandidateStatus(ApiModel):
    account: str = Field(description="The FoundryAccount reference as written in spec.accounts.")
    region: str | None = Field(default=None, description="The account's region, when known.")
    eligible: bool = Field(description="Whether the model can be placed there.")
    reason: str = Field(description="Why it was or was not chosen.")


class RetiringDeployment(ApiModel):
    """An Azure deployment replaced by a newer one, kept until its drain ends."""

    account_ref: str = Field(description="The FoundryAccount holding it, as namespace/name.")
    deployment_name: str = Field(description="Azure deployment name.")
    resource_id: str = Field(description="ARM id of the Azure deployment.")
    region: str | None = Field(default=None, description="Region of its account.")
    not_before: str = Field(description="When the drain ends and it may be deleted (RFC 3339).")


class FoundryDeploymentStatus(ApiModel):
    observed_generation: int | None = Field(
        default=None, description="The generation the operator last acted on."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Reconciling, Stalled, Placed, Deployed, Published, Conflict, RetirementSoon, ConsumerAccess.",
        json_schema_extra=_CONDITION_LIST,
    )
    account_ref: str | None = Field(
        default=None, description="The spec.accounts entry the model is placed on."
    )
    account: str | None = Field(default=None, description="The FoundryAccount the model is placed on.")
    account_namespace: str | None = Field(default=None, description="Namespace of that FoundryAccount.")
    region: str | None = Field(default=None, description="Region of the chosen account.")
    endpoint: str | None = Field(default=None, description="Endpoint clients call for this deployment.")
    api_flavor: str | None = Field(default=None, description="openai (OpenAI-compatible) or model-inference.")
    deployment_name: str | None = Field(default=None, description="Azure deployment name.")
    resource_id: str | None = Field(default=None, description="ARM id of the Azure deployment.")
    model_name: str | None = Field(default=None, description="Underlying model name.")
    model_format: str | None = Field(default=None, description="Underlying model format.")
    model_version: str | None = Field(default=None, description="Resolved model version.")
    sku_name: str | None = Field(default=None, description="Deployed SKU.")
    capacity: int | None = Field(default=None, description="Deployed capacity.")
    provisioning_state: str | None = Field(
        default=None, description="Azure provisioningState of the deployment."
    )
    retirement_date: str | None = Field(
        default=None, description="Inference retirement date announced by the catalog."
    )
    replacement: str | None = Field(
        default=None, description="Replacement model announced by the catalog (name and version)."
    )
    retirement_warning: str | None = Field(
        default=None, description="Set while retirement is within the warning window."
    )
    failed_generation: int | None = Field(
        default=None, description="Generation Azure refused; not retried until the spec changes."
    )
    capabilities: dict[str, str] = Field(
        default_factory=dict, description="Model capabilities from the catalog."
    )
    candidates: list[CandidateStatus] = Field(
        default_factory=list, description="Each candidate account and why it was or was not chosen."
    )
    published_keys: list[str] = Field(
        default_factory=list, description="Keys currently published in the ConfigMap."
    )
    config_map_name: str | None = Field(default=None, description="ConfigMap the keys are published in.")
    retiring: list[RetiringDeployment] = Field(
        default_factory=list,
        description="Azure deployments this object replaced, kept until their drain ends (spec.drainSeconds).",
    )


# ---------------------------------------------------------------------------------------------
# Helpers shared by the operator and the preflight check
# ---------------------------------------------------------------------------------------------

_NON_KEY_CHARS = re.compile(r"[^A-Za-z0-9]+")


def default_key(object_name: str) -> str:
    """The object name in UPPER_SNAKE: `reasoning-pro` -> `REASONING_PRO`."""
    key = _NON_KEY_CHARS.sub("_", object_name).strip("_").upper()
    return key if key and key[0].isalpha() else f"K_{key}"


def effective_keys(spec: FoundryDeploymentSpec, object_name: str) -> list[str]:
    return list(spec.keys) if spec.keys else [default_key(object_name)]


def split_account_ref(ref: str, own_namespace: str) -> tuple[str, str]:
    """'name' -> (own_namespace, name); 'ns/name' -> (ns, name)."""
    namespace, _, name = ref.rpartition("/")
    return (namespace or own_namespace, name)
