"""Kubernetes API errors as the real kube-apiserver renders them (``kind: Status`` bodies).

Part of the Kubernetes API emulator (see :mod:`foundry_emulator.kube`). Every failure the
emulator can produce is an :class:`ApiError`; its :meth:`ApiError.status` is the exact JSON the
real API server sends (``k8s.io/apimachinery/pkg/api/errors``): ``apiVersion: v1``,
``kind: Status``, ``status: Failure``, ``code``, ``reason``, ``message`` and ``details``. Clients
(the ``kubernetes`` client, kopf, kubectl) switch on ``reason`` and ``code``, and the operator's
own error handling is tested against these shapes, so the messages follow the Go formatting
character for character where it is known.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

# The message the real storage layer uses for resourceVersion precondition failures
# (k8s.io/apiserver/pkg/registry/generic/registry.OptimisticLockErrorMsg).
OPTIMISTIC_LOCK_MESSAGE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)

# field.ErrorType -> its human string (k8s.io/apimachinery/pkg/util/validation/field/errors.go).
FIELD_ERROR_TYPES: dict[str, str] = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "InternalError": "Internal error",
    "FieldValueTypeInvalid": "Invalid value",
}
# Types whose ErrorBody() never prints the bad value.
_VALUELESS_TYPES = {"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong", "InternalError"}


class ApiError(Exception):
    """One failed API call: HTTP code plus the ``Status`` body the real server would send."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.headers: dict[str, str] = dict(headers or {})

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _details(name: str | None, group: str, kind: str, **extra: Any) -> dict[str, Any]:
    # StatusDetails omits empty fields (`json:",omitempty"`), e.g. no "group" for the core group.
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = kind
    details.update(extra)
    return details


def qualified(group: str, resource: str) -> str:
    """``schema.GroupResource.String()``: ``configmaps`` or ``foundrydeployments.foundry.llmops.io``."""
    return f"{resource}.{group}" if group else resource


def not_found(group: str, resource: str, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{qualified(group, resource)} "{name}" not found', _details(name, group, resource)
    )


def not_found_generic() -> ApiError:
    # What the API server says for URLs it does not serve (unknown group/version/resource/subresource).
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(group: str, resource: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified(group, resource)} "{name}" already exists',
        _details(name, group, resource),
    )


def conflict(group: str, resource: str, name: str, why: str = OPTIMISTIC_LOCK_MESSAGE) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(group, resource)} "{name}": {why}',
        _details(name, group, resource),
    )


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message, {})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message, {})


def method_not_allowed() -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {}
    )


def unsupported_media_type(content_type: str, accepted: Iterable[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}",
        {},
    )


def internal_error(message: str) -> ApiError:
    return ApiError(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        {"causes": [{"message": message}]},
    )


def too_many_requests(retry_after: int = 1) -> ApiError:
    return ApiError(
        429,
        "TooManyRequests",
        "the server has received too many requests and has asked us to try again later",
        {"retryAfterSeconds": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def service_unavailable() -> ApiError:
    return ApiError(503, "ServiceUnavailable", "the server is currently unable to handle the request", {})


def forbidden(
    user: str,
    verb: str,
    group: str,
    resource: str,
    subresource: str | None,
    namespace: str | None,
    name: str | None,
) -> ApiError:
    """The RBAC authorizer's refusal (``authorizer.go`` + ``errors.NewForbidden``)."""
    full = f"{resource}/{subresource}" if subresource else resource
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    why = f'User "{user}" cannot {verb} resource "{full}" in API group "{group}" {where}'
    subject = f'{qualified(group, resource)} "{name}"' if name else qualified(group, resource)
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {why}", _details(name, group, resource))


def forbidden_message(group: str, resource: str, name: str | None, why: str) -> ApiError:
    subject = f'{qualified(group, resource)} "{name}"' if name else qualified(group, resource)
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {why}", _details(name, group, resource))


def _go_value(value: Any) -> str:
    # ErrorBody() prints strings %q-quoted, numbers/bools bare, and anything else as JSON-ish.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if value is None:
        return "null"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def field_error(
    field: str, reason: str = "FieldValueInvalid", *, value: Any = ..., detail: str = ""
) -> dict[str, str]:
    """Build one cause like ``field.Invalid(path, value, detail)``: ``{reason, message, field}``.

    The message is Go's ``ErrorBody()``: ``Invalid value: 0: must be positive``,
    ``Required value``, ``Unsupported value: "x": supported values: "a", "b"``.
    """
    text = FIELD_ERROR_TYPES.get(reason, "Invalid value")
    if reason not in _VALUELESS_TYPES and value is not ...:
        text = f"{text}: {_go_value(value)}"
    if detail:
        text = f"{text}: {detail}"
    return {"reason": reason, "message": text, "field": field}


def normalize_cause(error: Any) -> dict[str, str]:
    """Accept a FieldError-like thing: a mapping or an object with ``field``/``message``/``reason``.

    Recognised keys/attributes: ``field`` (required), ``reason`` or ``type`` (default
    ``FieldValueInvalid``), and either ``message`` (the ErrorBody, used verbatim) or
    ``value``/``detail`` (formatted like Go does).
    """

    def get(key: str, default: Any = None) -> Any:
        if isinstance(error, Mapping):
            return error.get(key, default)
        return getattr(error, key, default)

    field = str(get("field", "") or "")
    reason = str(get("reason") or get("type") or "FieldValueInvalid")
    message = get("message")
    if message is None:
        return field_error(field, reason, value=get("value", ...), detail=str(get("detail", "") or ""))
    return {"reason": reason, "message": str(message), "field": field}


def invalid(group: str, kind: str, name: str, causes: Iterable[Any]) -> ApiError:
    """``errors.NewInvalid``: 422 with ``Kind.group "name" is invalid: field: body[, ...]``."""
    normalized = [normalize_cause(cause) for cause in causes]
    texts = [f"{c['field']}: {c['message']}" if c["field"] else c["message"] for c in normalized]
    qualified_kind = f"{kind}.{group}" if group else kind
    if not texts:
        message = f'{qualified_kind} "{name}" is invalid'
    elif len(texts) == 1:
        message = f'{qualified_kind} "{name}" is invalid: {texts[0]}'
    else:
        message = f'{qualified_kind} "{name}" is invalid: [{", ".join(texts)}]'
    return ApiError(422, "Invalid", message, _details(name, group, kind, causes=normalized))


def unprocessable_patch(message: str) -> ApiError:
    """What a JSON patch that cannot be applied (failed ``test`` op, bad path) gets: 422.

    The real server wraps the patch library's error with ``NewGenericServerResponse(422, ...)``.
    kopf relies on exactly this code to detect that its ``test /metadata/resourceVersion``
    precondition failed and to retry on the next cycle.
    """
    return ApiError(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
        {"causes": [{"reason": "UnexpectedServerResponse", "message": message}]},
    )
