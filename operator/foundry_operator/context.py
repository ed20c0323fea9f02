"""What the kopf handlers share: the operator's context, the World over the indexes, status patches.

Kept apart from handlers.py so that the handlers module is only kopf wiring.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import kopf

from foundry_operator.azure.arm import AzureGateway
from foundry_operator.conditions import READY, condition, merge_conditions
from foundry_operator.deployments import DeploymentReconciler
from foundry_operator.kube import ConfigMapPublisher
from foundry_operator.metrics import Metrics
from foundry_operator.observe import ObjectRef, World
from foundry_operator.outcome import Outcome
from foundry_operator.publishing import primary_endpoint
from foundry_operator.settings import OperatorSettings
from foundry_operator.steady import seed_entries
from foundry_operator.views import (
    AccountView,
    KeyClaim,
    NameClaim,
    account_key,
    key_claim_key,
    name_key,
    placed_key,
    seniority,
)

if TYPE_CHECKING:
    from foundry_operator.kube import KubeCore


@dataclass
class OperatorContext:
    settings: OperatorSettings
    azure: AzureGateway
    core: KubeCore
    publisher: ConfigMapPublisher
    deployments: DeploymentReconciler
    metrics: Metrics
    ready_by_owner: dict[str, tuple[str, str]] = field(default_factory=dict)
    # kopf runs timers in tasks of their own, beside the change handlers of the same object: this
    # lock keeps one reconciliation per object at a time (a resync tick skips a busy object).
    busy: defaultdict[str, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))

    ready_counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def record_readiness(self, owner: str, conditions: list[dict[str, Any]] | None) -> None:
        # Counted incrementally: every resync of every object lands here, and recounting all
        # objects each time made a resync round quadratic in their number.
        ready = condition(conditions, READY)
        new = None if ready is None else (str(ready.get("status")), str(ready.get("reason")))
        old = self.ready_by_owner.get(owner)
        if new == old:
            return
        gauge = self.metrics.deployments_by_condition
        if old is not None:
            self.ready_counts[old] -= 1
            if self.ready_counts[old] > 0:
                gauge.labels(*old).set(self.ready_counts[old])
            else:
                del self.ready_counts[old]
                gauge.remove(*old)
        if new is None:
            self.ready_by_owner.pop(owner, None)
        else:
            self.ready_by_owner[owner] = new
            self.ready_counts[new] += 1
            gauge.labels(*new).set(self.ready_counts[new])


def make_world(accounts_index: kopf.Index[Any, Any], deployments_index: kopf.Index[Any, Any]) -> World:
    def account(namespace: str, name: str) -> AccountView | None:
        store = accounts_index.get(account_key(namespace, name))
        return next(iter(store), None) if store else None

    def name_claims(deployment_name: str) -> list[NameClaim]:
        return list(deployments_index.get(name_key(deployment_name), []))

    def key_claims(namespace: str, config_map: str, keys: Iterable[str]) -> list[KeyClaim]:
        claims = {}
        for key in keys:
            for claim in deployments_index.get(key_claim_key(namespace, config_map, key), []):
                claims[claim.owner] = claim
        return list(claims.values())

    def published(namespace: str, config_map: str) -> Iterable[Any]:
        return seed_entries(deployments_index.get(("published", namespace, config_map), []))

    def primary(namespace: str) -> str | None:
        views = [view for view in accounts_index.get(("primary", namespace), []) if view.ready]
        if not views:
            return None
        chosen = min(views, key=lambda view: view.name)  # two primaries: deterministic, and warned about
        return primary_endpoint(chosen.endpoints, chosen.endpoint)

    def all_accounts() -> list[AccountView]:
        return [next(iter(store)) for key, store in accounts_index.items() if key[0] == "account" and store]

    return World(account, name_claims, published, primary, all_accounts, key_claims)


def apply_outcome(
    patch: kopf.Patch,
    status: Mapping[str, Any],
    outcome: Outcome[Any],
    generation: int | None,
    body: kopf.Body,
) -> list[dict[str, Any]]:
    """Write only what changed into the status patch; post the Events."""
    for key, value in outcome.status_patch().items():
        if status.get(key) != value:
            patch.status[key] = value
    conditions = merge_conditions(status.get("conditions"), outcome.conditions, generation)
    if conditions != status.get("conditions"):
        patch.status["conditions"] = conditions
    if status.get("observedGeneration") != generation:
        patch.status["observedGeneration"] = generation
    for note in outcome.events:
        kopf.event(body, type=note.type, reason=note.reason, message=note.message)
    return conditions


# Consecutive failed attempts of one handler back off exponentially, up to the resync interval
# (which looks at every object again anyway): an object waiting on a broken account, or through a
# long Azure outage, costs a few requests an hour instead of one every few seconds.
BACKOFF_DOUBLINGS = 6


def placed_on(deployments_index: kopf.Index[Any, Any], account_id: str) -> set[str]:
    """The FoundryDeployments (namespace/name) whose status places them on the account."""
    return {claim.owner for claim in deployments_index.get(placed_key(account_id), [])}


def backoff(delay: float, retry: int, cap: float) -> float:
    """The delay before attempt `retry + 1` (kopf counts the retries of a handler from 0)."""
    return min(delay * 2 ** min(max(retry, 0), BACKOFF_DOUBLINGS), max(cap, delay))


def object_ref(meta: Mapping[str, Any], namespace: str | None, name: str | None) -> ObjectRef:
    return ObjectRef(str(namespace), str(name), seniority(meta), meta.get("generation"))
