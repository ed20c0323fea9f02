"""The emulator as one object: an HTTPS aiohttp server on loopback serving Entra ID, ARM and the
admin API, with the request log and fault injection wrapped around the first two."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from aiohttp import web
from aiohttp.typedefs import Handler

from . import dataplane, roles
from .admin import PREFIX as ADMIN_PREFIX
from .admin import Admin
from .arm import Arm
from .dataplane import DataPlane, EndpointProxy
from .entra import Entra, SigningKey
from .faults import FaultSet
from .requestlog import FAIL_OPERATION, FAULT, OPERATION, PRINCIPAL, RequestLog
from .scenario import Scenario
from .state import EmulatorState
from .throttling import Throttler
from .tls import CA_FILE, ensure_tls


class AzureEmulator:
    """``async with AzureEmulator(scenario, state_dir=...) as emu:`` serves the scenario at ``emu.url``.

    ``state_dir`` holds the CA (``emu.ca_file``), the server certificate and the token-signing key;
    without one, a temporary directory is used and removed on exit. ``tls_hostnames`` adds names
    (a Kubernetes service name, say) to the server certificate besides 127.0.0.1 and localhost.
    """

    def __init__(
        self,
        scenario: Scenario,
        state_dir: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_hostnames: Sequence[str] = (),
    ) -> None:
        self._owns_state_dir = state_dir is None
        self.state_dir = (
            Path(tempfile.mkdtemp(prefix="foundry-emulator-")) if state_dir is None else state_dir
        )
        self.host = host
        self._requested_port = port
        self._tls_hostnames = [*tls_hostnames, host]
        self.state = EmulatorState(scenario)
        self.throttler = Throttler(scenario.throttling, time.monotonic)
        self.faults = FaultSet()
        self.log = RequestLog()
        self.proxy = EndpointProxy(self.state)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- public surface -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        # A wildcard bind is reached through loopback; the certificate names 127.0.0.1.
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"https://{host}:{self.port}"

    @property
    def proxy_url(self) -> str:
        """HTTPS_PROXY for clients of the data plane: tunnels the accounts' public host names here."""
        return self.proxy.url

    @property
    def ca_file(self) -> Path:
        return self.state_dir / CA_FILE

    @property
    def tenant_id(self) -> str:
        return self.state.tenant_id

    @property
    def subscription_id(self) -> str:
        return self.state.subscription_id

    @property
    def client_id(self) -> str:
        return self.state.scenario.operator_principal.clientId

    @property
    def client_secret(self) -> str:
        secret = self.state.scenario.operator_principal.clientSecret
        assert secret is not None  # operator_principal is the first principal with a secret
        return secret

    def connection_info(self) -> dict[str, str]:
        """What the CLI prints when ready."""
        return {
            "url": self.url,
            "ca_file": str(self.ca_file),
            "tenant_id": self.tenant_id,
            "subscription_id": self.subscription_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tls = ensure_tls(self.state_dir, [*self._tls_hostnames, *dataplane.CERT_NAMES])
        key = SigningKey(self.state_dir)
        entra = Entra(self.state, key)
        arm = Arm(self.state, entra, self.throttler)
        role_api = roles.RoleApi(self.state, entra, self.throttler)
        data = DataPlane(self.state, key)

        async def subscriptions(request: web.Request) -> web.StreamResponse:
            # Microsoft.Authorization routes are checked first; everything else is CognitiveServices.
            return await (role_api.handle if roles.matches(request.path) else arm.handle)(request)

        app = web.Application(middlewares=[self._log_requests, self._inject_faults])
        Admin(self.state, self.throttler, self.faults, self.log).add_routes(app)
        app.add_routes(
            [
                web.route("*", "/subscriptions/{tail:.*}", subscriptions),
                web.route("*", "/openai/{tail:.*}", data.handle),
                web.route("*", "/models/{tail:.*}", data.handle),
                web.get("/{tenant}/v2.0/.well-known/openid-configuration", entra.openid_configuration),
                web.get("/{tenant}/.well-known/openid-configuration", entra.openid_configuration),
                web.get("/{tenant}/discovery/v2.0/keys", entra.keys),
                web.post("/{tenant}/oauth2/v2.0/token", entra.token),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._requested_port, ssl_context=tls.server_context())
        await site.start()
        self.port = _bound_port(self._runner)
        await self.proxy.start("127.0.0.1" if self.host in ("0.0.0.0", "") else self.host, self.port)

    async def stop(self) -> None:
        await self.proxy.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._owns_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    async def __aenter__(self) -> AzureEmulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- middleware ---------------------------------------------------------------------------

    @web.middleware
    async def _log_requests(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        started = time.monotonic()
        status: int | None = None
        try:
            response = await handler(request)
            status = None if request.get(FAULT) == "drop" else response.status
            return response
        except web.HTTPException as err:
            status = err.status
            raise
        finally:
            self.log.append(
                timestamp=dt.datetime.now(dt.UTC).isoformat(),
                method=request.method,
                path=request.path,
                query=dict(request.query),
                status=status,
                durationMs=round((time.monotonic() - started) * 1000, 3),
                principal=request.get(PRINCIPAL),
                operation=request.get(OPERATION),
                service=_service_of(request.path),
                fault=request.get(FAULT),
            )

    @web.middleware
    async def _inject_faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        fault = self.faults.pick(request.method, request.path)
        if fault is None:
            return await handler(request)
        request[FAULT] = fault.effect
        if fault.spec.delaySeconds:
            await asyncio.sleep(fault.spec.delaySeconds)
        if fault.effect == "status":
            return fault.error().response()
        if fault.effect == "drop":
            if request.transport is not None:
                request.transport.abort()
            # Nothing reaches the client: aiohttp quietly fails to write this to the aborted socket.
            return web.Response(status=500)
        if fault.effect == "failOperation":
            request[FAIL_OPERATION] = fault.error()
        return await handler(request)


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the emulator did not bind a TCP port")


def _service_of(path: str) -> str:
    lowered = path.lower()
    if lowered.startswith("/subscriptions/"):
        return "arm"
    return "dataplane" if lowered.startswith(("/openai/", "/models/")) else "entra"
