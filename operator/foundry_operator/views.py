"""What the operator's kopf indexes hold: accounts as deployments see them, and published entries.

Index values are rebuilt from each object's spec and status on every watch event, and kopf fills
every index before any handler runs, so after a restart the operator knows every account's
endpoints and every other object's published keys before it writes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from foundry_operator.api.models import (
    ApiModel,
    FoundryAccountSpec,
    FoundryAccountStatus,
    FoundryDeploymentStatus,
    default_key,
    split_account_ref,
)
from foundry_operator.azure.arm import AccountCoordinates
from foundry_operator.azure.credentials import ServicePrincipal
from foundry_operator.conditions import READY, STALLED, condition, is_true
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
    stalled: bool = False  # not Ready until its spec, its Secret or Azure changes

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
    typed = typed_account_status(status)
    return AccountView(
        namespace=namespace,
        name=name,
        spec=parsed,
        ready=bool(ready and ready.get("status") == "True"),
        message=str(ready.get("message", "")) if ready else "not reconciled yet",
        location=typed.location,
        kind=typed.kind,
        endpoint=typed.endpoint,
        endpoints=dict(typed.endpoints),
        pending=ready is None,
        stalled=is_true(status.get("conditions"), STALLED),
    )


def seniority(meta: Mapping[str, Any]) -> str:
    """creationTimestamp, then uid: the order in which objects' claims are honoured (older first).

    creationTimestamp has a one-second resolution, so objects applied together often share it;
    the uid breaks the tie the same way in every process, whatever order events arrive in."""
    return f"{meta.get('creationTimestamp', '')} {meta.get('uid', '')}"


@dataclass(frozen=True)
class Claim:
    """An object's hold on one Azure deployment (account + name), taken from its status."""

    owner: str
    created: str  # seniority()


@dataclass(frozen=True)
class KeyClaim:
    """The keys an object's SPEC asks for in one ConfigMap: claimed before anything is written, so
    two objects applied together decide the winner the same way whatever order their events arrive in."""

    owner: str
    created: str  # seniority()
    keys: tuple[str, ...]
    model: tuple[str, str, str | None] = ("", "", None)  # (format, name, version), lower case


@dataclass(frozen=True)
class NameClaim:
    """An object's wish for an Azure deployment name (from its spec), or its hold on one (status).

    Decided before any Azure write: a name held on an account stays with its holder; between
    objects that only wish for it, the older wins and the younger waits until the older is placed
    or refused."""

    owner: str
    created: str  # seniority()
    model: tuple[str, str, str | None]  # (format, name, version), lower case
    candidates: tuple[str, ...] = ()  # namespace/name of the accounts it may be placed on
    held_on: str | None = None  # ARM id (lower case) of the account where it serves this name
    undecided: bool = False  # placed nowhere and not refused yet: it may still take the name


def model_of(spec: Mapping[str, Any]) -> tuple[str, str, str | None]:
    model = spec.get("model") or {}
    return (
        str(model.get("format", "OpenAI")).lower(),
        str(model.get("name", "")).lower(),
        model.get("version"),
    )


def name_key(deployment_name: str) -> tuple[str, str]:
    return ("name", deployment_name.lower())


def key_claim_key(namespace: str, config_map: str, key: str) -> tuple[str, str, str, str]:
    # One index entry per key: a reconcile reads the claims on its own keys, not every object's.
    return ("key", namespace, config_map, key)


def account_key(namespace: str, name: str) -> tuple[str, str, str]:
    # Tagged by shape: an untagged (namespace, name) collided with ("primary", namespace) for a
    # namespace named "primary".
    return ("account", namespace, name)


def placed_key(account_id: str) -> tuple[str, str]:
    return ("placed", account_id.lower())


def typed_status(raw: Mapping[str, Any]) -> FoundryDeploymentStatus:
    """The status as the pydantic model (conditions are merged apart, from the raw list)."""
    return FoundryDeploymentStatus.model_validate(_known(raw, FoundryDeploymentStatus))


def typed_account_status(raw: Mapping[str, Any]) -> FoundryAccountStatus:
    return FoundryAccountStatus.model_validate(_known(raw, FoundryAccountStatus))


def _known(raw: Mapping[str, Any], model: type[ApiModel]) -> dict[str, Any]:
    known = {field.alias or name for name, field in model.model_fields.items()}
    return {key: value for key, value in raw.items() if key in known and key != "conditions"}


def entry_from_status(
    namespace: str, name: str, created: str, status: Mapping[str, Any]
) -> PublishedEntry | None:
    """The entry an object last published, as its status records it (None if it publishes nothing)."""
    typed = typed_status(status)
    keys = tuple(typed.published_keys)
    if not keys or not (
        typed.endpoint and typed.deployment_name and typed.model_name and typed.account and typed.region
    ):
        return None
    return PublishedEntry(
        owner=f"{namespace}/{name}",
        created=created,
        keys=keys,
        endpoint=typed.endpoint,
        api_flavor=typed.api_flavor or "openai",
        deployment_name=typed.deployment_name,
        model_name=typed.model_name,
        model_version=typed.model_version,
        model_format=typed.model_format or "OpenAI",
        sku_name=typed.sku_name or "",
        capacity=typed.capacity,
        account=_azure_account(typed),
        region=typed.region,
        capabilities=tuple(sorted(typed.capabilities.items())),
        retirement_date=typed.retirement_date,
    )


def deployment_index_entries(
    namespace: str, name: str, meta: Mapping[str, Any], spec: Mapping[str, Any], status: Mapping[str, Any]
) -> dict[Any, Any]:
    """What one FoundryDeployment puts in the operator's index: its key and name claims (from the
    spec: decided before any write), its published entry and its hold on an Azure deployment (status)."""
    owner = f"{namespace}/{name}"
    created = seniority(meta)
    model = model_of(spec)
    keys = tuple(spec.get("keys") or [default_key(name)])
    config_map = spec.get("configMapName", "llm-config")
    candidates = tuple("/".join(split_account_ref(str(ref), namespace)) for ref in spec.get("accounts") or ())
    wanted = str(spec.get("deploymentName") or (spec.get("model") or {}).get("name") or name)
    resource_id = str(status.get("resourceId") or "")
    conditions = status.get("conditions")
    held_id, held_name = ("", "")
    if "/deployments/" in resource_id and not is_true(conditions, "Conflict"):
        held_id, held_name = resource_id.lower().rsplit("/deployments/", 1)
    # Settled: the operator has placed or refused the current generation; until then, it may still
    # take the name it asks for (a new object, one waiting for an account, one mid-change).
    current = status.get("observedGeneration") == meta.get("generation")
    settled = current and (is_true(conditions, READY) or is_true(conditions, STALLED))
    holds_wanted = bool(held_id) and held_name == wanted.lower()
    wish = NameClaim(owner, created, model, candidates, undecided=not holds_wanted and not settled)
    claim = KeyClaim(owner, created, keys, model)
    result: dict[Any, Any] = {key_claim_key(namespace, config_map, key): claim for key in keys}
    if holds_wanted:
        result[name_key(wanted)] = replace(wish, held_on=held_id)
    else:
        result[name_key(wanted)] = wish
        if held_id:  # mid-change: the name it serves now is still held
            result[name_key(held_name)] = NameClaim(owner, created, model, held_on=held_id)
    if held_id:
        result[placed_key(held_id)] = Claim(owner, created)
    entry = entry_from_status(namespace, name, created, status)
    if entry is not None:
        result[("published", namespace, status.get("configMapName") or config_map)] = entry
    return result


def _azure_account(status: FoundryDeploymentStatus) -> str:
    """The Azure account name, as the reconciler publishes it (the FoundryAccount may be named otherwise)."""
    parts = (status.resource_id or "").split("/")
    lowered = [part.lower() for part in parts]
    if "accounts" in lowered and lowered.index("accounts") + 1 < len(parts):
        return parts[lowered.index("accounts") + 1]
    return status.account or ""
