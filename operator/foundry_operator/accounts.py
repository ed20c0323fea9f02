"""FoundryAccount reconciliation: read (Adopt) or create (Managed) the Azure account, report it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
from kubernetes.client.exceptions import ApiException

from foundry_operator.api.models import CredentialSource, FoundryAccountSpec, Management
from foundry_operator.azure.arm import AccountCoordinates, AzureGateway
from foundry_operator.azure.credentials import CredentialError, ServicePrincipal
from foundry_operator.azure.writes import ConflictPersists, error_code, error_message
from foundry_operator.conditions import READY, RECONCILING, STALLED, ConditionUpdate
from foundry_operator.kube import read_principal
from foundry_operator.outcome import Outcome

if TYPE_CHECKING:
    from foundry_operator.kube import KubeCore


class PrincipalUnavailable(Exception):
    """The Secret named by spec.credentials.secretRef cannot be used; the message says why."""


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


def _not_ready(outcome: Outcome, reason: str, message: str, *, stalled: bool) -> Outcome:
    outcome.conditions += [
        ConditionUpdate(READY, False, reason, message),
        ConditionUpdate(STALLED, stalled, reason, message),
        ConditionUpdate(RECONCILING, not stalled, reason, message),
    ]
    outcome.warn(reason, message)
    outcome.retry_message = message
    return outcome


async def reconcile_account(
    azure: AzureGateway, core: KubeCore, namespace: str, spec: FoundryAccountSpec, retry_seconds: float
) -> tuple[Outcome, AccountCoordinates | None]:
    outcome = Outcome()
    try:
        principal = await resolve_principal(core, namespace, spec)
    except PrincipalUnavailable as exc:
        outcome.retry_after = retry_seconds * 4
        return _not_ready(outcome, "CredentialsUnavailable", str(exc), stalled=True), None
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
    except ClientAuthenticationError as exc:
        outcome.retry_after = retry_seconds * 4
        message = f"{_short(str(exc))} (fix: check {_identity(namespace, spec)})"
        return _not_ready(outcome, "AzureAuthenticationFailed", message, stalled=False), coords
    except HttpResponseError as exc:
        code = error_code(exc) or f"HTTP{exc.status_code}"
        transient = exc.status_code in (401, 403, 408, 429) or (exc.status_code or 0) >= 500
        # Azure refused the request as such (a location, a subdomain): asking again changes
        # nothing until the spec does, or until the periodic resync looks again.
        outcome.retry_after = (
            retry_seconds * (4 if exc.status_code in (401, 403) else 1) if transient else None
        )
        fix = _ACCOUNT_FIXES.get(code, "").format(identity=_identity(namespace, spec))
        message = f"Azure: {error_message(exc)}" + (f" (fix: {fix})" if fix else "")
        return _not_ready(outcome, code, message, stalled=not transient), coords
    except (ServiceRequestError, ConflictPersists, OSError) as exc:
        outcome.retry_after = retry_seconds
        return _not_ready(outcome, "AzureUnreachable", _short(str(exc)), stalled=False), coords
    if snapshot is None:
        message = (
            f"Azure account {spec.account_name} not found in resource group {spec.resource_group} of subscription "
            f"{spec.subscription_id}: check spec.accountName, spec.resourceGroup and spec.subscriptionId, or set "
            "spec.management: Managed with spec.location to have the operator create it"
        )
        outcome.retry_after = retry_seconds * 4
        return _not_ready(outcome, "AccountNotFound", message, stalled=True), coords
    outcome.status.update(
        resourceId=snapshot.resource_id,
        location=snapshot.location,
        kind=snapshot.kind,
        endpoint=snapshot.endpoint,
        endpoints=dict(snapshot.endpoints),
        provisioningState=snapshot.provisioning_state,
    )
    state = (snapshot.provisioning_state or "Succeeded").lower()
    if state != "succeeded":
        outcome.retry_after = retry_seconds
        reason = "AccountFailed" if state == "failed" else "AccountProvisioning"
        return _not_ready(
            outcome, reason, f"provisioningState is {snapshot.provisioning_state}", stalled=state == "failed"
        ), coords
    message = f"{spec.account_name} ({snapshot.kind}) in {snapshot.location}"
    outcome.conditions += [
        ConditionUpdate(READY, True, "AccountReady", message),
        ConditionUpdate(STALLED, False, "AccountReady"),
        ConditionUpdate(RECONCILING, False, "AccountReady"),
    ]
    return outcome, coords


# What to change for the Azure refusals an account meets (Azure's own message says what is wrong).
_ACCOUNT_FIXES = {
    "AuthorizationFailed": "give {identity} a role on the account (see docs/install.md)",
    "LocationNotAvailableForResourceType": "set spec.location to one of the regions Azure lists",
    "CustomDomainInUse": "set spec.customSubDomainName to a subdomain no other account uses",
    "InvalidAuthenticationTokenTenant": "check {identity}: its tenant must own spec.subscriptionId",
}


def _identity(namespace: str, spec: FoundryAccountSpec) -> str:
    """The identity that speaks for this account, named for a message (never its secret)."""
    if spec.credentials.source == CredentialSource.SECRET and spec.credentials.secret_ref is not None:
        return f"the service principal in Secret {namespace}/{spec.credentials.secret_ref.name} (spec.credentials.secretRef)"
    return "the operator's own identity (workload identity, or AZURE_CLIENT_ID and AZURE_CLIENT_SECRET)"


def _short(text: str) -> str:
    """Azure identity errors can be long; keep the first line (they never contain the secret)."""
    return text.strip().splitlines()[0][:500] if text.strip() else "unknown error"
