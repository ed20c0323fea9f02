"""A small HTTPS proxy in front of kube-apiserver, for the faults a real server does not produce
on demand. Everything else is the real server's: the proxy forwards each request as one fixed
identity (its client certificate), so authentication, RBAC, admission and storage stay real.

What it adds, and why a real server cannot be asked for it directly:
- `fail_next`: the next N matching requests answered with a Status error (a 500 or 503 from an
  apiserver hiccup, a 429 from priority and fairness) without reaching the server;
- `before_next`: a coroutine run just before the next N matching requests are forwarded, e.g.
  another writer's update landing between the operator's read and its write, so the server
  answers the operator with a genuine 409 Conflict;
- `close_watches`: the watch streams in flight end now (as when a load balancer or an apiserver
  instance drops them), without restarting the server;
- `record=True`: every request body (and every non-watch response body) kept in `exchanges`,
  which the audit log (Metadata level) does not hold, e.g. to scan what a client sent for secrets.

With `identity=None` the proxy presents no client certificate and passes the client's
`Authorization` header through: a token-authenticated client (a ServiceAccount) stays itself,
and the server's RBAC judges it, not the proxy.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web

from foundry_emulator.controlplane.pki import KeyPair
from foundry_emulator.controlplane.server import ControlPlane

_HOP_HEADERS = frozenset(
    {"host", "connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer"}
)


@dataclass(frozen=True)
class RequestInfo:
    """A request's Kubernetes attributes, as RBAC names them."""

    method: str
    verb: str
    group: str
    resource: str | None
    subresource: str | None
    namespace: str | None
    name: str | None


def request_info(method: str, path: str, query: str) -> RequestInfo:
    parts = [p for p in path.split("/") if p]
    group = ""
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        rest = []
    namespace = None
    # /namespaces/{ns}/{resource}/... is a namespaced resource; /namespaces/{ns}[/status] is the namespace.
    if rest[:1] == ["namespaces"] and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] if rest else None
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    watch = parse_qs(query).get("watch", ["false"])[0] in ("true", "1")
    method = method.upper()
    verb = {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if name else "deletecollection",
    }.get(method, "get" if name else ("watch" if watch else "list"))
    return RequestInfo(method, verb, group, resource, subresource, namespace, name)


@dataclass
class Rule:
    remaining: int
    verbs: tuple[str, ...] = ()
    resource: str | None = None
    subresource: str | None = None
    namespace: str | None = None
    name: str | None = None
    code: int = 500
    reason: str = "InternalError"
    hook: Callable[[RequestInfo], Awaitable[None]] | None = None
    hits: int = 0

    def matches(self, info: RequestInfo) -> bool:
        return (
            self.remaining > 0
            and (not self.verbs or info.verb in self.verbs)
            and (self.resource is None or info.resource == self.resource)
            and (self.subresource is None or info.subresource == self.subresource)
            and (self.namespace is None or info.namespace == self.namespace)
            and (self.name is None or info.name == self.name)
        )


_REASONS = {409: "Conflict", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}


@dataclass(frozen=True)
class Exchange:
    """One forwarded request: what the client sent and (except for watches) what it was told."""

    info: RequestInfo
    path: str
    request_body: bytes
    status: int
    response_body: bytes


@dataclass
class FaultProxy:
    control_plane: ControlPlane
    identity: KeyPair | None
    record: bool = False
    rules: list[Rule] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    _watches: set[web.StreamResponse] = field(default_factory=set)
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def start(self) -> FaultProxy:
        upstream = ssl.create_default_context(cafile=str(self.control_plane.ca.cert_file))
        if self.identity is not None:
            upstream.load_cert_chain(self.identity.cert_file, self.identity.key_file)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=upstream), timeout=aiohttp.ClientTimeout(total=None)
        )
        serving = self.control_plane.ca.server("fault-proxy", ["127.0.0.1", "localhost"])
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(serving.cert_file, serving.key_file)
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        self.close_watches()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # -- faults -----------------------------------------------------------------------------------

    def fail_next(self, count: int, code: int = 500, **criteria: object) -> Rule:
        rule = Rule(remaining=count, code=code, reason=_REASONS.get(code, "InternalError"), **criteria)  # type: ignore[arg-type]
        self.rules.append(rule)
        return rule

    def before_next(
        self, count: int, hook: Callable[[RequestInfo], Awaitable[None]], **criteria: object
    ) -> Rule:
        rule = Rule(remaining=count, hook=hook, **criteria)  # type: ignore[arg-type]
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def close_watches(self) -> int:
        """End every watch stream in flight; returns how many."""
        closed = 0
        for response in list(self._watches):
            task = getattr(response, "_foundry_task", None)
            if task is not None and not task.done():
                task.cancel()
                closed += 1
        return closed

    # -- forwarding -------------------------------------------------------------------------------

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        info = request_info(request.method, request.path, request.query_string)
        for rule in self.rules:
            if rule.matches(info):
                rule.remaining -= 1
                rule.hits += 1
                if rule.hook is not None:
                    await rule.hook(info)
                    break
                return web.json_response(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Failure",
                        "message": f"injected by the test proxy: {rule.reason}",
                        "reason": rule.reason,
                        "code": rule.code,
                    },
                    status=rule.code,
                )
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        if self.identity is not None:
            # The server would authenticate the certificate first anyway; drop the header so that
            # the identity forwarded is unambiguous.
            headers.pop("Authorization", None)
            headers.pop("authorization", None)
        body = await request.read()
        if body and "Content-Type" not in request.headers:
            # The `kubernetes` client sends JSON bodies without a type, which the API server reads
            # as JSON; aiohttp would label them octet-stream, which the server refuses (415).
            headers["Content-Type"] = "application/json"
        target = f"{self.control_plane.url}{request.rel_url}"
        # The kubernetes client sends JSON bodies without a Content-Type (the server takes JSON);
        # aiohttp would label them application/octet-stream, which the server refuses (415).
        async with self._session.request(
            request.method, target, headers=headers, data=body or None, skip_auto_headers=("Content-Type",)
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                # aiohttp hands over the body decompressed: the encoding header no longer holds.
                if key.lower() not in _HOP_HEADERS and key.lower() != "content-encoding":
                    response.headers[key] = value
            await response.prepare(request)
            if info.verb == "watch":
                self._watches.add(response)
                response._foundry_task = asyncio.current_task()  # type: ignore[attr-defined]
            kept = bytearray()
            try:
                async for chunk in upstream.content.iter_any():
                    if self.record and info.verb != "watch":
                        kept += chunk
                    await response.write(chunk)
            except asyncio.CancelledError:
                # close_watches: the client sees its stream end, as when a connection drops.
                return response
            finally:
                self._watches.discard(response)
                if self.record:
                    self.exchanges.append(
                        Exchange(info, str(request.rel_url), body, upstream.status, bytes(kept))
                    )
            await response.write_eof()
            return response
