"""The admin API under ``/_emulator/`` (JSON, no authentication): what tests, the demo and the
benchmark use to look inside the emulated Azure and to change it behind the operator's back."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import wire
from .catalog import CatalogError
from .errors import ArmError
from .faults import FaultSet, FaultSpec
from .requestlog import RequestLog
from .scenario import CatalogModel, LifecycleStatus, Replacement, ScenarioError, parse_scenario
from .state import EmulatorState
from .throttling import Throttler

PREFIX = "/_emulator"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class Rollout(_Body):
    region: str
    model: str
    versions: list[str] | None = None  # None: every version of the model
    skus: list[str] | None = None  # None: every SKU
    definition: CatalogModel | None = None  # a model (or new versions) the catalog does not know yet


class Retire(_Body):
    model: str
    versions: list[str] | None = None
    inferenceDate: dt.date
    lifecycleStatus: LifecycleStatus | None = (
        None  # default: Deprecated if the date has passed, else Deprecating
    )
    replacement: Replacement | None = None


class Withdraw(_Body):
    region: str
    model: str
    versions: list[str] | None = None  # None: the whole model


class QuotaLimit(_Body):
    region: str
    usageName: str
    limit: int = Field(ge=0)


class Drift(_Body):
    capacity: int | None = Field(default=None, ge=1)
    version: str | None = None
    sku: str | None = None


class _ModelRef(_Body):
    format: str = "OpenAI"
    name: str
    version: str


class _SkuRef(_Body):
    name: str = "GlobalStandard"
    capacity: int = Field(ge=1)


class OutOfBandDeployment(_Body):
    model: _ModelRef
    sku: _SkuRef


B = TypeVar("B", bound=BaseModel)


class Admin:
    def __init__(self, state: EmulatorState, throttler: Throttler, faults: FaultSet, log: RequestLog) -> None:
        self._state = state
        self._throttler = throttler
        self._faults = faults
        self._log = log

    def add_routes(self, app: web.Application) -> None:
        deployment = PREFIX + "/deployments/{rg}/{account}/{name}"
        app.add_routes(
            [
                web.get(PREFIX + "/requests", self._requests),
                web.delete(PREFIX + "/requests", self._clear_requests),
                web.post(PREFIX + "/reset", self._reset),
                web.get(PREFIX + "/scenario", self._get_scenario),
                web.post(PREFIX + "/scenario", self._load_scenario),
                web.get(PREFIX + "/state", self._snapshot),
                web.get(PREFIX + "/faults", self._list_faults),
                web.post(PREFIX + "/faults", self._add_fault),
                web.delete(PREFIX + "/faults", self._clear_faults),
                web.get(PREFIX + "/catalog", self._catalog),
                web.post(PREFIX + "/catalog/rollout", self._rollout),
                web.post(PREFIX + "/catalog/retire", self._retire),
                web.post(PREFIX + "/catalog/withdraw", self._withdraw),
                web.put(PREFIX + "/quotas", self._set_quota),
                web.patch(deployment, self._drift_update),
                web.delete(deployment, self._drift_delete),
                web.put(deployment, self._drift_create),
            ]
        )

    # -- request log --------------------------------------------------------------------------

    async def _requests(self, request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            return _bad("since must be an integer")
        return web.json_response({"entries": self._log.since(since), "cursor": self._log.last_seq})

    async def _clear_requests(self, request: web.Request) -> web.Response:
        self._log.clear()
        return web.Response(status=204)

    # -- world ------------------------------------------------------------------------------

    async def _reset(self, request: web.Request) -> web.Response:
        """Back to the loaded scenario: world, throttling buckets and faults (not the request log)."""
        self._state.reset()
        self._throttler.configure(self._state.scenario.throttling)
        self._faults.clear()
        return web.json_response(self._state_json())

    async def _get_scenario(self, request: web.Request) -> web.Response:
        return web.json_response(self._state.scenario.model_dump(mode="json"))

    async def _load_scenario(self, request: web.Request) -> web.Response:
        try:
            scenario = parse_scenario(await request.text(), source="POST /_emulator/scenario")
        except ScenarioError as err:
            return web.json_response({"error": str(err), "issues": [vars(i) for i in err.issues]}, status=400)
        self._state.load(scenario)
        self._throttler.configure(scenario.throttling)
        self._faults.clear()
        return web.json_response(self._state_json())

    async def _snapshot(self, request: web.Request) -> web.Response:
        return web.json_response(self._state_json())

    def _state_json(self) -> dict[str, Any]:
        s = self._state
        s.settle()
        accounts = []
        for a in s.accounts.values():
            endpoint, _ = wire.endpoints(a)
            accounts.append(
                {
                    "id": a.arm_id,
                    "resourceGroup": a.resource_group,
                    "name": a.name,
                    "location": a.location,
                    "kind": a.kind,
                    "endpoint": endpoint,
                    "provisioningState": s.provisioning_state(a),
                    "deployments": [
                        {
                            "name": d.name,
                            "format": d.model_format,
                            "model": d.model_name,
                            "version": d.model_version,
                            "sku": d.sku_name,
                            "capacity": d.capacity,
                            "usageName": d.usage_name,
                            "provisioningState": s.provisioning_state(d),
                        }
                        for d in a.deployments.values()
                    ],
                }
            )
        quotas = [
            {
                "region": v.region,
                "usageName": v.usage_name,
                "localizedName": v.localized_name,
                "limit": v.limit,
                "usage": v.usage,
                "available": v.available,
            }
            for region in s.catalog.region_names()
            for v in s.usages(region)
        ]
        in_flight = [
            {"id": op.id, "action": op.action, "account": op.account_key[1], "deployment": op.deployment_key}
            for op in s.operations.values()
            if op.status == "InProgress"
        ]
        return {
            "tenantId": s.tenant_id,
            "subscriptionId": s.subscription_id,
            "accounts": accounts,
            "quotas": quotas,
            "operationsInFlight": in_flight,
        }

    # -- faults -----------------------------------------------------------------------------

    async def _list_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"faults": [f.describe() for f in self._faults.list()]})

    async def _add_fault(self, request: web.Request) -> web.Response:
        spec = await _parse(request, FaultSpec)
        if isinstance(spec, web.Response):
            return spec
        return web.json_response(self._faults.add(spec).describe(), status=201)

    async def _clear_faults(self, request: web.Request) -> web.Response:
        self._faults.clear()
        return web.Response(status=204)

    # -- catalog and quota ------------------------------------------------------------------

    async def _catalog(self, request: web.Request) -> web.Response:
        s = self._state
        return web.json_response(
            {
                region: [
                    {
                        "format": o.model.format,
                        "name": o.model.name,
                        "version": o.version.version,
                        "kinds": list(o.kinds),
                        "skus": [sku.name for sku in o.skus],
                        "isDefaultVersion": o.is_default,
                        "lifecycleStatus": o.lifecycle_status,
                    }
                    for o in s.catalog.offerings(region)
                ]
                for region in s.catalog.region_names()
            }
        )

    async def _rollout(self, request: web.Request) -> web.Response:
        body = await _parse(request, Rollout)
        if isinstance(body, web.Response):
            return body
        return await self._catalog_edit(
            request,
            lambda: self._state.rollout(body.region, body.model, body.versions, body.skus, body.definition),
        )

    async def _retire(self, request: web.Request) -> web.Response:
        body = await _parse(request, Retire)
        if isinstance(body, web.Response):
            return body
        return await self._catalog_edit(
            request,
            lambda: self._state.retire(
                body.model, body.versions, body.inferenceDate, body.lifecycleStatus, body.replacement
            ),
        )

    async def _withdraw(self, request: web.Request) -> web.Response:
        body = await _parse(request, Withdraw)
        if isinstance(body, web.Response):
            return body
        return await self._catalog_edit(
            request, lambda: self._state.withdraw(body.region, body.model, body.versions)
        )

    async def _catalog_edit(self, request: web.Request, edit: Callable[[], None]) -> web.Response:
        try:
            edit()
        except CatalogError as err:
            return _bad(str(err))
        return await self._catalog(request)

    async def _set_quota(self, request: web.Request) -> web.Response:
        body = await _parse(request, QuotaLimit)
        if isinstance(body, web.Response):
            return body
        try:
            view = self._state.set_quota(body.region, body.usageName, body.limit)
        except ValueError as err:
            return _bad(str(err))
        return web.json_response(
            {"region": view.region, "usageName": view.usage_name, "limit": view.limit, "usage": view.usage}
        )

    # -- drift ------------------------------------------------------------------------------

    async def _drift_update(self, request: web.Request) -> web.Response:
        body = await _parse(request, Drift)
        if isinstance(body, web.Response):
            return body
        m = request.match_info
        try:
            self._state.drift_update(m["rg"], m["account"], m["name"], body.capacity, body.version, body.sku)
        except ArmError as err:
            return err.response()
        return await self._deployment_json(request)

    async def _drift_delete(self, request: web.Request) -> web.Response:
        m = request.match_info
        try:
            self._state.drift_delete(m["rg"], m["account"], m["name"])
        except ArmError as err:
            return err.response()
        return web.Response(status=204)

    async def _drift_create(self, request: web.Request) -> web.Response:
        body = await _parse(request, OutOfBandDeployment)
        if isinstance(body, web.Response):
            return body
        m = request.match_info
        try:
            self._state.drift_create(
                m["rg"],
                m["account"],
                m["name"],
                body.model.format,
                body.model.name,
                body.model.version,
                body.sku.name,
                body.sku.capacity,
            )
        except ArmError as err:
            return err.response()
        return await self._deployment_json(request, status=201)

    async def _deployment_json(self, request: web.Request, status: int = 200) -> web.Response:
        m = request.match_info
        account = self._state.get_account(m["rg"], m["account"])
        deployment = self._state.get_deployment(m["rg"], m["account"], m["name"])
        return web.json_response(wire.deployment(self._state, account, deployment), status=status)


async def _parse(request: web.Request, model: type[B]) -> B | web.Response:
    try:
        return model.model_validate(json.loads(await request.text() or "{}"))
    except ValueError as err:  # json.JSONDecodeError and pydantic.ValidationError are ValueErrors
        detail = json.loads(err.json(include_url=False)) if isinstance(err, ValidationError) else None
        return web.json_response({"error": str(err), "details": detail}, status=400)


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)
