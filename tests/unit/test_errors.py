"""The one error classifier as a table: every failure is transient (with a backoff factor) or
terminal (with the fix), whichever handler meets it."""

from __future__ import annotations

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ODataV4Format,
    ServiceRequestError,
    ServiceResponseError,
)
from kubernetes.client.exceptions import ApiException

from foundry_operator.azure.writes import ConflictPersists
from foundry_operator.errors import CLASSIFIED, SLOW, AzureTransient, PrincipalUnavailable, classify
from foundry_operator.outcome import deployment_outcome, failed


def azure_error(status: int, code: str, message: str = "Azure says no") -> HttpResponseError:
    error = HttpResponseError(message=message)
    error.status_code = status
    error.error = ODataV4Format({"code": code, "message": message})
    return error


def kubernetes_error(status: int) -> ApiException:
    return ApiException(status=status, reason="Forbidden" if status == 403 else "Error")


CASES = [
    # (error, reason, transient, retry factor, fix contains)
    (azure_error(429, "TooManyRequests"), "TooManyRequests", True, 1.0, None),
    (azure_error(503, "ServiceUnavailable"), "ServiceUnavailable", True, 1.0, None),
    (azure_error(409, "RequestConflict"), "RequestConflict", True, 1.0, None),
    (azure_error(404, "DeploymentNotFound"), "DeploymentNotFound", True, 1.0, None),
    (azure_error(403, "AuthorizationFailed"), "AuthorizationFailed", True, SLOW, "give the operator"),
    (azure_error(401, "InvalidAuthenticationToken"), "InvalidAuthenticationToken", True, SLOW, None),
    (
        azure_error(400, "ServiceModelDeprecating"),
        "ServiceModelDeprecating",
        False,
        None,
        "change spec.model to the catalog's replacement, Kimi-K2.6",
    ),
    (azure_error(400, "InsufficientQuota"), "InsufficientQuota", False, None, "lower spec.sku.capacity"),
    (
        azure_error(400, "InvalidResourceProperties"),
        "InvalidResourceProperties",
        False,
        None,
        "change spec.model",
    ),
    (azure_error(422, "Unprocessable"), "Unprocessable", False, None, "change spec.model or spec.sku"),
    (
        ClientAuthenticationError("AADSTS7000215: Invalid client secret"),
        "AzureAuthenticationFailed",
        True,
        SLOW,
        "check",
    ),
    (ServiceRequestError("connection refused"), "AzureUnavailable", True, 1.0, None),
    (ServiceResponseError("connection reset"), "AzureUnavailable", True, 1.0, None),
    (TimeoutError(), "AzureUnavailable", True, 1.0, None),
    (OSError("network unreachable"), "AzureUnavailable", True, 1.0, None),
    (ConflictPersists("the account is busy"), "AccountBusy", True, 1.0, None),
    (AzureTransient("FoundryAccount a/b is gone"), "AzureUnavailable", True, 1.0, None),
    (PrincipalUnavailable("Secret a/sp does not exist"), "CredentialsUnavailable", False, SLOW, None),
    (kubernetes_error(503), "KubernetesUnavailable", True, 1.0, None),
    (kubernetes_error(403), "KubernetesUnavailable", True, SLOW, None),
]


@pytest.mark.parametrize(
    ("error", "reason", "is_transient", "factor", "fix"), CASES, ids=lambda v: str(v)[:40]
)
def test_every_error_is_transient_or_terminal_with_a_fix(
    error: BaseException, reason: str, is_transient: bool, factor: float | None, fix: str | None
) -> None:
    assert isinstance(error, CLASSIFIED)
    judged = classify(error, identity="the operator's own identity", replacement="Kimi-K2.6")
    assert (judged.reason, judged.transient, judged.retry_factor) == (reason, is_transient, factor)
    if fix is None:
        assert judged.fix is None or judged.transient
    else:
        assert judged.fix is not None and fix in judged.fix and f"(fix: {judged.fix})" in judged.text
    if not is_transient:
        assert judged.fix or reason == "CredentialsUnavailable"  # that message carries its own fix


def test_an_unknown_error_is_not_classified_it_is_a_bug() -> None:
    assert not isinstance(KeyError("x"), CLASSIFIED)
    with pytest.raises(TypeError):
        classify(KeyError("x"))


def test_transient_errors_retry_with_their_factor_terminal_ones_stall_without_a_hot_loop() -> None:
    busy = failed(deployment_outcome(), classify(azure_error(403, "AuthorizationFailed")), 15)
    assert busy.retry_after == 15 * SLOW
    assert {c.type: c.status for c in busy.conditions} == {
        "Ready": False,
        "Reconciling": True,
        "Stalled": False,
    }
    refused = failed(deployment_outcome(), classify(azure_error(400, "InsufficientQuota")), 15)
    assert refused.retry_after is None  # looked at again only at the resync, or when the spec changes
    assert {c.type: c.status for c in refused.conditions} == {
        "Ready": False,
        "Reconciling": False,
        "Stalled": True,
    }
    assert [e.type for e in refused.events] == ["Warning"]
    secret = failed(deployment_outcome(), classify(PrincipalUnavailable("Secret a/sp does not exist")), 15)
    assert secret.retry_after == 15 * SLOW  # Secrets are not watched: looked at again, slowly


def test_account_refusals_get_no_deployment_fix() -> None:
    judged = classify(azure_error(400, "BadRequest"), default_fix=None)
    assert not judged.transient and judged.fix is None
    located = classify(azure_error(400, "LocationNotAvailableForResourceType"), default_fix=None)
    assert located.fix == "set spec.location to one of the regions Azure lists"
