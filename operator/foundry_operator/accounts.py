"""FoundryAccount reconciliation: read (Adopt) or create (Managed) the Azure account, report it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubernetes.client.exceptions import ApiException

from foundry_operator.api.models import CredentialSource, FoundryAccountSpec, FoundryAccountStatus, Management
from foundry_operator.azure.arm import AccountCoordinates, AzureGateway
from foundry_operator.azure.credentials import CredentialError, ServicePrincipal
from foundry_operator.conditions import READY, RECONCILING, STALLED, ConditionUpdate
from foundry_operator.errors import CLASSIFIED, SLOW, Classified, PrincipalUnavailable, classify
from foundry_operator.kube import read_principal
from foundry_operator.outcome import AccountOutcome, Outcome, failed

if TYPE_CHECKING:
    from foundry_operator.kube import KubeCore


async def resolve_principal(
    core: KubeCore, namespace: str, spec: FoundryAccountSpec
) -> ServicePrincipal | None:
    if spec.credentials.source != CredentialSource.SECRET or spec.credentials.secret_ref is None:
        return None
    secret_name = spec.credentials.secret_ref.name
    try:
        return await read_principal(core, namespace, secret_name)
    except ApiException as exc:
        if exc.status == 404:
            raise PrincipalUnavailable(
                f"Secret {namespace}/{secret_name} (spec.credentials.secretRef.name) does not exist"
            ) from exc
        if exc.status == 403:
            # The chart grants Secret reads only in the namespaces it lists (least privilege).
            raise PrincipalUnavailable(
                f"the operator may not read Secret {namespace}/{secret_name} (spec.credentials.secretRef.name): "
                f"add {namespace} to the chart's rbac.secretNamespaces (helm upgrade ... "
                f"--set 'rbac.secretNamespaces={{{namespace}}}', keeping the namespaces already listed), "
                "or use the operator's own identity (workload identity) for this account"
            ) from exc
        raise PrincipalUnavailable(
            f"Secret {namespace}/{secret_name} cannot be read: HTTP {exc.status}"
        ) from exc
    except CredentialError as exc:
        raise PrincipalUnavailable(str(exc)) from exc


def _not_ready(outcome: AccountOutcome, error: Classified, retry_seconds: float) -> AccountOutcome:
    failed(outcome, error, retry_seconds)
    if error.transient:
        outcome.warn(error.reason, error.text)  # an account problem is worth an Event even when it passes
    return outcome


async def reconcile_account(
    azure: AzureGateway, core: KubeCore, namespace: str, spec: FoundryAccountSpec, retry_seconds: float
) -> tuple[Outcome, AccountCoordinates | None]:
    outcome: AccountOutcome = Outcome(FoundryAccountStatus())
    try:
        principal = await resolve_principal(core, namespace, spec)
    except PrincipalUnavailable as exc:
        return _not_ready(outcome, classify(exc), retry_seconds), None
    coords = AccountCoordinates(spec.subscription_id, spec.resource_group, spec.account_name, principal)
    try:
        snapshot = await azure.get_account(coords)
        if snapshot is None and spec.management == Management.MANAGED:
            assert spec.location is not None  # the CRD's CEL rule guarantees it
            snapshot = await azure.create_account(
                coords,
                spec.location,
                spec.kind.value,
                spec.sku,
                spec.custom_sub_domain_name or spec.account_name,
            )
            outcome.note("AccountCreated", f"created Azure account {spec.account_name} in {spec.location}")
    except CLASSIFIED as exc:
        error = classify(exc, identity=_identity(namespace, spec), default_fix=None)
        return _not_ready(outcome, error, retry_seconds), coords
    if snapshot is None:
        message = (
            f"Azure account {spec.account_name} not found in resource group {spec.resource_group} of subscription "
            f"{spec.subscription_id}: check spec.accountName, spec.resourceGroup and spec.subscriptionId, or set "
            "spec.management: Managed with spec.location to have the operator create it"
        )
        error = Classified("AccountNotFound", message, transient=False, retry_factor=SLOW)
        return _not_ready(outcome, error, retry_seconds), coords
    status = outcome.status
    status.resource_id, status.location, status.kind = snapshot.resource_id, snapshot.location, snapshot.kind
    status.endpoint, status.endpoints = snapshot.endpoint, dict(snapshot.endpoints)
    status.provisioning_state = snapshot.provisioning_state
    state = (snapshot.provisioning_state or "Succeeded").lower()
    if state != "succeeded":
        reason = "AccountFailed" if state == "failed" else "AccountProvisioning"
        message = f"provisioningState is {snapshot.provisioning_state}"
        return _not_ready(
            outcome, Classified(reason, message, transient=state != "failed"), retry_seconds
        ), coords
    message = f"{spec.account_name} ({snapshot.kind}) in {snapshot.location}"
    outcome.conditions += [
        ConditionUpdate(READY, True, "AccountReady", message),
        ConditionUpdate(STALLED, False, "AccountReady"),
        ConditionUpdate(RECONCILING, False, "AccountReady"),
    ]
    return outcome, coords


def _identity(namespace: str, spec: FoundryAccountSpec) -> str:
    """The identity that speaks for this account, named for a message (never its secret)."""
    if spec.credentials.source == CredentialSource.SECRET and spec.credentials.secret_ref is not None:
        return f"the service principal in Secret {namespace}/{spec.credentials.secret_ref.name} (spec.credentials.secretRef)"
    return "the operator's own identity (workload identity, or AZURE_CLIENT_ID and AZURE_CLIENT_SECRET)"
