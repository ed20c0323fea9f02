"""FoundryDeployment reconciliation: observe -> plan (planning.py, pure) -> execute the steps.

The kopf handlers call `DeploymentReconciler` and only translate its `Outcome` into a status
patch, Events and retries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import HttpResponseError

from foundry_operator.access import review_access
from foundry_operator.api.models import (
    FoundryDeploymentSpec,
)
from foundry_operator.azure.arm import AccountCoordinates, AzureGateway, DeploymentSnapshot
from foundry_operator.azure.writes import error_message
from foundry_operator.conditions import (
    DEPLOYED,
    ConditionUpdate,
)
from foundry_operator.errors import CLASSIFIED, classify
from foundry_operator.kube import ConfigMapPublisher
from foundry_operator.observe import ObjectRef, Observer, World
from foundry_operator.outcome import DeploymentOutcome, deployment_outcome, failed, stalled
from foundry_operator.planning import (
    DeleteRetired,
    Deploy,
    LeaveRetired,
    LookElsewhere,
    Plan,
    Publish,
    Retire,
    Serve,
    plan,
)
from foundry_operator.publishing import PublishedEntry
from foundry_operator.settings import OperatorSettings
from foundry_operator.steady import SteadyState
from foundry_operator.views import typed_status

if TYPE_CHECKING:
    from foundry_operator.kube import KubeCore


class DeploymentReconciler(SteadyState):
    """observe -> plan (pure, planning.py) -> execute, for one FoundryDeployment at a time."""

    def __init__(
        self,
        azure: AzureGateway,
        core: KubeCore,
        publisher: ConfigMapPublisher,
        settings: OperatorSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.azure = azure
        self.core = core
        self.publisher = publisher
        self.settings = settings
        self.clock = clock
        self.observer = Observer(azure, core, clock)

    # -- the whole loop --------------------------------------------------------------------------

    async def reconcile(
        self, obj: ObjectRef, raw_spec: Mapping[str, Any], status: Mapping[str, Any], world: World
    ) -> DeploymentOutcome:
        outcome = deployment_outcome()
        spec = FoundryDeploymentSpec.model_validate(dict(raw_spec))
        try:
            return await self._reconcile(obj, spec, status, world, outcome)
        except CLASSIFIED as exc:
            return failed(outcome, classify(exc), self.settings.transient_retry_seconds)

    async def _reconcile(
        self,
        obj: ObjectRef,
        spec: FoundryDeploymentSpec,
        raw_status: Mapping[str, Any],
        world: World,
        outcome: DeploymentOutcome,
    ) -> DeploymentOutcome:
        status = typed_status(raw_status)
        facts, coordinates = await self.observer.observe(obj, spec, status, world)
        facts = replace(facts, retry_seconds=self.settings.transient_retry_seconds)
        decided = plan(facts)
        if any(isinstance(step, LookElsewhere) for step in decided.steps):
            decided = plan(
                replace(facts, elsewhere=await self.observer.where_else(obj, spec, facts, coordinates, world))
            )
        return await self._execute(obj, spec, raw_status, decided, coordinates, world)

    # -- execute ---------------------------------------------------------------------------------

    async def _execute(
        self,
        obj: ObjectRef,
        spec: FoundryDeploymentSpec,
        status: Mapping[str, Any],
        decided: Plan,
        coordinates: Mapping[str, AccountCoordinates],
        world: World,
    ) -> DeploymentOutcome:
        outcome = decided.outcome
        outcome.requeue_after = decided.requeue_after
        snapshot: DeploymentSnapshot | None = None
        for step in decided.steps:
            if isinstance(step, DeleteRetired):
                old = step.deployment
                await self.azure.delete_deployment(
                    coordinates[step.arm_id.lower()], old.deployment_name, old.region
                )
                outcome.note(
                    "Retired",
                    f"deleted the replaced Azure deployment {old.deployment_name} ({old.account_ref}) after its drain",
                )
            elif isinstance(step, LeaveRetired):
                old = step.deployment
                outcome.note(
                    "LeftInPlace",
                    f"left the replaced Azure deployment {old.deployment_name} ({old.account_ref}) in place: {step.why}",
                )
            elif isinstance(step, Deploy):
                coords = coordinates[step.account.arm_id.lower()]
                snapshot = await self._deploy(coords, step, obj, outcome)
                if snapshot is None:
                    return outcome  # refused: the old deployment and the keys stay as they were
            elif isinstance(step, Serve):
                snapshot = step.existing
                if step.adopted:
                    outcome.note(
                        "Adopted",
                        f"adopted existing Azure deployment {snapshot.name} on {step.account.account_name}",
                    )
            elif isinstance(step, Publish):
                assert snapshot is not None
                if not await self._switch(obj, spec, status, step, snapshot, coordinates, world, outcome):
                    return outcome
            elif isinstance(step, Retire):
                outcome.status.retiring = [*outcome.status.retiring, step.deployment]
                outcome.note(
                    "Draining",
                    f"keys moved to {spec.effective_deployment_name()}; the previous Azure deployment "
                    f"{step.deployment.deployment_name} ({step.deployment.account_ref}) drains until "
                    f"{step.deployment.not_before}",
                )
        return outcome

    async def _switch(
        self,
        obj: ObjectRef,
        spec: FoundryDeploymentSpec,
        status: Mapping[str, Any],
        step: Publish,
        snapshot: DeploymentSnapshot,
        coordinates: Mapping[str, AccountCoordinates],
        world: World,
        outcome: DeploymentOutcome,
    ) -> bool:
        """Point the keys at a Succeeded deployment. False: it is not (the keys stay as they were)."""
        account = step.account
        name = snapshot.name
        if (snapshot.provisioning_state or "").lower() == "failed":
            message = f"Azure reports provisioningState Failed for {name}"
            stalled(outcome, "DeploymentFailed", message, ConditionUpdate(DEPLOYED, False, "Failed", message))
            return False
        placed = outcome.status
        placed.account_ref, placed.account, placed.account_namespace = (
            account.ref,
            account.name,
            account.namespace,
        )
        placed.region, placed.endpoint, placed.api_flavor = account.location, step.endpoint, step.api_flavor
        placed.deployment_name, placed.resource_id = name, snapshot.resource_id
        placed.model_name, placed.model_format = snapshot.model_name, snapshot.model_format
        placed.model_version, placed.sku_name, placed.capacity = (
            snapshot.model_version,
            snapshot.sku_name,
            snapshot.capacity,
        )
        placed.provisioning_state = snapshot.provisioning_state
        placed.capabilities = dict(step.offer.capabilities)
        outcome.conditions.append(
            ConditionUpdate(
                DEPLOYED,
                True,
                "Succeeded",
                f"{name} ({snapshot.model_name} {snapshot.model_version}, "
                f"{snapshot.sku_name} {snapshot.capacity}) on {account.account_name}",
            )
        )
        previous = typed_status(status)
        self._retirement(step.offer, self.clock(), previous, outcome)
        coords = coordinates[account.arm_id.lower()]
        # Before the keys are published: who of spec.consumers cannot call the model there.
        outcome.conditions.append(await review_access(self.azure, coords, spec, obj.owner, status, outcome))
        entry = PublishedEntry(
            owner=obj.owner,
            created=obj.created,
            keys=step.keys,
            endpoint=step.endpoint or "",
            api_flavor=step.api_flavor,
            deployment_name=name,
            model_name=snapshot.model_name,
            model_version=snapshot.model_version,
            model_format=snapshot.model_format,
            sku_name=snapshot.sku_name or "",
            capacity=snapshot.capacity,
            account=account.account_name,
            region=account.location or "",
            capabilities=step.offer.capabilities,
            retirement_date=step.offer.retirement_date.date().isoformat()
            if step.offer.retirement_date
            else None,
        )
        await self._publish(obj, spec, previous, entry, world, outcome)
        return True

    async def _deploy(
        self, coords: AccountCoordinates, step: Deploy, obj: ObjectRef, outcome: DeploymentOutcome
    ) -> DeploymentSnapshot | None:
        """Create or update the Azure deployment (the LRO waited out). None: the outcome says why not."""
        desired, existing, account = step.desired, step.existing, step.account
        changes = ["new"] if existing is None else desired.differs_from(existing)
        try:
            snapshot = await self.azure.put_deployment(coords, desired, account.location)
        except HttpResponseError as exc:
            error = classify(exc, replacement=step.replacement)
            if error.transient:
                raise
            message = f"Azure refused {desired.name} on {account.account_name}: {error.reason}: {error_message(exc)}"
            refused = replace(error, message=message)
            failed(
                outcome,
                refused,
                self.settings.transient_retry_seconds,
                ConditionUpdate(DEPLOYED, False, error.reason, refused.text),
            )
            outcome.status.failed_generation = obj.generation
            return None
        verb = "Created" if existing is None else "Updated"
        detail = "" if existing is None else f" ({', '.join(changes) or 'refreshed'})"
        outcome.note(
            verb,
            f"{verb.lower()} Azure deployment {desired.name} on {account.account_name} "
            f"in {account.location}{detail}",
        )
        return snapshot
