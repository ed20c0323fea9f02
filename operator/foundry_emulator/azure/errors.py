"""ARM errors with the codes and message formats Azure really returns.

Each constructor names the situation; the text is Azure's, so that the operator's conditions and
logs read exactly as they would against the real service.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web


class ArmError(Exception):
    """An error response in ARM's shape: ``{"error": {"code": ..., "message": ...}}``."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}

    def response(self, headers: dict[str, str] | None = None) -> web.Response:
        all_headers = dict(headers or {})
        if self.retry_after is not None:
            all_headers["Retry-After"] = str(self.retry_after)
        return web.json_response(self.body(), status=self.status, headers=all_headers)


def subscription_not_found(subscription: str) -> ArmError:
    return ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")


def resource_group_not_found(group: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")


def resource_not_found(resource_type: str, name: str, group: str) -> ArmError:
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name}' under resource group '{group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def account_not_found(name: str, group: str) -> ArmError:
    return resource_not_found("Microsoft.CognitiveServices/accounts", name, group)


def deployment_not_found(name: str) -> ArmError:
    return ArmError(404, "DeploymentNotFound", f"Deployment '{name}' could not be found.")


def operation_not_found(operation_id: str) -> ArmError:
    return ArmError(404, "NotFound", f"The operation '{operation_id}' could not be found.")


def request_conflict(account_id: str) -> ArmError:
    return ArmError(
        409,
        "RequestConflict",
        f"Another operation is being performed on the parent resource '{account_id}'. Please try again later.",
    )


def sku_not_supported(sku: str, model: str, version: str | None, region: str) -> ArmError:
    described = f"{model} {version}" if version else model
    return ArmError(
        400,
        "InvalidResourceProperties",
        f"The specified SKU '{sku}' for model '{described}' is not supported in this region '{region}'.",
    )


def model_not_in_region(model: str, region: str) -> ArmError:
    # Without a version Azure cannot resolve a default one; it names the model and the region.
    return ArmError(
        400,
        "InvalidResourceProperties",
        f"The specified model '{model}' is not supported in this region '{region}'.",
    )


def invalid_capacity(
    capacity: int, sku: str, model: str, version: str, low: int, high: int, step: int
) -> ArmError:
    return ArmError(
        400,
        "InvalidResourceProperties",
        f"The capacity '{capacity}' of account deployment is not valid for SKU '{sku}' of model "
        f"'{model} {version}'. The capacity should be between {low} and {high} and a multiple of {step}.",
    )


def model_deprecated(fmt: str, model: str, version: str, since: str) -> ArmError:
    return ArmError(
        400,
        "ServiceModelDeprecated",
        f"The model 'Format:{fmt},Name:{model},Version:{version}' has been deprecated since {since}.",
    )


def model_deprecating(fmt: str, model: str, version: str) -> ArmError:
    return ArmError(
        400,
        "ServiceModelDeprecating",
        f"The model 'Format:{fmt},Name:{model},Version:{version}' is in deprecating state "
        "and cannot be used for new deployments.",
    )


def cannot_change_model() -> ArmError:
    return ArmError(400, "CannotChangeDeploymentModel", "The model of deployment cannot be changed.")


def insufficient_quota(required: int, quota: str, available: int, usage: int, limit: int) -> ArmError:
    return ArmError(
        400,
        "InsufficientQuota",
        f"This operation require {required} new capacity in quota {quota}, which is bigger than the current "
        f"available capacity {available}. The current quota usage is {usage} and the quota limit is {limit} "
        f"for quota {quota}.",
    )


def invalid_properties(message: str) -> ArmError:
    return ArmError(400, "InvalidResourceProperties", message)


def invalid_request_content(detail: str) -> ArmError:
    return ArmError(
        400,
        "InvalidRequestContent",
        f"The request content was invalid and could not be deserialized: {detail}",
    )


def location_not_available(location: str, available: list[str]) -> ArmError:
    return ArmError(
        400,
        "LocationNotAvailableForResourceType",
        f"The provided location '{location}' is not available for resource type "
        f"'Microsoft.CognitiveServices/accounts'. List of available regions for the resource type is "
        f"'{','.join(available)}'.",
    )


def custom_domain_in_use(subdomain: str) -> ArmError:
    return ArmError(
        400,
        "CustomDomainInUse",
        f"The subdomain name '{subdomain}' is not available as it's already used by a resource.",
    )


def account_property_immutable(name: str) -> ArmError:
    return ArmError(
        409,
        "Conflict",
        f"The '{name}' of an existing account cannot be changed. Delete and recreate the account.",
    )


def missing_api_version() -> ArmError:
    return ArmError(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )


def authorization_failed(client_id: str, object_id: str, action: str, scope: str) -> ArmError:
    return ArmError(
        403,
        "AuthorizationFailed",
        f"The client '{client_id}' with object id '{object_id}' does not have authorization to perform action "
        f"'{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please "
        "refresh your credentials.",
    )


def throttled(kind: str, subscription: str, actor: str, retry_after: int) -> ArmError:
    return ArmError(
        429,
        "SubscriptionRequestsThrottled",
        f"Number of '{kind}' requests for subscription '{subscription}' actor '{actor}' exceeded. Please try "
        f"again after '{retry_after}' seconds after additional tokens are available. Refer to "
        "https://aka.ms/arm-throttling for additional information.",
        retry_after=retry_after,
    )


def invalid_resource_type(path: str, api_version: str) -> ArmError:
    return ArmError(
        404,
        "InvalidResourceType",
        f"The resource type could not be found in the namespace 'Microsoft.CognitiveServices' for api "
        f"version '{api_version}' (path '{path}').",
    )


def method_not_allowed(method: str) -> ArmError:
    return ArmError(
        405, "MethodNotAllowed", f"The requested resource does not support http method '{method}'."
    )


def provider_not_registered(namespace: str) -> ArmError:
    return ArmError(
        409,
        "MissingSubscriptionRegistration",
        f"The subscription is not registered to use namespace '{namespace}'. See https://aka.ms/rps-not-found "
        "for how to register subscriptions.",
    )
