"""What the operator's kopf indexes hold: accounts as deployments see them, and published entries.

Index values are rebuilt from each object's spec and status on every watch event, and kopf fills
every index before any handler runs, so after a restart the operator knows every account's
endpoints and every other object's published keys before it writes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from foundry_operator.api.models import FoundryAccountSpec
from foundry_operator.azure.arm import AccountCoordinates
from foundry_operator.azure.credentials import ServicePrincipal
from foundry_operator.conditions import READY, condition
from foundry_operator.publishing import PublishedEntry


@dataclass(frozen=True)
class AccountView:
    namespace: str
    name: str
    spec: FoundryAccountSpec
    ready: bool
    message: str
    location: str | None
    kind: str | None
    endpoint: str | None
    endpoints: Mapping[str, str] = field(default_factory=dict)
    pending: bool = False  # no Ready condition yet: the operator has not looked at it so far

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def allows(self, namespace: str) -> bool:
        allowed = self.spec.allowed_namespaces
        return namespace == self.namespace or "*" in allowed or namespace in allowed

    def coordinates(self, principal: ServicePrincipal | None) -> AccountCoordinates:
        return AccountCoordinates(
            self.spec.subscription_id, self.spec.resource_group, self.spec.account_name, principal
        )


def account_view(
    namespace: str, name: str, spec: Mapping[str, Any], status: Mapping[str, Any]
) -> AccountView | None:
    try:
        parsed = FoundryAccountSpec.model_validate(dict(spec))
    except ValidationError:
        return None
    ready = condition(status.get("conditions"), READY)
    return AccountView(
        namespace=namespace,
        name=name,
        spec=parsed,
        ready=bool(ready and ready.get("status") == "True"),
        message=str(ready.get("message", "")) if ready else "not reconciled yet",
        location=status.get("location"),
        kind=status.get("kind"),
        endpoint=status.get("endpoint"),
        endpoints=dict(status.get("endpoints") or {}),
        pending=ready is None,
    )


@dataclass(frozen=True)
class Claim:
    """An object's hold on one Azure deployment (account + name), taken from its status."""

    owner: str
    created: str


@dataclass(frozen=True)
class KeyClaim:
    """The keys an object's SPEC asks for in one ConfigMap: claimed before anything is written, so
    two objects applied together decide the winner the same way whatever order their events arrive in."""

    owner: str
    created: str
    keys: tuple[str, ...]


def key_claims_key(namespace: str, config_map: str) -> tuple[str, str, str]:
    return ("keys", namespace, config_map)


def account_key(namespace: str, name: str) -> tuple[str, str, str]:
    # Tagged by shape: an untagged (namespace, name) collided with ("primary", namespace) for a
    # namespace named "primary".
    return ("account", namespace, name)


def claim_key(account_id: str, deployment_name: str) -> tuple[str, str, str]:
    return ("claim", account_id.lower(), deployment_name.lower())


def entry_from_status(
    namespace: str, name: str, created: str, status: Mapping[str, Any]
) -> PublishedEntry | None:
    """The entry an object last published, as its status records it (None if it publishes nothing)."""
    keys = tuple(status.get("publishedKeys") or ())
    required = ("endpoint", "deploymentName", "modelName", "account", "region")
    if not keys or any(not status.get(item) for item in required):
        return None
    return PublishedEntry(
        owner=f"{namespace}/{name}",
        created=created,
        keys=keys,
        endpoint=status["endpoint"],
        api_flavor=status.get("apiFlavor") or "openai",
        deployment_name=status["deploymentName"],
        model_name=status["modelName"],
        model_version=status.get("modelVersion"),
        model_format=status.get("modelFormat") or "OpenAI",
        sku_name=status.get("skuName") or "",
        capacity=status.get("capacity"),
        account=status["account"],
        region=status["region"],
        capabilities=tuple(sorted((status.get("capabilities") or {}).items())),
        retirement_date=status.get("retirementDate"),
    )
