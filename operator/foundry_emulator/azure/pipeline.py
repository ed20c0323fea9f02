"""ARM's request pipeline, shared by every resource provider the emulator serves: the caller's
token, throttling per subscription + principal + operation kind (with the remaining-requests
headers on every answer), the api-version, then the provider's own routing."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from . import errors
from .errors import ArmError
from .requestlog import OPERATION, PRINCIPAL
from .throttling import HEADERS, Throttler, operation_kind

if TYPE_CHECKING:  # entra imports the modules that import this one
    from .entra import Entra
    from .state import Caller


async def arm_pipeline(
    request: web.Request,
    entra: Entra,
    throttler: Throttler,
    subscription_id: str,
    challenge: Callable[[ArmError], str],
    route: Callable[[Caller], Awaitable[web.Response]],
) -> web.Response:
    headers = {
        "x-ms-request-id": str(uuid.uuid4()),
        "x-ms-correlation-request-id": request.headers.get("x-ms-correlation-request-id", str(uuid.uuid4())),
    }
    try:
        caller = entra.verify_arm(request.headers.get("Authorization"))
    except ArmError as err:
        return err.response({**headers, "WWW-Authenticate": challenge(err)})
    kind = operation_kind(request.method)
    request[PRINCIPAL] = caller.client_id
    request[OPERATION] = kind
    decision = throttler.take(subscription_id, caller.object_id, kind)
    headers[HEADERS[kind]] = str(decision.remaining)
    try:
        if not decision.allowed:
            raise errors.throttled(kind, subscription_id, caller.object_id, decision.retry_after)
        if not request.query.get("api-version"):
            raise errors.missing_api_version()
        response = await route(caller)
    except ArmError as err:
        return err.response(headers)
    response.headers.update(headers)
    return response
