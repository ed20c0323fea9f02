"""ARM routes of Microsoft.CognitiveServices.

One handler receives every ``/subscriptions/...`` request and runs ARM's pipeline in ARM's order:
authenticate the bearer token, throttle, require an api-version, route (path segments are matched
case-insensitively, as ARM does), check the subscription and the principal's role scopes, and only
then call the resource provider (the state). Route handlers are thin: parse, one state call, render.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from . import errors, wire
from .entra import Entra, base_url
from .errors import ArmError
from .pipeline import arm_pipeline
from .requestlog import FAIL_OPERATION
from .state import Caller, EmulatorState, Operation
from .throttling import Throttler


@dataclass(frozen=True)
class Ctx:
    request: web.Request
    params: dict[str, str]
    caller: Caller
    api_version: str
    base: str

    @property
    def fail_with(self) -> ArmError | None:
        """Set by the fault middleware: accept this write, then fail its operation."""
        return self.request.get(FAIL_OPERATION)

    async def body(self) -> dict[str, Any]:
        raw = await self.request.read()
        if not raw.strip():
            return {}
        try:
            parsed = json.loads(raw)
        except ValueError as err:
            raise errors.invalid_request_content(str(err)) from err
        if not isinstance(parsed, dict):
            raise errors.invalid_request_content("the request body must be a JSON object")
        return parsed


Handler = Callable[[Ctx], Awaitable[web.Response]]

_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_PROV = r"/providers/Microsoft\.CognitiveServices"
_RG = _SUB + r"/resourceGroups/(?P<rg>[^/]+)"
_ACCOUNT = _RG + _PROV + r"/accounts/(?P<account>[^/]+)"
_LOCATION = _SUB + _PROV + r"/locations/(?P<location>[^/]+)"
_ACTION = "Microsoft.CognitiveServices/"


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    methods: dict[str, tuple[Handler, str]]  # method -> (handler, RBAC action)
    authorize: bool = True  # operation-status polling is not subject to RBAC


class Arm:
    def __init__(self, state: EmulatorState, entra: Entra, throttler: Throttler) -> None:
        self._state = state
        self._entra = entra
        self._throttler = throttler
        self._routes = self._build_routes()

    async def handle(self, request: web.Request) -> web.Response:
        base = base_url(request)

        def challenge(err: ArmError) -> str:
            return (
                f'Bearer authorization_uri="{base}/{self._state.tenant_id}", error="invalid_token", '
                f'error_description="{err.message}"'
            )

        async def route(caller: Caller) -> web.Response:
            api_version = str(request.query.get("api-version"))
            route, params, (handler, action) = self._match(request.method, request.path, api_version)
            if params["sub"].lower() != self._state.subscription_id.lower():
                raise errors.subscription_not_found(params["sub"])
            if route.authorize:
                self._authorize(caller, action, _scope_of(params))
            return await handler(Ctx(request, params, caller, api_version, base))

        return await arm_pipeline(
            request, self._entra, self._throttler, self._state.subscription_id, challenge, route
        )

    # -- pipeline steps ---------------------------------------------------------------------

    def _match(
        self, method: str, path: str, api_version: str
    ) -> tuple[Route, dict[str, str], tuple[Handler, str]]:
        trimmed = path.rstrip("/")
        for route in self._routes:
            found = route.pattern.fullmatch(trimmed)
            if found is None:
                continue
            target = route.methods.get(method)
            if target is None:
                raise errors.method_not_allowed(method)
            return route, {k: v for k, v in found.groupdict().items() if v is not None}, target
        namespace = re.search(r"/providers/([^/]+)", trimmed)
        if namespace is not None and namespace.group(1).lower() != "microsoft.cognitiveservices":
            raise errors.provider_not_registered(namespace.group(1))
        raise errors.invalid_resource_type(path, api_version)

    def _authorize(self, caller: Caller, action: str, scope: str) -> None:
        principal = next(
            (p for p in self._state.scenario.principals if p.clientId.lower() == caller.client_id.lower()),
            None,
        )
        if principal is None:  # a token of a principal a newer scenario no longer has
            raise errors.authorization_failed(caller.client_id, caller.object_id, action, scope)
        if principal.scopes is None:
            return  # a role on the whole subscription
        wanted = scope.lower()
        for allowed in principal.scopes:
            prefix = allowed.rstrip("/").lower()
            if wanted == prefix or wanted.startswith(prefix + "/"):
                return
        raise errors.authorization_failed(caller.client_id, caller.object_id, action, scope)

    # -- accounts ---------------------------------------------------------------------------

    async def _list_accounts(self, ctx: Ctx) -> web.Response:
        accounts = self._state.list_accounts(ctx.params.get("rg"))
        return self._paged(ctx, [wire.account(self._state, a) for a in accounts])

    async def _get_account(self, ctx: Ctx) -> web.Response:
        account = self._state.get_account(ctx.params["rg"], ctx.params["account"])
        return web.json_response(wire.account(self._state, account))

    async def _put_account(self, ctx: Ctx) -> web.Response:
        account, op, created = self._state.put_account(
            ctx.params["rg"], ctx.params["account"], await ctx.body(), ctx.caller, ctx.fail_with
        )
        return web.json_response(
            wire.account(self._state, account),
            status=201 if created else 200,
            headers=self._lro_headers(ctx, op),
        )

    async def _patch_account(self, ctx: Ctx) -> web.Response:
        account = self._state.patch_account(
            ctx.params["rg"], ctx.params["account"], await ctx.body(), ctx.caller
        )
        return web.json_response(wire.account(self._state, account))

    async def _delete_account(self, ctx: Ctx) -> web.Response:
        op = self._state.delete_account(ctx.params["rg"], ctx.params["account"], ctx.fail_with)
        if op is None:
            return web.Response(status=204)
        return web.Response(status=202, headers=self._lro_headers(ctx, op))

    async def _list_keys(self, ctx: Ctx) -> web.Response:
        key1, key2 = self._state.list_keys(ctx.params["rg"], ctx.params["account"])
        return web.json_response({"key1": key1, "key2": key2})

    async def _account_models(self, ctx: Ctx) -> web.Response:
        offerings = self._state.account_models(ctx.params["rg"], ctx.params["account"])
        return self._paged(ctx, [wire.catalog_model(o) for o in offerings])

    # -- deployments ------------------------------------------------------------------------

    async def _list_deployments(self, ctx: Ctx) -> web.Response:
        account = self._state.get_account(ctx.params["rg"], ctx.params["account"])
        return self._paged(
            ctx, [wire.deployment(self._state, account, d) for d in account.deployments.values()]
        )

    async def _get_deployment(self, ctx: Ctx) -> web.Response:
        p = ctx.params
        deployment = self._state.get_deployment(p["rg"], p["account"], p["deployment"])
        account = self._state.get_account(p["rg"], p["account"])
        return web.json_response(wire.deployment(self._state, account, deployment))

    async def _put_deployment(self, ctx: Ctx) -> web.Response:
        p = ctx.params
        deployment, op, created = self._state.put_deployment(
            p["rg"], p["account"], p["deployment"], await ctx.body(), ctx.caller, ctx.fail_with
        )
        account = self._state.get_account(p["rg"], p["account"])
        return web.json_response(
            wire.deployment(self._state, account, deployment),
            status=201 if created else 200,
            headers=self._lro_headers(ctx, op),
        )

    async def _patch_deployment(self, ctx: Ctx) -> web.Response:
        p = ctx.params
        deployment, op = self._state.update_deployment(
            p["rg"], p["account"], p["deployment"], await ctx.body(), ctx.caller, ctx.fail_with
        )
        account = self._state.get_account(p["rg"], p["account"])
        # The SDK's update poller takes its final result from the Location URL (final-state-via: location).
        return web.json_response(
            wire.deployment(self._state, account, deployment), status=202, headers=self._lro_headers(ctx, op)
        )

    async def _delete_deployment(self, ctx: Ctx) -> web.Response:
        p = ctx.params
        op = self._state.delete_deployment(p["rg"], p["account"], p["deployment"], ctx.fail_with)
        if op is None:
            return web.Response(status=204)
        return web.Response(status=202, headers=self._lro_headers(ctx, op))

    # -- subscription-level catalog and quota -------------------------------------------------

    async def _location_models(self, ctx: Ctx) -> web.Response:
        return self._paged(ctx, wire.location_models(self._state.location_models(ctx.params["location"])))

    async def _model_capacities(self, ctx: Ctx) -> web.Response:
        query = ctx.request.query
        missing = [k for k in ("modelFormat", "modelName", "modelVersion") if not query.get(k)]
        if missing:
            raise ArmError(400, "BadRequest", f"The query parameter '{missing[0]}' is required.")
        rows = self._state.model_capacities(
            query["modelFormat"], query["modelName"], query["modelVersion"], ctx.params.get("location")
        )
        sub = self._state.subscription_id
        return self._paged(ctx, [wire.model_capacity(sub, o, sku, available) for o, sku, available in rows])

    async def _usages(self, ctx: Ctx) -> web.Response:
        location = ctx.params["location"]
        rows = [wire.usage(v) for v in self._state.usages(location)]
        rows.append(wire.account_count_usage(self._state.account_count(location)))
        return self._paged(ctx, rows)

    # -- long-running operations --------------------------------------------------------------

    def _lro_headers(self, ctx: Ctx, op: Operation) -> dict[str, str]:
        root = f"{ctx.base}/subscriptions/{self._state.subscription_id}/providers/Microsoft.CognitiveServices"
        query = f"?api-version={quote(ctx.api_version)}"
        return {
            "Azure-AsyncOperation": f"{root}/locations/{op.region}/operationStatuses/{op.id}{query}",
            "Location": f"{root}/locations/{op.region}/operationResults/{op.id}{query}",
            "Retry-After": self._retry_after(),
        }

    def _retry_after(self) -> str:
        # azure-core parses Retry-After as a float, so a sub-second poll interval works; "%g"
        # writes whole numbers without a fraction for clients that expect integer seconds.
        return f"{self._state.scenario.timing.pollSeconds:g}"

    async def _operation_status(self, ctx: Ctx) -> web.Response:
        op = self._state.get_operation(ctx.params["operation"])
        headers = {"Retry-After": self._retry_after()} if op.status == "InProgress" else {}
        return web.json_response(wire.operation_status(self._state.subscription_id, op), headers=headers)

    async def _operation_result(self, ctx: Ctx) -> web.Response:
        """The Location URL: 202 while running, then the resource (or 204 after a delete)."""
        op = self._state.get_operation(ctx.params["operation"])
        if op.status == "InProgress":
            return web.Response(
                status=202, headers={"Location": str(ctx.request.url), "Retry-After": self._retry_after()}
            )
        if op.status == "Failed" and op.fail_with is not None:
            return op.fail_with.response()
        account, deployment = self._state.operation_target(op)
        if op.action == "delete" or account is None:
            return web.Response(status=204)
        if op.deployment_key is None:
            return web.json_response(wire.account(self._state, account))
        if deployment is None:
            return web.Response(status=204)
        return web.json_response(wire.deployment(self._state, account, deployment))

    # -- helpers ----------------------------------------------------------------------------

    def _paged(self, ctx: Ctx, items: list[dict[str, Any]]) -> web.Response:
        size = self._state.scenario.pageSize
        try:
            start = max(0, int(ctx.request.query.get("$skipToken", "0")))
        except ValueError as err:
            raise ArmError(400, "InvalidSkipToken", "The skip token is not valid.") from err
        body: dict[str, Any] = {"value": items[start : start + size]}
        if start + size < len(items):
            url = ctx.request.url.update_query({"$skipToken": str(start + size)})
            body["nextLink"] = f"{ctx.base}{url.path_qs}"
        return web.json_response(body)

    def _build_routes(self) -> list[Route]:
        def route(pattern: str, methods: dict[str, tuple[Handler, str]], authorize: bool = True) -> Route:
            return Route(re.compile(pattern, re.IGNORECASE), methods, authorize)

        acct, dep = _ACTION + "accounts", _ACTION + "accounts/deployments"
        return [
            route(_SUB + _PROV + r"/accounts", {"GET": (self._list_accounts, f"{acct}/read")}),
            route(_RG + _PROV + r"/accounts", {"GET": (self._list_accounts, f"{acct}/read")}),
            route(
                _ACCOUNT,
                {
                    "GET": (self._get_account, f"{acct}/read"),
                    "PUT": (self._put_account, f"{acct}/write"),
                    "PATCH": (self._patch_account, f"{acct}/write"),
                    "DELETE": (self._delete_account, f"{acct}/delete"),
                },
            ),
            route(_ACCOUNT + r"/listKeys", {"POST": (self._list_keys, f"{acct}/listKeys/action")}),
            route(_ACCOUNT + r"/models", {"GET": (self._account_models, f"{acct}/models/read")}),
            route(_ACCOUNT + r"/deployments", {"GET": (self._list_deployments, f"{dep}/read")}),
            route(
                _ACCOUNT + r"/deployments/(?P<deployment>[^/]+)",
                {
                    "GET": (self._get_deployment, f"{dep}/read"),
                    "PUT": (self._put_deployment, f"{dep}/write"),
                    "PATCH": (self._patch_deployment, f"{dep}/write"),
                    "DELETE": (self._delete_deployment, f"{dep}/delete"),
                },
            ),
            route(
                _LOCATION + r"/models", {"GET": (self._location_models, _ACTION + "locations/models/read")}
            ),
            route(
                _LOCATION + r"/modelCapacities",
                {"GET": (self._model_capacities, _ACTION + "locations/modelCapacities/read")},
            ),
            route(
                _SUB + _PROV + r"/modelCapacities",
                {"GET": (self._model_capacities, _ACTION + "modelCapacities/read")},
            ),
            route(_LOCATION + r"/usages", {"GET": (self._usages, _ACTION + "locations/usages/read")}),
            route(
                _LOCATION + r"/operationStatuses/(?P<operation>[^/]+)",
                {"GET": (self._operation_status, _ACTION + "locations/operationStatuses/read")},
                authorize=False,
            ),
            route(
                _LOCATION + r"/operationResults/(?P<operation>[^/]+)",
                {"GET": (self._operation_result, _ACTION + "locations/operationResults/read")},
                authorize=False,
            ),
        ]


def _scope_of(params: dict[str, str]) -> str:
    """The ARM scope a request acts on, for RBAC: the resource, or its resource group, or the
    subscription for subscription-level reads (the catalog, quotas)."""
    scope = f"/subscriptions/{params['sub']}"
    if "rg" in params:
        scope += f"/resourceGroups/{params['rg']}"
    if "account" in params:
        scope += f"/providers/Microsoft.CognitiveServices/accounts/{params['account']}"
    if "deployment" in params:
        scope += f"/deployments/{params['deployment']}"
    return scope
