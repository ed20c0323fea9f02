"""An in-process Kubernetes API server for tests and ``make demo``: kmock, extended to real semantics.

The operator (kopf + the ``kubernetes`` client) runs end to end against this server, so it behaves
like kube-apiserver wherever kopf or the client depend on it. It is built on kmock's
``KubernetesEmulator`` (the Kubernetes API mock server by kopf's author) and fills in what kmock
leaves out: PUT, uid/resourceVersion/generation, real patch semantics, the status subresource,
optimistic concurrency, list resourceVersions and watching from a resourceVersion.

Usage::

    from foundry_emulator.kube import KubeApiServer

    async with KubeApiServer() as kube:          # plain HTTP on 127.0.0.1, a free port
        kube.register_crds(["crds/foundry.llmops.io_foundrydeployments.yaml"])
        kube.write_kubeconfig(tmp_path / "kubeconfig")   # for KUBECONFIG / kubectl
        api = kubernetes.client.ApiClient(kube.client_configuration())
        await kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {...}})
        kube.get("configmaps", "default", "llm-config")
        kube.requests.writes(resource="configmaps")

It is an HTTP server in the running event loop: kopf (async, same loop) and the synchronous
``kubernetes`` client (from a worker thread, e.g. ``asyncio.to_thread``) both just talk HTTP to
``kube.url``. The in-process helpers (:meth:`KubeApiServer.get`, :meth:`~KubeApiServer.create`,
...) must be called from the loop's thread. Plain HTTP, no TLS and no authentication: any bearer
token is accepted; tokens minted by :meth:`KubeApiServer.token_for` map to a user name, which
appears in the request log and in 403 messages.

Real API-server behaviours, and where each is emulated:

1. Discovery of core v1 namespaces/configmaps/secrets/events/serviceaccounts, events.k8s.io,
   apiextensions.k8s.io CRDs, coordination.k8s.io leases and kopf's peering CRDs; CRD objects
   (created by :meth:`KubeApiServer.register_crd` or over HTTP) become served resources with
   their kind, names, scope, verbs and subresources -- :mod:`foundry_emulator.kube_resources`,
   :mod:`foundry_emulator.kube_discovery`.
2. Object metadata: uid, creationTimestamp, a cluster-wide resourceVersion counter, generation
   for CRs/CRDs, namespace from the URL -- :mod:`foundry_emulator.kube_store`.
3. The status subresource split between main-resource and ``/status`` writes -- kube_store.
4. Merge patch (RFC 7386), strategic merge patch (= merge patch for built-ins, 415 for CRs, as
   real), JSON patch (RFC 6902), 415 otherwise -- :mod:`foundry_emulator.kube_patches`.
5. PUT, optimistic concurrency (409 Conflict), AlreadyExists, NotFound, Invalid, Forbidden with
   the real Status bodies -- :mod:`foundry_emulator.kube_errors`, kube_store; the validation every
   object gets (DNS-1123 names, labels, ConfigMap keys) -- :mod:`foundry_emulator.kube_validation`.
6. DELETE with finalizers (deletionTimestamp, removal on the last finalizer), namespace and CRD
   cleanup, ownerReference garbage collection -- kube_store.
7. LIST with resourceVersion, label/field selectors, limit/continue -- kube_server, kube_patches.
8. WATCH from a resourceVersion, 410 Expired, timeoutSeconds, bookmarks, sendInitialEvents,
   selector transitions -- :mod:`foundry_emulator.kube_server`.
9. Admission: ``defaulter`` and ``admission`` hooks for custom resources (the CRD schema + CEL
   validation of a real server), errors as 422 Invalid with ``details.causes`` -- kube_store.
10. A request log (the audit log) and an ``authorizer`` hook (RBAC) -- kube_log, kube_server.
11. Fault injection: conflicts and other errors on the next N requests, closing watch streams,
    compacting the watch history -- kube_log, kube_server.

Thinner than a real API server (known, deliberate):

* No TLS, no authentication (tokens only name users), RBAC only through the ``authorizer`` hook.
* No server-side apply (``application/apply-patch+yaml`` is 415), no managedFields, JSON only
  (no protobuf, no ``as=Table`` output for kubectl's default printing), no OpenAPI documents
  (so ``kubectl apply`` needs ``--validate=false``), no ``Warning`` headers.
* No OpenAPI schema pruning/defaulting of its own: structural schema, defaults and CEL come in
  through the ``defaulter``/``admission`` hooks. Mind that a real server *prunes* unknown fields
  (with a warning) unless the request says ``fieldValidation=Strict``; it does not reject them.
  Built-in kinds are not schema-validated beyond names, label/annotation keys and ConfigMap/Secret
  keys and size.
* Paging: later ``continue`` pages show the current state, not the first page's snapshot;
  ``resourceVersion``/``resourceVersionMatch`` on LIST are ignored (always the latest).
* ``propagationPolicy``/``gracePeriodSeconds`` are accepted and ignored: garbage collection is
  always "background", and immediate. No pods, no controllers besides namespace/CRD cleanup
  and garbage collection; the two events APIs are separate stores (no field conversion).
* Watch history is per resource (10 000 events by default) rather than etcd's global window.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import copy
import secrets
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import aiohttp.web
import yaml

from foundry_emulator import kube_errors
from foundry_emulator.kube_errors import ApiError, field_error
from foundry_emulator.kube_log import FaultRule, Faults, LoggedRequest, RequestLog
from foundry_emulator.kube_patches import FieldSelector, LabelSelector, json_patch, merge_patch
from foundry_emulator.kube_resources import ResourceSpec
from foundry_emulator.kube_server import Authorizer, KubeEmulator
from foundry_emulator.kube_store import DEFAULT_NAMESPACES, AdmissionHook, DefaulterHook, JsonObj, KubeStore

if TYPE_CHECKING:
    import kmock
    import kopf
    import kubernetes.client

__all__ = [
    "ApiError",
    "Authorizer",
    "FaultRule",
    "Faults",
    "KubeApiServer",
    "KubeEmulator",
    "LoggedRequest",
    "RequestLog",
    "ResourceSpec",
    "field_error",
]

ResourceRef = str | tuple[str, str] | ResourceSpec


class KubeApiServer:
    """The Kubernetes API emulator bound to a local port, plus in-process helpers for tests."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        admission: AdmissionHook | None = None,
        defaulter: DefaulterHook | None = None,
        authorizer: Authorizer | None = None,
        default_user: str = "kubernetes-admin",
        namespaces: Iterable[str] = DEFAULT_NAMESPACES,
        watch_history: int = 10_000,
        bookmark_interval: float = 60.0,
        log_limit: int = 100_000,
    ) -> None:
        self.handler = KubeEmulator(
            authorizer=authorizer,
            default_user=default_user,
            namespaces=tuple(namespaces),
            watch_history=watch_history,
            bookmark_interval=bookmark_interval,
            log_limit=log_limit,
        )
        self.store.admission = admission
        self.store.defaulter = defaulter
        self._host = host
        self._port = port
        self._runner: aiohttp.web.ServerRunner | None = None
        self._url: str | None = None

    # -----------------------------------------------------------------------------------------
    # Lifecycle

    async def start(self) -> None:
        """Bind and serve (what ``async with`` does); for long-running uses such as ``make demo``."""
        if self._runner is not None:
            raise RuntimeError("The Kubernetes API emulator is already running.")
        await self.handler.__aenter__()  # kmock's stream feeder, used by kmock reactions only
        # handler_cancellation: a client that disconnects cancels its request (ends its watch).
        server = aiohttp.web.Server(self.handler, handler_cancellation=True)
        self._runner = aiohttp.web.ServerRunner(server, shutdown_timeout=1.0)
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        _host, port = self._runner.addresses[0][:2]
        self._url = f"http://{self._host}:{port}"

    async def stop(self) -> None:
        if self._runner is None:
            return
        self.handler.close_watches()  # let watch streams end cleanly before the sockets go
        await asyncio.sleep(0)
        await self._runner.cleanup()
        self._runner = None
        self._url = None
        await self.handler.__aexit__(None, None, None)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        if self._url is None:
            raise RuntimeError(
                "The Kubernetes API emulator is not running; use `async with KubeApiServer()`."
            )
        return self._url

    # -----------------------------------------------------------------------------------------
    # State and hooks

    @property
    def store(self) -> KubeStore:
        return self.handler.store

    @property
    def requests(self) -> RequestLog:
        """Every HTTP request served (see :class:`~foundry_emulator.kube_log.RequestLog`)."""
        return self.handler.log

    @property
    def faults(self) -> Faults:
        return self.handler.faults

    @property
    def objects(self) -> kmock.ObjectsArray:
        """kmock's view of all objects with recent history: ``kube.objects['v1/configmaps', 'ns', 'x']``."""
        return self.handler.objects

    @property
    def resource_version(self) -> int:
        return self.store.resource_version

    @property
    def admission(self) -> AdmissionHook | None:
        return self.store.admission

    @admission.setter
    def admission(self, hook: AdmissionHook | None) -> None:
        self.store.admission = hook

    @property
    def defaulter(self) -> DefaulterHook | None:
        return self.store.defaulter

    @defaulter.setter
    def defaulter(self, hook: DefaulterHook | None) -> None:
        self.store.defaulter = hook

    @property
    def authorizer(self) -> Authorizer | None:
        return self.handler.authorizer

    @authorizer.setter
    def authorizer(self, hook: Authorizer | None) -> None:
        self.handler.authorizer = hook

    # -----------------------------------------------------------------------------------------
    # Resources

    def resource(self, ref: ResourceRef) -> ResourceSpec:
        """Resolve ``"configmaps"``, ``"cm"``, ``"ConfigMap"``, ``"fdep"``, ``"v1/configmaps"``,
        ``"foundrydeployments.foundry.llmops.io"``, ``(apiVersion, kind)`` to a served resource."""
        return self.store.registry.resolve(ref)

    def register_crd(self, crd: Mapping[str, Any] | str | Path) -> builtins.list[ResourceSpec]:
        """Install one CRD (a manifest dict or a YAML file), as ``kubectl apply`` would.

        The CRD object is stored (and watchable); its served versions become discoverable.
        Re-registering an installed CRD updates it in place.
        """
        if not isinstance(crd, Mapping):
            documents = [d for d in yaml.safe_load_all(Path(crd).read_text()) if d]
            return [spec for doc in documents for spec in self.register_crd(doc)]
        if crd.get("kind") != "CustomResourceDefinition":
            raise ValueError(f"not a CustomResourceDefinition: {crd.get('kind')!r}")
        crd_spec = self.resource("customresourcedefinitions")
        name = str((crd.get("metadata") or {}).get("name", ""))
        if self.store.current(crd_spec, None, name) is None:
            self.store.create_sync(crd_spec, None, dict(crd))
        else:
            body = copy.deepcopy(dict(crd))
            body.get("metadata", {}).pop("resourceVersion", None)
            self.store.update_sync(crd_spec, None, name, lambda _current: body)
        group = str(crd["spec"]["group"])
        plural = str(crd["spec"]["names"]["plural"])
        return [s for s in self.store.registry.all() if s.group == group and s.plural == plural]

    def register_crds(self, crds: Iterable[str | Path | Mapping[str, Any]]) -> builtins.list[ResourceSpec]:
        """Install several CRDs: YAML files (multi-document files are fine) and/or manifest dicts."""
        return [spec for crd in crds for spec in self.register_crd(crd)]

    def register_resource(self, spec: ResourceSpec) -> None:
        """Serve one more built-in resource (e.g. ``apps/v1`` deployments) with plain storage semantics."""
        self.store.registry.add(spec)

    # -----------------------------------------------------------------------------------------
    # Client wiring

    def token_for(self, user: str) -> str:
        """A bearer token that the server maps to ``user`` (for the log, 403s and the authorizer)."""
        for token, name in self.handler.tokens.items():
            if name == user:
                return token
        token = f"emulator-{secrets.token_hex(8)}"
        self.handler.tokens[token] = user
        return token

    def write_kubeconfig(
        self,
        path: str | Path,
        *,
        user: str | None = None,
        namespace: str = "default",
        context: str = "foundry-emulator",
    ) -> Path:
        """Write a kubeconfig for ``kube.url`` (set ``KUBECONFIG`` to it for kopf/kubectl/the client)."""
        token = self.token_for(user or self.handler.default_user)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": token}}],
            "contexts": [
                {"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}
            ],
            "current-context": context,
        }
        target = Path(path)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

    def client_configuration(self, *, user: str | None = None) -> kubernetes.client.Configuration:
        """A ``kubernetes.client.Configuration`` for ``kube.url`` (no global state touched)."""
        import kubernetes.client

        configuration = kubernetes.client.Configuration(host=self.url)
        configuration.api_key = {"BearerToken": self.token_for(user or self.handler.default_user)}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return configuration

    def connection_info(self, *, user: str | None = None, namespace: str = "default") -> kopf.ConnectionInfo:
        """What an ``@kopf.on.login()`` handler returns to point kopf here."""
        import kopf

        return kopf.ConnectionInfo(
            server=self.url,
            scheme="Bearer",
            token=self.token_for(user or self.handler.default_user),
            default_namespace=namespace,
        )

    # -----------------------------------------------------------------------------------------
    # In-process object access (call from the event loop's thread). Reads are synchronous;
    # writes are coroutines because they run the admission hooks and notify watchers. Results
    # are deep copies: mutating them does not change the stored objects.

    def get(self, resource: ResourceRef, namespace: str | None, name: str) -> JsonObj:
        """The object, or :class:`ApiError` 404 ``NotFound`` (as the API would answer)."""
        spec = self.resource(resource)
        obj = self.store.current(spec, namespace, name)
        if obj is None:
            raise kube_errors.not_found(spec.group, spec.plural, name)
        return copy.deepcopy(self.store.present(spec, obj))

    def find(self, resource: ResourceRef, namespace: str | None, name: str) -> JsonObj | None:
        """The object, or None."""
        with contextlib.suppress(ApiError):
            return self.get(resource, namespace, name)
        return None

    def list(
        self,
        resource: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> builtins.list[JsonObj]:
        """Objects ordered by (namespace, name); ``namespace=None`` means all namespaces."""
        spec = self.resource(resource)
        labels = LabelSelector(label_selector)
        fields = FieldSelector(field_selector, spec.field_selectors)
        return [
            copy.deepcopy(self.store.present(spec, obj))
            for obj in self.store.live(spec, namespace)
            if labels.matches(obj) and fields.matches(obj)
        ]

    def _spec_of(self, obj: Mapping[str, Any]) -> ResourceSpec:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not api_version or not kind:
            raise ValueError("the object needs apiVersion and kind")
        return self.resource((str(api_version), str(kind)))

    async def create(self, obj: Mapping[str, Any], *, namespace: str | None = None) -> JsonObj:
        """POST the object (resource from apiVersion/kind; namespace from the argument or metadata)."""
        spec = self._spec_of(obj)
        namespace = namespace or (obj.get("metadata") or {}).get("namespace")
        created = await self.store.create(spec, namespace if spec.namespaced else None, dict(obj))
        return copy.deepcopy(self.store.present(spec, created))

    async def replace(self, obj: Mapping[str, Any], *, subresource: str | None = None) -> JsonObj:
        """PUT the object (or its ``/status``); ``metadata.resourceVersion`` is a precondition if set."""
        spec = self._spec_of(obj)
        meta = obj.get("metadata") or {}
        body = copy.deepcopy(dict(obj))
        updated = await self.store.update(
            spec,
            meta.get("namespace"),
            str(meta.get("name")),
            lambda _current: body,
            subresource=subresource,
            is_put=True,
        )
        return copy.deepcopy(self.store.present(spec, updated))

    async def patch(
        self,
        resource: ResourceRef,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        patch_type: str = "merge",
        subresource: str | None = None,
    ) -> JsonObj:
        """PATCH: ``patch_type`` is ``"merge"`` (RFC 7386) or ``"json"`` (RFC 6902)."""
        spec = self.resource(resource)
        mutate: Callable[[JsonObj], Any]
        if patch_type == "merge":
            mutate = lambda current: merge_patch(current, patch)  # noqa: E731
        elif patch_type == "json":
            mutate = lambda current: json_patch(current, patch)  # noqa: E731
        else:
            raise ValueError(f"unknown patch_type {patch_type!r}; use 'merge' or 'json'")
        patched = await self.store.update(spec, namespace, name, mutate, subresource=subresource)
        return copy.deepcopy(self.store.present(spec, patched))

    async def delete(
        self,
        resource: ResourceRef,
        namespace: str | None,
        name: str,
        *,
        preconditions: Mapping[str, Any] | None = None,
    ) -> JsonObj:
        """DELETE; returns the object: marked with deletionTimestamp if finalizers hold it, else its last state."""
        spec = self.resource(resource)
        obj, _removed = self.store.delete(spec, namespace, name, preconditions=preconditions)
        return copy.deepcopy(self.store.present(spec, obj))

    async def wait_for(
        self,
        resource: ResourceRef,
        namespace: str | None,
        name: str,
        predicate: Callable[[JsonObj | None], bool] | None = None,
        *,
        timeout: float = 10.0,
    ) -> JsonObj | None:
        """Wait until ``predicate(object or None)`` holds (default: the object exists); return the object.

        Woken by every write, so it sees each change. ``lambda o: o is None`` waits for deletion.
        Raises TimeoutError with the last state seen.
        """
        check = predicate or (lambda obj: obj is not None)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self.store.changed
            obj = self.find(resource, namespace, name)
            if check(obj):
                return obj
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"{resource} {namespace}/{name} did not reach the condition in {timeout}s; last: {obj!r}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=remaining)

    async def wait_until(self, condition: Callable[[], bool], *, timeout: float = 10.0) -> None:
        """Wait until ``condition()`` holds, re-checking after every write (e.g. on the request log)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"the condition did not hold within {timeout}s")
            changed = self.store.changed
            with contextlib.suppress(TimeoutError):
                # Also poll: conditions on the request log change without a store write.
                await asyncio.wait_for(changed.wait(), timeout=min(remaining, 0.05))

    # -----------------------------------------------------------------------------------------
    # Faults

    def fail_next(self, count: int = 1, **criteria: Any) -> FaultRule:
        """See :meth:`Faults.fail_next`: e.g. ``kube.fail_next(2, code=409, resource="configmaps")``."""
        return self.faults.fail_next(count, **criteria)

    def conflict_next(self, resource: str, count: int = 1, *, name: str | None = None) -> FaultRule:
        """The next ``count`` updates/patches of ``resource`` (a plural) get the real 409 Conflict."""
        return self.faults.conflict_next(resource, count, name=name)

    def close_watches(self, resource: ResourceRef | None = None, *, expire: bool = False) -> int:
        """End open watch streams now (see :meth:`KubeEmulator.close_watches`); returns how many."""
        return self.handler.close_watches(
            None if resource is None else self.resource(resource), expire=expire
        )

    def compact(self, resource: ResourceRef | None = None) -> None:
        """Forget the watch history (etcd compaction): watching from any older resourceVersion is 410."""
        self.store.compact(None if resource is None else self.resource(resource))
