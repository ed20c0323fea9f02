"""kopf wiring: indexes, handlers and timers that only orchestrate the reconcilers.

`build_registry` returns a fresh registry bound to one `OperatorContext`, so that tests, the demo
and the benchmark can run several operator instances (a restart, say) in one process.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import kopf
from kopf._core.actions.execution import HandlerChildrenRetry  # a TemporaryError kopf logs at debug

from foundry_operator.accounts import reconcile_account, resolve_principal
from foundry_operator.api.models import GROUP, VERSION, FoundryAccountSpec
from foundry_operator.azure.arm import AccountCoordinates
from foundry_operator.conditions import (
    IN_USE,
    READY,
    ConditionUpdate,
    is_true,
    merge_conditions,
)
from foundry_operator.context import (
    OperatorContext,
    apply_outcome,
    backoff,
    make_world,
    object_ref,
    placed_on,
)
from foundry_operator.errors import CLASSIFIED, PrincipalUnavailable, classify
from foundry_operator.observe import World
from foundry_operator.outcome import DeploymentOutcome
from foundry_operator.publishing import primary_endpoint
from foundry_operator.steady import Resync, resync_kind, seed_entries
from foundry_operator.views import account_key, account_view, deployment_index_entries, typed_status

ACCOUNTS = (GROUP, VERSION, "foundryaccounts")
DEPLOYMENTS = (GROUP, VERSION, "foundrydeployments")


def build_registry(ctx: OperatorContext) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    resync = ctx.settings.resync_interval_seconds

    @kopf.on.login(id="login", registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # In a pod the service account; elsewhere KUBECONFIG (read now, when the operator starts).
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    # -- indexes (filled before any handler runs) ------------------------------------------------

    @kopf.index(*ACCOUNTS, id="foundry_accounts", registry=registry)
    def foundry_accounts(
        namespace: str, name: str, spec: kopf.Spec, status: kopf.Status, **_: Any
    ) -> dict[Any, Any]:
        view = account_view(namespace, name, spec, status)
        if view is None:
            return {}
        result: dict[Any, Any] = {account_key(namespace, name): view}
        if view.spec.primary:
            result[("primary", namespace)] = view
        return result

    @kopf.index(*DEPLOYMENTS, id="foundry_deployments", registry=registry)
    def foundry_deployments(
        namespace: str, name: str, meta: kopf.Meta, spec: kopf.Spec, status: kopf.Status, **_: Any
    ) -> dict[Any, Any]:
        return deployment_index_entries(namespace, name, meta, spec, status)

    # -- FoundryAccount ----------------------------------------------------------------------------

    async def reconcile_account_object(
        namespace: str,
        name: str,
        spec: kopf.Spec,
        meta: kopf.Meta,
        status: kopf.Status,
        patch: kopf.Patch,
        body: kopf.Body,
        foundry_deployments: kopf.Index[Any, Any],
        raise_retry: bool,
        retry: int = 0,
    ) -> None:
        started = time.monotonic()
        parsed = FoundryAccountSpec.model_validate(dict(spec))
        outcome, _ = await reconcile_account(
            ctx.azure, ctx.core, namespace, parsed, ctx.settings.transient_retry_seconds
        )
        arm_id = AccountCoordinates(
            parsed.subscription_id, parsed.resource_group, parsed.account_name, None
        ).arm_id
        outcome.status.deployment_count = count = len(placed_on(foundry_deployments, arm_id))
        outcome.conditions.append(
            ConditionUpdate(
                IN_USE, True, "Hosting", f"{count} FoundryDeployment(s) placed on {parsed.account_name}"
            )
            if count
            else ConditionUpdate(
                IN_USE, False, "NoDeployments", f"no FoundryDeployment is placed on {parsed.account_name}"
            )
        )
        conditions = apply_outcome(patch, status, outcome, meta.get("generation"), body)
        ready = is_true(conditions, READY)
        ctx.metrics.reconcile_seconds.labels(
            "FoundryAccount", "apply", "ready" if ready else "not-ready"
        ).observe(time.monotonic() - started)
        if parsed.primary and ready:
            # The namespace's FOUNDRY_ENDPOINT may have changed: re-render its ConfigMaps.
            endpoint = primary_endpoint(outcome.status.endpoints, outcome.status.endpoint)
            for config_map in ctx.publisher.known_configmaps(namespace):
                await ctx.publisher.publish(
                    namespace,
                    config_map,
                    endpoint,
                    seed=seed_entries(foundry_deployments.get(("published", namespace, config_map), [])),
                )
        if outcome.retry_after and raise_retry:
            raise kopf.TemporaryError(
                outcome.retry_message or "account not ready",
                delay=backoff(outcome.retry_after, retry, resync),
            )

    @kopf.on.resume(*ACCOUNTS, id="account", registry=registry)
    @kopf.on.create(*ACCOUNTS, id="account", registry=registry)
    @kopf.on.update(*ACCOUNTS, id="account", field="spec", registry=registry)
    async def account_changed(
        namespace: str,
        name: str,
        spec: kopf.Spec,
        meta: kopf.Meta,
        status: kopf.Status,
        patch: kopf.Patch,
        body: kopf.Body,
        foundry_deployments: kopf.Index[Any, Any],
        retry: int = 0,
        **_: Any,
    ) -> None:
        async with ctx.busy[f"account:{namespace}/{name}"]:
            await reconcile_account_object(
                namespace, name, spec, meta, status, patch, body, foundry_deployments, True, retry
            )

    @kopf.timer(*ACCOUNTS, id="account-resync", interval=resync, initial_delay=resync, registry=registry)
    async def account_resync(
        namespace: str,
        name: str,
        spec: kopf.Spec,
        meta: kopf.Meta,
        status: kopf.Status,
        patch: kopf.Patch,
        body: kopf.Body,
        foundry_deployments: kopf.Index[Any, Any],
        **_: Any,
    ) -> None:
        lock = ctx.busy[f"account:{namespace}/{name}"]
        if lock.locked():
            return
        async with lock:
            await reconcile_account_object(
                namespace, name, spec, meta, status, patch, body, foundry_deployments, False
            )

    def _deletes_azure_account(spec: kopf.Spec, **_: Any) -> bool:
        return spec.get("management") == "Managed" and spec.get("deletionPolicy") == "Delete"

    @kopf.on.delete(*ACCOUNTS, id="account-delete", when=_deletes_azure_account, registry=registry)
    async def account_deleted(
        namespace: str,
        name: str,
        spec: kopf.Spec,
        body: kopf.Body,
        foundry_deployments: kopf.Index[Any, Any],
        **_: Any,
    ) -> None:
        parsed = FoundryAccountSpec.model_validate(dict(spec))
        try:
            principal = await resolve_principal(ctx.core, namespace, parsed)
        except PrincipalUnavailable as exc:
            raise kopf.TemporaryError(classify(exc).text, delay=ctx.settings.transient_retry_seconds) from exc
        coords = AccountCoordinates(
            parsed.subscription_id, parsed.resource_group, parsed.account_name, principal
        )
        users = placed_on(foundry_deployments, coords.arm_id)
        if users:
            raise kopf.TemporaryError(
                f"{len(users)} FoundryDeployments still use Azure account {parsed.account_name}; delete them first",
                delay=ctx.settings.transient_retry_seconds,
            )
        await ctx.azure.delete_account(coords)
        kopf.event(
            body,
            type="Normal",
            reason="AccountDeleted",
            message=f"deleted Azure account {parsed.account_name}",
        )

    # -- FoundryDeployment -------------------------------------------------------------------------

    async def reconcile_deployment_object(
        namespace: str,
        name: str,
        spec: kopf.Spec,
        meta: kopf.Meta,
        status: kopf.Status,
        patch: kopf.Patch,
        body: kopf.Body,
        world: World,
        kind: str,
    ) -> DeploymentOutcome:
        started = time.monotonic()
        obj = object_ref(meta, namespace, name)
        outcome = await ctx.deployments.reconcile(obj, spec, status, world)
        conditions = apply_outcome(patch, status, outcome, obj.generation, body)
        ctx.record_readiness(obj.owner, conditions)
        result = "ready" if is_true(conditions, READY) else ("retry" if outcome.retry_after else "not-ready")
        ctx.metrics.reconcile_seconds.labels("FoundryDeployment", kind, result).observe(
            time.monotonic() - started
        )
        return outcome

    @kopf.on.resume(*DEPLOYMENTS, id="deployment", registry=registry)
    @kopf.on.create(*DEPLOYMENTS, id="deployment", registry=registry)
    @kopf.on.update(*DEPLOYMENTS, id="deployment", field="spec", registry=registry)
    async def deployment_changed(
        namespace: str,
        name: str,
        spec: kopf.Spec,
        meta: kopf.Meta,
        status: kopf.Status,
        patch: kopf.Patch,
        body: kopf.Body,
        foundry_accounts: kopf.Index[Any, Any],
        foundry_deployments: kopf.Index[Any, Any],
        retry: int = 0,
        **_: Any,
    ) -> None:
        world = make_world(foundry_accounts, foundry_deployments)
        async with ctx.busy[f"{namespace}/{name}"]:
            outcome = await reconcile_deployment_object(
                namespace, name, spec, meta, status, patch, body, world, "apply"
            )
        if outcome.retry_after:
            delay = backoff(outcome.retry_after, retry, resync)
            if any(c.reason == "AccountNotReady" for c in outcome.conditions):
                # Accounts applied with their deployments: waiting is normal. kopf logs TemporaryError
                # as ERROR "failed temporarily" (and posts a Warning Event); its HandlerChildrenRetry
                # is the same retry (same delay, same retry counter) logged at debug.
                logging.getLogger(__name__).info(
                    f"[{namespace}/{name}] waiting for a FoundryAccount to be Ready, next try in {delay:g}s: "
                    f"{outcome.retry_message}"
                )
                raise HandlerChildrenRetry(outcome.retry_message, delay=delay)
            raise kopf.TemporaryError(outcome.retry_message or "not converged yet", delay=delay)
        if outcome.requeue_after is not None:
            # A replaced deployment drains: nothing failed, come back when its drain ends.
            raise HandlerChildrenRetry("a replaced deployment drains", delay=max(outcome.requeue_after, 1.0))

    @kopf.timer(
        *DEPLOYMENTS, id="deployment-resync", interval=resync, initial_delay=resync, registry=registry
    )
    async def deployment_resync(namespace: str, name: str, **kwargs: Any) -> None:
        lock = ctx.busy[f"{namespace}/{name}"]
        if lock.locked():
            return  # a change handler is at work on this object; the next tick will look again
        async with lock:
            await resync_deployment(namespace=namespace, name=name, **kwargs)

    async def resync_deployment(
        namespace: str,
        name: str,
        spec: kopf.Spec,
        meta: kopf.Meta,
        status: kopf.Status,
        patch: kopf.Patch,
        body: kopf.Body,
        foundry_accounts: kopf.Index[Any, Any],
        foundry_deployments: kopf.Index[Any, Any],
        **_: Any,
    ) -> None:
        if meta.get("deletionTimestamp"):
            return
        world = make_world(foundry_accounts, foundry_deployments)
        obj = object_ref(meta, namespace, name)
        kind = resync_kind(spec, typed_status(status), status.get("conditions"), obj.generation)
        if kind is Resync.RECONCILE:
            await reconcile_deployment_object(
                namespace, name, spec, meta, status, patch, body, world, "resync"
            )
            return
        if kind is Resync.SKIP:
            return
        try:
            drift = await ctx.deployments.drift(obj, spec, status, world)
            if not drift.changes and not drift.upgrade:
                outcome = await ctx.deployments.refresh(obj, spec, status, world)
                conditions = apply_outcome(patch, status, outcome, obj.generation, body)
                ctx.record_readiness(obj.owner, conditions)
                return
        except CLASSIFIED as exc:
            # The deployment still serves: Ready stays as it is, the next tick looks again.
            kopf.warn(body, reason="ResyncFailed", message=f"will look again: {classify(exc).text}")
            return
        for change in drift.changes:
            kopf.warn(body, reason="DriftDetected", message=change)
        # Plan again: a repair writes; Azure's upgrade is accepted and announced (VersionUpgraded).
        outcome = await reconcile_deployment_object(
            namespace, name, spec, meta, status, patch, body, world, "repair"
        )
        repaired = is_true(
            merge_conditions(status.get("conditions"), outcome.conditions, obj.generation), READY
        )
        for change in drift.changes if repaired else ():
            kopf.event(body, type="Normal", reason="DriftRepaired", message=f"repaired: {change}")

    @kopf.on.delete(*DEPLOYMENTS, id="deployment-delete", registry=registry)
    async def deployment_deleted(
        namespace: str,
        name: str,
        spec: kopf.Spec,
        meta: kopf.Meta,
        status: kopf.Status,
        patch: kopf.Patch,
        body: kopf.Body,
        foundry_accounts: kopf.Index[Any, Any],
        foundry_deployments: kopf.Index[Any, Any],
        retry: int = 0,
        **_: Any,
    ) -> None:
        world = make_world(foundry_accounts, foundry_deployments)
        obj = object_ref(meta, namespace, name)
        try:
            async with ctx.busy[obj.owner]:
                done = await ctx.deployments.delete(obj, spec, status, world)
        except CLASSIFIED as exc:
            message = f"cannot finish deletion yet, finalizer kept: {classify(exc).text}"
            patch.status["conditions"] = merge_conditions(
                status.get("conditions"),
                [ConditionUpdate(READY, False, "DeletionBlocked", message)],
                obj.generation,
            )
            delay = backoff(ctx.settings.transient_retry_seconds, retry, resync)
            raise kopf.TemporaryError(message, delay=delay) from exc
        ctx.record_readiness(obj.owner, None)
        ctx.busy.pop(obj.owner, None)
        kopf.event(body, type="Normal", reason="Deleted", message=done)

    return registry
