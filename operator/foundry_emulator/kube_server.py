"""The HTTP side of the Kubernetes API emulator: a ``kmock.KubernetesEmulator`` subclass.

Part of :mod:`foundry_emulator.kube` (read that docstring first). Real behaviours this stands for:

* URL routing exactly as kube-apiserver: ``/api/v1/...`` and ``/apis/{group}/{version}/...``,
  namespaced (``/namespaces/{ns}/{plural}``) and cluster-wide list/watch, object URLs,
  ``/status`` (and namespaces' ``/finalize``) subresources; unknown URLs are the real 404.
* RBAC verbs derived from method + URL (get, list, watch, create, update, patch, delete,
  deletecollection), checked by an optional authorizer with the real 403 message.
* Discovery (``/api``, ``/api/v1``, ``/apis``, ``/apis/{g}``, ``/apis/{g}/{v}``, ``/version``).
* LIST with ``metadata.resourceVersion``, label/field selectors and ``limit``/``continue`` paging.
* WATCH: from a ``resourceVersion`` (only later events), without one (synthetic ADDED first),
  ``sendInitialEvents`` (ADDED + the ``k8s.io/initial-events-end`` BOOKMARK), ``timeoutSeconds``,
  periodic and pre-timeout BOOKMARKs with ``allowWatchBookmarks``, selector transitions
  (an object leaving a selector is DELETED for that watcher, entering it is ADDED), and the
  410 ``Expired`` ERROR event for a resourceVersion older than the kept history.
* PATCH content types (merge, strategic merge for built-ins, JSON patch; 415 otherwise), PUT,
  DELETE with ``DeleteOptions`` (``preconditions`` honoured; ``propagationPolicy`` and
  ``gracePeriodSeconds`` accepted and ignored: dependents are garbage-collected in the
  background way, and there are no pods to terminate gracefully), ``dryRun``.

Why parts of kmock are bypassed rather than reused:

* kmock's URL parser crashes on ``/api/v1/namespaces`` (it treats "namespaces" as the namespace
  prefix), so requests are parsed here and handed to kmock as pre-parsed ``kmock.Request``.
* kmock's reaction matching re-filters all past requests for every reaction on every request
  (quadratic over a long kopf run), so the emulated API is served natively, and kmock's reaction
  DSL (``kube.handler['get /version'] << 500``) is consulted first only when a test added one.
* kmock's ``Server`` patches aiohttp's DNS resolver globally (which would also affect kopf's and
  the Azure emulator's sessions), so :class:`foundry_emulator.kube.KubeApiServer` runs its own
  aiohttp server around this handler instead.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml

from foundry_emulator import kube_errors
from foundry_emulator.kube_discovery import discovery
from foundry_emulator.kube_errors import ApiError
from foundry_emulator.kube_log import Faults, LoggedRequest, RequestLog
from foundry_emulator.kube_patches import FieldSelector, LabelSelector, json_patch, merge_patch
from foundry_emulator.kube_resources import ResourceSpec
from foundry_emulator.kube_store import DEFAULT_NAMESPACES, JsonObj, KubeStore, WatchEvent

logger = logging.getLogger(__name__)

# authorizer(verb, group, resource, subresource, namespace, name[, user=...]) -> bool (sync or async).
Authorizer = Callable[..., bool | Awaitable[bool]]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

_ACTIONS: dict[str, kmock.action] = {
    "list": kmock.action.LIST,
    "watch": kmock.action.WATCH,
    "get": kmock.action.FETCH,
    "create": kmock.action.CREATE,
    "update": kmock.action.UPDATE,
    "patch": kmock.action.UPDATE,
    "delete": kmock.action.DELETE,
    "deletecollection": kmock.action.DELETE,
}


@dataclass(frozen=True)
class KubePath:
    """A resource URL, parsed the way the apiserver's RequestInfoFactory does."""

    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None


def parse_kube_path(path: str) -> KubePath | None:
    """``/api/v1/namespaces/ns/configmaps/x`` -> KubePath; None for non-resource URLs (discovery...)."""
    parts = [part for part in path.split("/") if part]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace: str | None = None
    if (
        rest[0] == "namespaces"
        and len(rest) >= 3
        and not (group == "" and len(rest) == 3 and rest[2] in ("status", "finalize"))
    ):
        namespace, rest = rest[1], rest[2:]
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = "/".join(rest[2:]) or None
    return KubePath(group, version, plural, namespace, name, subresource)


def kube_verb(method: str, kpath: KubePath | None, params: dict[str, str]) -> str | None:
    """The RBAC verb of a request (``k8s.io/apiserver/pkg/endpoints/request.RequestInfo``)."""
    if kpath is None:
        return None
    method = method.upper()
    if method in ("GET", "HEAD"):
        if params.get("watch") in ("true", "1"):
            return "watch"
        return "get" if kpath.name is not None else "list"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if kpath.name is not None else "deletecollection"
    return None


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> aiohttp.web.Response:
    return aiohttp.web.json_response(body, status=status, headers=headers, dumps=_dumps)


def _decode(body: bytes, content_type: str) -> tuple[Any, str | None]:
    if not body:
        return None, None
    try:
        if "yaml" in content_type:
            return yaml.safe_load(body), None
        return json.loads(body), None
    except (ValueError, yaml.YAMLError) as e:
        return None, str(e)


@dataclass
class _Call:
    raw: aiohttp.web.BaseRequest
    request: kmock.Request
    entry: LoggedRequest
    kpath: KubePath | None
    data: Any
    decode_error: str | None


@dataclass(eq=False)
class _Watcher:
    storage_key: tuple[str, str]
    closed: bool = False
    expire: bool = False


@attrs.define(kw_only=True)
class KubeEmulator(kmock.KubernetesEmulator):
    """kmock's Kubernetes emulator with real API-server semantics (see the module docstring).

    The kmock parts that stay usable: the reaction DSL (``emulator['get /version'] << 500``)
    for one-off overrides, ``emulator.objects`` (kmock's ObjectsArray, mirrored from the store
    with each object's recent version history) and ``emulator.requests`` views.
    """

    authorizer: Authorizer | None = None
    default_user: str = "kubernetes-admin"
    tokens: dict[str, str] = attrs.field(factory=dict)  # bearer token -> user name
    bookmark_interval: float = 60.0
    log_limit: int = 100_000
    watch_history: int = 10_000
    object_history: int = 20
    namespaces: tuple[str, ...] = DEFAULT_NAMESPACES

    store: KubeStore = attrs.field(init=False)
    log: RequestLog = attrs.field(factory=RequestLog, init=False)
    faults: Faults = attrs.field(factory=Faults, init=False)
    _watchers: set[_Watcher] = attrs.field(factory=set, init=False)
    _counter: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        # Deliberately not calling kmock's post-inits: they register kmock's own fallback
        # reactions (discovery, list/watch/...), which this class serves natively instead.
        self.store = KubeStore(
            mirror=self.objects,
            watch_history=self.watch_history,
            object_history=self.object_history,
            namespaces=self.namespaces,
        )

    # -----------------------------------------------------------------------------------------
    # Entry point

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        body = await raw_request.read()
        call = self._begin(raw_request, body)
        response: aiohttp.web.StreamResponse
        try:
            response = await self._dispatch(call)
        except asyncio.CancelledError:
            if call.entry.status is None:
                call.entry.status = 499  # the client went away (nginx's convention)
            raise
        except kmock.KubernetesError as e:  # raised by a test's kmock reaction
            response = await self._render_error(e)
        except Exception as e:
            # A bug in the emulator or in a hook: answer 500 like a panicking apiserver would,
            # and keep the error for kmock's strict mode (``emulator.errors``).
            logger.exception(
                "The Kubernetes API emulator failed on %s %s", raw_request.method, raw_request.path_qs
            )
            if self._errors:
                self._errors[-1].append(e)
            response = self._error(call, kube_errors.internal_error(f"{type(e).__name__}: {e}"))
        finally:
            call.entry.finished = time.monotonic()
        call.entry.status = response.status
        return response

    def _user_of(self, authorization: str | None) -> str:
        if authorization and authorization[:7].lower() == "bearer ":
            return self.tokens.get(authorization[7:].strip(), self.default_user)
        return self.default_user

    def _begin(self, raw: aiohttp.web.BaseRequest, body: bytes) -> _Call:
        kpath = parse_kube_path(raw.path)
        params = dict(raw.query)
        verb = kube_verb(raw.method, kpath, params)
        content_type = raw.headers.get("Content-Type", "")
        data, decode_error = _decode(body, content_type)
        self._counter += 1
        request = kmock.Request(
            id=self._counter,
            raw_request=raw,
            url=raw.url,
            method=raw.method,
            params=params,
            headers=dict(raw.headers),
            cookies=dict(raw.cookies),
            body=body,
            text=body.decode("utf-8", "replace"),
            data=data,
            action=_ACTIONS.get(verb or ""),
            resource=kmock.resource(kpath.group, kpath.version, kpath.plural) if kpath else None,
            namespace=kpath.namespace if kpath else None,
            name=kpath.name if kpath else None,
            subresource=kpath.subresource if kpath else None,
        )
        entry = LoggedRequest(
            id=self._counter,
            method=raw.method,
            path=raw.path,
            query=params,
            content_type=content_type,
            verb=verb,
            group=kpath.group if kpath else None,
            version=kpath.version if kpath else None,
            resource=kpath.plural if kpath else None,
            subresource=kpath.subresource if kpath else None,
            namespace=kpath.namespace if kpath else None,
            name=kpath.name if kpath else None,
            user=self._user_of(raw.headers.get("Authorization")),
            body=data,
        )
        # Bounded memory for long runs (make demo, benchmarks): drop the oldest half when full.
        if len(self.log) >= self.log_limit:
            del self.log[: len(self.log) // 2]
        if len(self._requests) >= self.log_limit:
            del self._requests[: len(self._requests) // 2]
        self.log.append(entry)
        self._requests.append(request)
        return _Call(raw, request, entry, kpath, data, decode_error)

    async def _dispatch(self, call: _Call) -> aiohttp.web.StreamResponse:
        if call.kpath is not None:
            # Authorization runs before anything else looks at the request, as on a real server.
            denied = await self._authorize(call)
            if denied is not None:
                return self._error(call, denied)
            fault = self.faults.take(call.entry)
            if fault is not None:
                return self._error(call, fault)
        if self._payloads:  # a test registered kmock reactions: they win over the emulated API
            with contextlib.suppress(NotImplementedError):
                return await kmock.RawHandler._handle(self, call.request)
        try:
            if call.kpath is None:
                return self._serve_nonresource(call)
            return await self._serve_resource(call)
        except ApiError as e:
            return self._error(call, e)

    def _error(self, call: _Call, error: ApiError) -> aiohttp.web.Response:
        call.entry.reason = error.reason
        return _json(error.code, error.status(), error.headers)

    async def _authorize(self, call: _Call) -> ApiError | None:
        if self.authorizer is None or call.kpath is None or call.entry.verb is None:
            return None
        kp = call.kpath
        verb = call.entry.verb
        # RBAC attributes: no name for create/list/watch/deletecollection; for the namespaces
        # resource itself, the namespace attribute is the namespace's name (RequestInfo does that).
        name = kp.name if verb in ("get", "update", "patch", "delete") else None
        namespace = kp.namespace
        if kp.group == "" and kp.plural == "namespaces" and kp.name is not None:
            namespace = kp.name
        kwargs: dict[str, Any] = {}
        with contextlib.suppress(TypeError, ValueError):
            parameters = inspect.signature(self.authorizer).parameters
            if "user" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
                kwargs["user"] = call.entry.user
        allowed = self.authorizer(verb, kp.group, kp.plural, kp.subresource, namespace, name, **kwargs)
        if inspect.isawaitable(allowed):
            allowed = await allowed
        if allowed:
            return None
        return kube_errors.forbidden(
            call.entry.user, verb, kp.group, kp.plural, kp.subresource, namespace, name
        )

    # -----------------------------------------------------------------------------------------
    # Discovery and other non-resource URLs

    def _serve_nonresource(self, call: _Call) -> aiohttp.web.StreamResponse:
        if call.raw.method not in ("GET", "HEAD"):
            raise kube_errors.method_not_allowed()
        path = call.raw.path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz"):
            return aiohttp.web.Response(text="ok")
        return _json(200, discovery(self.store.registry, path, call.raw.host))

    # -----------------------------------------------------------------------------------------
    # Resources

    def _body(self, call: _Call) -> Any:
        if call.decode_error is not None:
            raise kube_errors.bad_request(f"couldn't get version/kind; json parse error: {call.decode_error}")
        if call.data is None:
            raise kube_errors.bad_request("the body of the request is empty")
        return call.data

    def _patcher(self, spec: ResourceSpec, call: _Call) -> Callable[[JsonObj], Any]:
        content_type = call.entry.content_type.split(";")[0].strip().lower()
        accepted = (
            [JSON_PATCH, MERGE_PATCH] if spec.custom else [JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH]
        )
        if content_type not in accepted:
            # Custom resources have no strategic merge on a real server either (no Go struct tags).
            raise kube_errors.unsupported_media_type(content_type, accepted)
        patch = self._body(call)
        if content_type == JSON_PATCH:
            return lambda current: json_patch(current, patch)
        if not isinstance(patch, dict):
            raise kube_errors.bad_request("the merge patch must be a JSON object")
        return lambda current: merge_patch(current, patch)

    def _delete_preconditions(self, call: _Call) -> dict[str, Any] | None:
        # DeleteOptions come in the body (or the query). Only preconditions matter here;
        # propagationPolicy, gracePeriodSeconds and orphanDependents are accepted and ignored.
        options = call.data if isinstance(call.data, dict) else {}
        preconditions = options.get("preconditions")
        return preconditions if isinstance(preconditions, dict) else None

    def _list_body(self, spec: ResourceSpec, namespace: str | None, params: dict[str, str]) -> JsonObj:
        labels = LabelSelector(params.get("labelSelector"))
        fields = FieldSelector(params.get("fieldSelector"), spec.field_selectors)
        rv = self.store.resource_version
        objects = [o for o in self.store.live(spec, namespace) if labels.matches(o) and fields.matches(o)]
        token = params.get("continue")
        if token:
            # The continue token carries the list's resourceVersion and the last key served.
            # Later pages show the current state (a real server serves the original snapshot).
            try:
                start_rv, start_ns, start_name = json.loads(base64.urlsafe_b64decode(token.encode()))
            except (ValueError, TypeError) as e:
                raise kube_errors.bad_request(f"continue key is not valid: {e}") from e
            rv = int(start_rv)
            objects = [
                o
                for o in objects
                if ((o["metadata"].get("namespace") or ""), o["metadata"]["name"]) > (start_ns, start_name)
            ]
        meta: JsonObj = {"resourceVersion": str(rv)}
        try:
            limit = int(params.get("limit") or 0)
        except ValueError as e:
            raise kube_errors.bad_request(f"invalid limit: {e}") from e
        if limit > 0 and len(objects) > limit:
            meta["remainingItemCount"] = len(objects) - limit
            objects = objects[:limit]
            last = objects[-1]["metadata"]
            key = [rv, last.get("namespace") or "", last["name"]]
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
        return {
            "kind": spec.list_kind or f"{spec.kind}List",
            "apiVersion": spec.api_version,
            "metadata": meta,
            "items": [self.store.present(spec, o) for o in objects],
        }

    async def _serve_resource(self, call: _Call) -> aiohttp.web.StreamResponse:
        kp = call.kpath
        verb = call.entry.verb
        assert kp is not None
        spec = self.store.registry.served(kp.group, kp.version, kp.plural)
        if spec is None or (kp.subresource is not None and kp.subresource not in spec.subresources):
            raise kube_errors.not_found_generic()
        if (not spec.namespaced and kp.namespace is not None) or (
            spec.namespaced and kp.name and not kp.namespace
        ):
            raise kube_errors.not_found_generic()
        if verb is None or (kp.subresource is None and verb not in spec.verbs):
            raise kube_errors.method_not_allowed()
        params = call.request.params
        dry_run = bool(params.get("dryRun"))
        store = self.store
        if verb == "list":
            return _json(200, self._list_body(spec, kp.namespace, dict(params)))
        if verb == "watch":
            return await self._stream_watch(call, spec)
        if verb == "deletecollection":
            return self._serve_deletecollection(spec, kp.namespace, dict(params), dry_run)
        if verb == "create":
            if kp.name is not None:
                raise kube_errors.method_not_allowed()
            created = await store.create(spec, kp.namespace, self._body(call), dry_run=dry_run)
            return _json(201, store.present(spec, created))
        assert kp.name is not None
        if verb == "get":
            obj = store.current(spec, kp.namespace, kp.name)
            if obj is None:
                raise kube_errors.not_found(spec.group, spec.plural, kp.name)
            return _json(200, store.present(spec, obj))
        if verb == "update":
            body = self._body(call)
            updated = await store.update(
                spec,
                kp.namespace,
                kp.name,
                lambda _current: body,
                subresource=kp.subresource,
                is_put=True,
                dry_run=dry_run,
            )
            return _json(200, store.present(spec, updated))
        if verb == "patch":
            patched = await store.update(
                spec,
                kp.namespace,
                kp.name,
                self._patcher(spec, call),
                subresource=kp.subresource,
                dry_run=dry_run,
            )
            return _json(200, store.present(spec, patched))
        if verb == "delete" and kp.subresource is None:
            obj, removed = store.delete(
                spec, kp.namespace, kp.name, preconditions=self._delete_preconditions(call), dry_run=dry_run
            )
            if removed and not spec.custom:
                # Built-in registries answer a completed deletion with a Success Status
                # (ReturnDeletedObject=false); CRs and pending (finalized) deletions return the object.
                details: JsonObj = {"name": kp.name, "kind": spec.plural, "uid": obj["metadata"].get("uid")}
                if spec.group:
                    details["group"] = spec.group
                return _json(
                    200,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "details": details,
                    },
                )
            return _json(200, store.present(spec, obj))
        raise kube_errors.method_not_allowed()

    def _serve_deletecollection(
        self, spec: ResourceSpec, namespace: str | None, params: dict[str, str], dry_run: bool
    ) -> aiohttp.web.StreamResponse:
        labels = LabelSelector(params.get("labelSelector"))
        fields = FieldSelector(params.get("fieldSelector"), spec.field_selectors)
        deleted = []
        for obj in self.store.live(spec, namespace):
            if labels.matches(obj) and fields.matches(obj):
                meta = obj["metadata"]
                result, _removed = self.store.delete(
                    spec, meta.get("namespace"), meta["name"], dry_run=dry_run
                )
                deleted.append(self.store.present(spec, result))
        return _json(
            200,
            {
                "kind": spec.list_kind or f"{spec.kind}List",
                "apiVersion": spec.api_version,
                "metadata": {"resourceVersion": str(self.store.resource_version)},
                "items": deleted,
            },
        )

    # -----------------------------------------------------------------------------------------
    # Watch

    def close_watches(self, spec: ResourceSpec | None = None, *, expire: bool = False) -> int:
        """End the open watch streams now (of one resource or all); returns how many.

        ``expire=False``: the stream just ends, as when the apiserver restarts or a load
        balancer drops the connection; clients resume from their last resourceVersion.
        ``expire=True``: an ERROR 410 ``Expired`` event first, as when a watcher falls out of
        the watch cache; clients must re-list.
        """
        count = 0
        for watcher in list(self._watchers):
            if spec is None or watcher.storage_key == spec.storage_key:
                watcher.closed = True
                watcher.expire = expire
                count += 1
        self.store.notify()
        return count

    @property
    def open_watches(self) -> int:
        return len(self._watchers)

    async def _stream_watch(self, call: _Call, spec: ResourceSpec) -> aiohttp.web.StreamResponse:
        kp = call.kpath
        assert kp is not None
        params = call.request.params
        labels = LabelSelector(params.get("labelSelector"))
        fields = FieldSelector(params.get("fieldSelector"), spec.field_selectors)
        rv_text = params.get("resourceVersion")
        start: int | None = None
        if rv_text not in (None, "", "0"):
            try:
                start = int(str(rv_text))
            except ValueError as e:
                raise kube_errors.bad_request(f'resourceVersion: Invalid value: "{rv_text}": {e}') from e
        timeout: float | None = None
        if params.get("timeoutSeconds"):
            try:
                timeout = float(params["timeoutSeconds"])
            except ValueError as e:
                raise kube_errors.bad_request(f"invalid timeoutSeconds: {e}") from e
        bookmarks = params.get("allowWatchBookmarks") in ("true", "1")
        initial = params.get("sendInitialEvents") == "true"

        response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(call.raw)
        call.entry.status = 200
        watcher = _Watcher(spec.storage_key)
        self._watchers.add(watcher)
        events = self._watch_events(call, spec, watcher, labels, fields, start, timeout, bookmarks, initial)
        try:
            try:
                async for event in events:
                    await response.write(_dumps(event).encode() + b"\n")
            except ApiError as e:
                await response.write(_dumps({"type": "ERROR", "object": e.status()}).encode() + b"\n")
            except (ConnectionError, asyncio.CancelledError):
                raise
            except Exception as e:
                logger.exception("The Kubernetes API emulator failed in a watch of %s", spec.qualified)
                error = kube_errors.internal_error(f"{type(e).__name__}: {e}")
                await response.write(_dumps({"type": "ERROR", "object": error.status()}).encode() + b"\n")
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away mid-stream
        finally:
            self._watchers.discard(watcher)
            await events.aclose()
        return response

    async def _watch_events(
        self,
        call: _Call,
        spec: ResourceSpec,
        watcher: _Watcher,
        labels: LabelSelector,
        fields: FieldSelector,
        start: int | None,
        timeout: float | None,
        bookmarks: bool,
        initial: bool,
    ) -> AsyncGenerator[JsonObj, None]:
        kp = call.kpath
        assert kp is not None
        store = self.store
        history = store.history(spec)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        next_bookmark = loop.time() + self.bookmark_interval

        def visible(obj: JsonObj | None) -> bool:
            if obj is None:
                return False
            meta = obj.get("metadata") or {}
            return (
                (kp.namespace is None or meta.get("namespace") == kp.namespace)
                and (kp.name is None or meta.get("name") == kp.name)
                and labels.matches(obj)
                and fields.matches(obj)
            )

        def bookmark(rv: int, *, initial_end: bool = False) -> JsonObj:
            meta: JsonObj = {"resourceVersion": str(rv)}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return {
                "type": "BOOKMARK",
                "object": {"kind": spec.kind, "apiVersion": spec.api_version, "metadata": meta},
            }

        def expired(rv: int) -> JsonObj:
            error = kube_errors.gone(f"too old resource version: {rv} ({history.compacted_rv})")
            return {"type": "ERROR", "object": error.status()}

        if start is None:
            # No resourceVersion ("" or "0"): synthetic ADDED events for what exists now
            # (a consistent snapshot: nothing is awaited while it is taken), then live events.
            last = store.resource_version
            snapshot = [store.present(spec, o) for o in store.live(spec, kp.namespace) if visible(o)]
            for obj in snapshot:
                yield {"type": "ADDED", "object": obj}
            if initial and bookmarks:
                yield bookmark(last, initial_end=True)
        else:
            last = start

        while True:
            if last < history.compacted_rv:
                yield expired(last)
                return
            changed = store.changed  # capture before looking, so that no write can slip between
            pending = [] if watcher.expire else history.after(last)
            if pending:
                last = pending[-1].rv
                for event in [e for e in (self._translate(spec, ev, visible) for ev in pending) if e]:
                    yield event
                continue
            if watcher.closed:
                # Closing flushes what was already committed (a graceful close); expiring does not.
                if watcher.expire:
                    yield expired(last)
                return
            now = loop.time()
            closing = deadline is not None and now >= deadline
            if bookmarks and (closing or now >= next_bookmark):
                # Nothing of this resource is pending, so everything up to the current global
                # resourceVersion has been delivered: resuming from there loses nothing.
                last = max(last, store.resource_version)
                next_bookmark = now + self.bookmark_interval
                yield bookmark(last)
            if closing:
                return
            transport = call.raw.transport
            if transport is None or transport.is_closing():
                return
            wake = [now + 5.0, next_bookmark if bookmarks else now + 5.0]
            if deadline is not None:
                wake.append(deadline)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=max(0.0, min(wake) - now))

    def _translate(
        self, spec: ResourceSpec, event: WatchEvent, visible: Callable[[JsonObj | None], bool]
    ) -> JsonObj | None:
        # The watch cache's per-watcher filtering, including selector transitions.
        if event.type != "MODIFIED":
            return (
                {"type": event.type, "object": self.store.present(spec, event.obj)}
                if visible(event.obj)
                else None
            )
        now_visible = visible(event.obj)
        was_visible = visible(event.old)
        if now_visible:
            return {
                "type": "MODIFIED" if was_visible else "ADDED",
                "object": self.store.present(spec, event.obj),
            }
        if was_visible and event.old is not None:
            gone = {
                **event.old,
                "metadata": {**event.old.get("metadata", {}), "resourceVersion": str(event.rv)},
            }
            return {"type": "DELETED", "object": self.store.present(spec, gone)}
        return None
