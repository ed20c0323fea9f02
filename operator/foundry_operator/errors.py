"""One error classifier: every failure the reconcilers meet is either transient (it passes by
itself: retried with a backoff factor) or terminal (nothing changes until the spec, a Secret or
Azure does: the fix is named, and no hot retry follows).

Azure Service Operator's model. Every place that catches an error asks `classify`, so a failure
gets the same reason, message and retry whether it came from a change, a resync, a drift check,
the finalizer or a FoundryAccount.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from kubernetes.client.exceptions import ApiException

from foundry_operator.azure.arm import is_validation_error
from foundry_operator.azure.writes import ConflictPersists, error_code, error_message


class PrincipalUnavailable(Exception):
    """The Secret named by spec.credentials.secretRef cannot be used; the message says why and the fix."""


class AzureTransient(Exception):
    """Azure or an account cannot be used for a passing reason (an account not Ready yet); retry later."""


# What `classify` understands; anything else is a bug and propagates (kopf logs it and retries).
CLASSIFIED: tuple[type[BaseException], ...] = (
    AzureError,
    ConflictPersists,
    ApiException,
    PrincipalUnavailable,
    AzureTransient,
    OSError,
    asyncio.TimeoutError,
)

# Azure error codes that refuse the request as such: asking again changes nothing until the spec does.
_TERMINAL_CODES = {
    "ServiceModelDeprecating": "change spec.model{replacement}",
    "ServiceModelDeprecated": "change spec.model{replacement}",
    "InsufficientQuota": "lower spec.sku.capacity, or request more quota for the region",
    "CannotChangeDeploymentModel": "set spec.deploymentName to a new name",
    "InvalidCapacity": "set spec.sku.capacity within the range Azure's message gives",
    "LocationNotAvailableForResourceType": "set spec.location to one of the regions Azure lists",
    "CustomDomainInUse": "set spec.customSubDomainName to a subdomain no other account uses",
}
_CALLER_FIXES = {
    "AuthorizationFailed": "give {identity} a role on the account (see docs/install.md)",
    "InvalidAuthenticationTokenTenant": "check {identity}: its tenant must own spec.subscriptionId",
}
DEPLOYMENT_FIX = "change spec.model or spec.sku as Azure's message says"
# Slow down on what needs a person (credentials, roles): a retry every few seconds only adds noise.
SLOW = 4.0


@dataclass(frozen=True)
class Classified:
    reason: str  # the condition reason: Azure's error code, or one of ours
    message: str
    transient: bool  # passes by itself (Reconciling) or needs a change (Stalled)
    retry_factor: float | None = 1.0  # x the transient retry delay; None: at the next resync only
    fix: str | None = None

    @property
    def text(self) -> str:
        return self.message + (f" (fix: {self.fix})" if self.fix else "")


def first_line(exc: BaseException, limit: int = 500) -> str:
    """Exceptions from azure-identity can be long; their first line says what failed (never a secret)."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def classify(
    exc: BaseException,
    *,
    identity: str = "",
    replacement: str | None = None,
    default_fix: str | None = DEPLOYMENT_FIX,
) -> Classified:
    """Transient with a backoff factor, or terminal with the fix. `identity` names who spoke to Azure,
    `replacement` the catalog's replacement model, `default_fix` the fix for Azure's other refusals."""
    if isinstance(exc, PrincipalUnavailable):
        # The user must act (create or grant the Secret), but it is looked at again: Secrets are not watched.
        return Classified("CredentialsUnavailable", str(exc), transient=False, retry_factor=SLOW)
    if isinstance(exc, AzureTransient):
        return Classified("AzureUnavailable", str(exc), transient=True)
    if isinstance(exc, ConflictPersists):
        message = (
            f"RequestConflict: {first_line(exc)} (another writer, not this operator, keeps the Azure "
            "account busy; retrying with backoff)"
        )
        return Classified("AccountBusy", message, transient=True)
    if isinstance(exc, ClientAuthenticationError):
        fix = f"check {identity}" if identity else None
        return Classified("AzureAuthenticationFailed", first_line(exc), True, SLOW, fix)
    if isinstance(exc, HttpResponseError):
        return _http(exc, identity, replacement, default_fix)
    if isinstance(exc, ApiException):
        factor = SLOW if exc.status in (401, 403) else 1.0
        return Classified(
            "KubernetesUnavailable", f"Kubernetes API: HTTP {exc.status} {exc.reason}", True, factor
        )
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, OSError, asyncio.TimeoutError)):
        return Classified("AzureUnavailable", f"Azure did not answer: {first_line(exc)}", transient=True)
    if isinstance(exc, AzureError):
        return Classified("AzureUnavailable", f"Azure: {first_line(exc)}", transient=True)
    raise TypeError(f"unclassified error {type(exc).__name__}") from exc


def _http(
    exc: HttpResponseError, identity: str, replacement: str | None, default_fix: str | None
) -> Classified:
    status = exc.status_code or 0
    code = error_code(exc) or f"HTTP{status}"
    message = f"Azure: {error_message(exc)}"
    if code in _TERMINAL_CODES or is_validation_error(exc):
        # Azure refused the request as such: asking again changes nothing until the spec does.
        template = _TERMINAL_CODES.get(code, default_fix)
        suffix = f" to the catalog's replacement, {replacement}" if replacement else ""
        fix = template.format(replacement=suffix) if template else None
        return Classified(code, message, transient=False, retry_factor=None, fix=fix)
    if status in (401, 403):
        template = _CALLER_FIXES.get(code)
        fix = template.format(identity=identity or "the identity used") if template else None
        return Classified(code, message, transient=True, retry_factor=SLOW, fix=fix)
    # Throttling, conflicts, 5xx, and a 404 of something that moved under us: it passes.
    return Classified(code, message, transient=True)
