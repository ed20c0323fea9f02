"""Object storage and write semantics of the Kubernetes API emulator (no HTTP here).

Part of :mod:`foundry_emulator.kube`; the HTTP layer (:mod:`foundry_emulator.kube_server`) and the
in-process test API (:class:`foundry_emulator.kube.KubeApiServer`) both go through this store, so
an object written by a test and one written by the operator over HTTP behave identically.

Real API-server behaviours this stands for (each also noted where it is implemented):

* System metadata: ``uid``, ``creationTimestamp``, ``resourceVersion`` (one cluster-wide,
  monotonically increasing counter, as etcd's revision; bumped on every write and rendered as a
  string), ``generation`` for CRs and CRDs (1 on create; +1 when anything outside ``metadata``
  -- and ``status`` when the status subresource exists -- changes; +1 when deletion starts).
* The status subresource: main-resource writes keep the stored ``.status``; ``/status`` writes
  change nothing but ``.status``; a CR ``create`` drops ``.status``.
* Optimistic concurrency: a write carrying a stale ``metadata.resourceVersion`` is a 409
  ``Conflict``; a PUT of a custom resource without one is a 422; writes without a precondition
  are retried internally against the latest object (``GuaranteedUpdate``).
* No-op writes do not bump ``resourceVersion`` and emit no watch event.
* Deletion: with finalizers only ``deletionTimestamp`` is set (once) and the object goes away on
  the write that removes the last finalizer; adding finalizers to a deleting object is refused.
* Namespace lifecycle: creating in a missing namespace is a 404, in a terminating one a 403;
  deleting a namespace deletes its contents and the namespace goes once they are gone.
* CRD lifecycle: a CRD object registers its resources (and gets ``Established`` status); deleting
  it deletes its instances (respecting their finalizers), then unregisters the resources.
* Garbage collection: once an owner is gone, dependents whose ``ownerReferences`` all point to
  deleted owners are deleted (background propagation; it runs right after the owner's removal
  instead of a second later).
* Validation the real server does for every object (names, labels, ConfigMap/Secret keys; see
  :mod:`foundry_emulator.kube_validation`); Secret ``stringData`` is folded into base64 ``data``.
* Admission: an optional defaulting hook and validating hook for custom resources (where the
  CRD structural schema + CEL validation of a real server plug in); errors become the real
  422 ``Invalid`` Status with ``details.causes``.
* Watch-event history per resource with a bounded window: watching from a resourceVersion older
  than the window is 410 ``Expired``, as the watch cache answers.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import inspect
import random
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import kmock

from foundry_emulator import kube_errors
from foundry_emulator.kube_errors import field_error
from foundry_emulator.kube_resources import (
    BUILTIN_RESOURCES,
    KOPF_PEERING_CRDS,
    ResourceRegistry,
    ResourceSpec,
    specs_from_crd,
)
from foundry_emulator.kube_validation import fold_string_data, go_strings, validate_object

JsonObj = dict[str, Any]
# admission(resource_plural, group, obj, old) -> FieldError-like items (mappings or objects with
# field/message/reason); may be sync or async. Empty means admitted.
AdmissionHook = Callable[[str, str, JsonObj, JsonObj | None], Iterable[Any] | Awaitable[Iterable[Any]]]
# defaulter(resource_plural, obj) -> obj; may be sync or async.
DefaulterHook = Callable[[str, JsonObj], JsonObj | Awaitable[JsonObj]]

DEFAULT_NAMESPACES: tuple[str, ...] = ("default", "kube-system", "kube-public", "kube-node-lease")
CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
NAMESPACE_FINALIZER = "kubernetes"

_GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand, no vowels
# Fields of ObjectMeta only the server sets (rest.BeforeCreate / FillObjectMetaSystemFields).
_SYSTEM_META = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)


def now_timestamp() -> str:
    """RFC 3339 at second precision in UTC, as metav1.Time serialises."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class WatchEvent:
    rv: int
    type: str  # ADDED / MODIFIED / DELETED
    obj: JsonObj
    old: JsonObj | None  # the previous state, for selector transitions (cacher semantics)


@dataclass
class EventHistory:
    """The watch window of one resource: the last ``limit`` events, oldest first."""

    limit: int
    events: deque[WatchEvent] = field(default_factory=deque)
    compacted_rv: int = 0  # watching from an RV below this is 410 Expired

    def append(self, event: WatchEvent) -> None:
        self.events.append(event)
        while len(self.events) > self.limit:
            self.compacted_rv = self.events.popleft().rv

    def after(self, rv: int) -> list[WatchEvent]:
        newer: list[WatchEvent] = []
        for event in reversed(self.events):
            if event.rv <= rv:
                break
            newer.append(event)
        newer.reverse()
        return newer


def _without_cleanup_finalizer(crd: JsonObj) -> JsonObj:
    finalizers = [f for f in _meta(crd).get("finalizers") or [] if f != CRD_CLEANUP_FINALIZER]
    return {**crd, "metadata": {**_meta(crd), "finalizers": finalizers}}


def _meta(obj: Mapping[str, Any]) -> JsonObj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _pending_finalizers(spec: ResourceSpec, obj: Mapping[str, Any]) -> list[str]:
    pending = list(_meta(obj).get("finalizers") or [])
    if spec.group == "" and spec.plural == "namespaces":
        pending += list((obj.get("spec") or {}).get("finalizers") or [])
    return pending


def _is_crd(spec: ResourceSpec) -> bool:
    return spec.group == "apiextensions.k8s.io" and spec.plural == "customresourcedefinitions"


def _is_namespace(spec: ResourceSpec) -> bool:
    return spec.group == "" and spec.plural == "namespaces"


def _content(spec: ResourceSpec, obj: Mapping[str, Any]) -> JsonObj:
    # What counts for metadata.generation: everything but metadata (and status with the subresource).
    skip = {"metadata", "status"} if spec.has_status else {"metadata"}
    return {k: v for k, v in obj.items() if k not in skip}


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class KubeStore:
    """All objects, the resourceVersion counter, watch histories, and the write pipeline.

    Writes are synchronous between their awaits (single event loop), so each commit is atomic;
    the only awaits are the admission/defaulting hooks, around which updates re-check that the
    object did not change meanwhile and retry (like the apiserver's GuaranteedUpdate).
    """

    def __init__(
        self,
        *,
        mirror: kmock.ObjectsArray | None = None,
        watch_history: int = 10_000,
        object_history: int = 20,
        namespaces: Iterable[str] = DEFAULT_NAMESPACES,
    ) -> None:
        self.registry = ResourceRegistry()
        self.admission: AdmissionHook | None = None
        self.defaulter: DefaulterHook | None = None
        self.watch_history = watch_history
        self.object_history = object_history
        self._mirror = mirror
        self._rv = 1
        self._objects: dict[tuple[str, str], dict[tuple[str | None, str], JsonObj]] = {}
        self._uids: dict[str, tuple[tuple[str, str], str | None, str]] = {}
        self._histories: dict[tuple[str, str], EventHistory] = {}
        self._changed = asyncio.Event()
        self._removed_uids: set[str] = set()
        self._reconciling = False
        for spec in BUILTIN_RESOURCES:
            self.registry.add(spec)
        ns_spec = self.registry.resolve("v1/namespaces")
        for name in namespaces:
            self.create_sync(ns_spec, None, {"metadata": {"name": name}})
        crd_spec = self.registry.resolve("customresourcedefinitions")
        for crd in KOPF_PEERING_CRDS:
            self.create_sync(crd_spec, None, crd)

    # -----------------------------------------------------------------------------------------
    # Reading

    @property
    def resource_version(self) -> int:
        return self._rv

    @property
    def changed(self) -> asyncio.Event:
        """Set (and replaced) on every committed write; capture it, then check, then wait."""
        return self._changed

    def history(self, spec: ResourceSpec) -> EventHistory:
        key = spec.storage_key
        if key not in self._histories:
            self._histories[key] = EventHistory(self.watch_history)
        return self._histories[key]

    def current(self, spec: ResourceSpec, namespace: str | None, name: str) -> JsonObj | None:
        """The stored object (do not mutate it: stored versions are shared with watch history)."""
        return self._objects.get(spec.storage_key, {}).get((namespace if spec.namespaced else None, name))

    def live(self, spec: ResourceSpec, namespace: str | None = None) -> list[JsonObj]:
        """Objects of a resource, ordered by (namespace, name) as etcd keys are."""
        objects = self._objects.get(spec.storage_key, {})
        keys = sorted(
            (k for k in objects if namespace is None or k[0] == namespace), key=lambda k: (k[0] or "", k[1])
        )
        return [objects[k] for k in keys]

    def present(self, spec: ResourceSpec, obj: JsonObj) -> JsonObj:
        """The object as served at ``spec.version`` (conversion strategy None: only apiVersion changes)."""
        if obj.get("apiVersion") == spec.api_version:
            return obj
        return {**obj, "apiVersion": spec.api_version}

    def _all_live(self) -> Iterator[tuple[ResourceSpec, JsonObj]]:
        for key, objects in list(self._objects.items()):
            spec = self.registry.storage_spec(*key)
            if spec is None:
                continue
            for obj in list(objects.values()):
                yield spec, obj

    # -----------------------------------------------------------------------------------------
    # Hooks

    async def _default(self, spec: ResourceSpec, obj: JsonObj) -> JsonObj:
        if self.defaulter is None or not spec.custom:
            return obj
        result = await _maybe_await(self.defaulter(spec.plural, obj))
        return obj if result is None else dict(result)

    async def _admit(self, spec: ResourceSpec, obj: JsonObj, old: JsonObj | None) -> None:
        if self.admission is None or not spec.custom:
            return
        errors = list(await _maybe_await(self.admission(spec.plural, spec.group, obj, old)) or [])
        if errors:
            raise kube_errors.invalid(spec.group, spec.kind, _meta(obj).get("name", ""), errors)

    # -----------------------------------------------------------------------------------------
    # Create

    def _check_kind(self, spec: ResourceSpec, obj: JsonObj) -> None:
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if api_version not in (None, "", spec.api_version, spec.storage_api_version):
            raise kube_errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({spec.api_version})"
            )
        if kind not in (None, "", spec.kind):
            raise kube_errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({spec.kind})"
            )

    def _check_namespace(self, spec: ResourceSpec, namespace: str, name: str) -> None:
        # The NamespaceLifecycle admission plugin.
        ns = self.current(self.registry.resolve("v1/namespaces"), None, namespace)
        if ns is None:
            raise kube_errors.not_found("", "namespaces", namespace)
        if _meta(ns).get("deletionTimestamp"):
            raise kube_errors.forbidden_message(
                spec.group,
                spec.plural,
                name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    def _prepare_create(self, spec: ResourceSpec, namespace: str | None, body: Any) -> JsonObj:
        if not isinstance(body, dict):
            raise kube_errors.bad_request("the body of the request must be a JSON object")
        obj = copy.deepcopy(body)
        self._check_kind(spec, obj)
        obj["apiVersion"] = spec.storage_api_version
        obj["kind"] = spec.kind
        meta = obj.get("metadata")
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise kube_errors.bad_request("metadata must be a JSON object")
        obj["metadata"] = meta
        name = str(meta.get("name") or "")
        if spec.namespaced:
            namespace = namespace or meta.get("namespace")
            if not namespace:
                raise kube_errors.method_not_allowed()
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise kube_errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
            self._check_namespace(spec, namespace, name)
        else:
            meta.pop("namespace", None)
        if not name:
            prefix = meta.get("generateName")
            if not prefix:
                raise kube_errors.invalid(
                    spec.group,
                    spec.kind,
                    "",
                    [
                        field_error(
                            "metadata.name", "FieldValueRequired", detail="name or generateName is required"
                        )
                    ],
                )
            while True:
                name = str(prefix) + "".join(random.choices(_GENERATE_CHARS, k=5))
                if self.current(spec, namespace, name) is None:
                    break
            meta["name"] = name
        for key in (*_SYSTEM_META, "selfLink", "managedFields"):
            meta.pop(key, None)
        if spec.has_status and (spec.custom or _is_crd(spec)):
            obj.pop("status", None)  # CR/CRD create ignores .status when the subresource exists
        fold_string_data(spec, obj)
        if _is_namespace(spec):
            obj["spec"] = {"finalizers": [NAMESPACE_FINALIZER]}
            obj["status"] = {"phase": "Active"}
        if _is_crd(spec):
            specs_from_crd(obj)  # 422 if malformed
            finalizers = list(meta.get("finalizers") or [])
            if CRD_CLEANUP_FINALIZER not in finalizers:
                meta["finalizers"] = [*finalizers, CRD_CLEANUP_FINALIZER]
            obj["status"] = self._crd_status(obj, None)
        causes = validate_object(spec, obj, creating=True)
        if causes:
            raise kube_errors.invalid(spec.group, spec.kind, name, causes)
        return obj

    def _commit_create(self, spec: ResourceSpec, obj: JsonObj) -> JsonObj:
        meta = obj["metadata"]
        namespace = meta.get("namespace") if spec.namespaced else None
        if self.current(spec, namespace, meta["name"]) is not None:
            raise kube_errors.already_exists(spec.group, spec.plural, meta["name"])
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_timestamp()
        if spec.tracks_generation:
            meta["generation"] = 1
        rv = self._next_rv()
        meta["resourceVersion"] = str(rv)
        self._put(spec, obj)
        self._uids[meta["uid"]] = (spec.storage_key, namespace, meta["name"])
        self._record(spec, WatchEvent(rv, "ADDED", obj, None))
        self._reconcile()
        return obj

    async def create(
        self, spec: ResourceSpec, namespace: str | None, body: Any, *, dry_run: bool = False
    ) -> JsonObj:
        obj = self._prepare_create(spec, namespace, body)
        if spec.custom:
            obj = await self._default(spec, obj)
            await self._admit(spec, obj, None)
        if dry_run:
            meta = obj["metadata"]
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now_timestamp())
            return obj
        return self._commit_create(spec, obj)

    def create_sync(self, spec: ResourceSpec, namespace: str | None, body: Any) -> JsonObj:
        """Create without the async hooks (bootstrap objects, CRDs registered by tests)."""
        return self._commit_create(spec, self._prepare_create(spec, namespace, body))

    # -----------------------------------------------------------------------------------------
    # Update (PUT, PATCH, /status)

    def _prepare_update(
        self, spec: ResourceSpec, current: JsonObj, candidate: Any, *, subresource: str | None, is_put: bool
    ) -> JsonObj:
        if subresource is not None and subresource not in spec.subresources:
            raise kube_errors.not_found_generic()  # e.g. /status of a CRD without the subresource
        if not isinstance(candidate, dict):
            raise kube_errors.bad_request("the body of the request must be a JSON object")
        candidate = copy.deepcopy(candidate)
        cmeta = candidate.get("metadata")
        if cmeta is None:
            cmeta = {}
        if not isinstance(cmeta, dict):
            raise kube_errors.bad_request("metadata must be a JSON object")
        cur_meta = _meta(current)
        name = cur_meta["name"]

        # Store.Update: the resourceVersion precondition. Unconditional updates are allowed for
        # built-ins (AllowUnconditionalUpdate) but not for custom resources.
        rv = cmeta.get("resourceVersion")
        if rv in (None, ""):
            if is_put and spec.custom:
                raise kube_errors.invalid(
                    spec.group,
                    spec.plural,
                    name,
                    [
                        {
                            "reason": "FieldValueInvalid",
                            "message": "Invalid value: 0x0: must be specified for an update",
                            "field": "metadata.resourceVersion",
                        }
                    ],
                )
        elif str(rv) != cur_meta["resourceVersion"]:
            raise kube_errors.conflict(spec.group, spec.plural, name)

        if cmeta.get("name") not in (None, "") and cmeta["name"] != name:
            raise kube_errors.bad_request(
                f"the name of the object ({cmeta['name']}) does not match the name on the URL ({name})"
            )
        if (
            spec.namespaced
            and cmeta.get("namespace") not in (None, "")
            and cmeta["namespace"] != cur_meta.get("namespace")
        ):
            raise kube_errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        self._check_kind(spec, candidate)

        if subresource == "status":
            # statusStrategy.PrepareForUpdate: copy the old object, take only .status from the new.
            new = copy.deepcopy(current)
            if "status" in candidate:
                new["status"] = candidate["status"]
            else:
                new.pop("status", None)
        elif subresource == "finalize" and _is_namespace(spec):
            new = copy.deepcopy(current)
            new["spec"] = {
                **(new.get("spec") or {}),
                "finalizers": list((candidate.get("spec") or {}).get("finalizers") or []),
            }
        elif subresource is None:
            new = candidate
            new["apiVersion"] = current["apiVersion"]
            new["kind"] = current["kind"]
            new["metadata"] = meta = cmeta
            meta["name"] = name
            if spec.namespaced:
                meta["namespace"] = cur_meta["namespace"]
            else:
                meta.pop("namespace", None)
            if meta.get("uid") not in (None, "") and meta["uid"] != cur_meta["uid"]:
                raise kube_errors.invalid(
                    spec.group,
                    spec.kind,
                    name,
                    [field_error("metadata.uid", value=meta["uid"], detail="field is immutable")],
                )
            # rest.BeforeUpdate: server-owned fields cannot be changed by an update.
            for key in _SYSTEM_META:
                if key in cur_meta:
                    meta[key] = cur_meta[key]
                else:
                    meta.pop(key, None)
            meta.pop("selfLink", None)
            meta.pop("managedFields", None)
            if spec.has_status:
                if "status" in current:
                    new["status"] = current["status"]
                else:
                    new.pop("status", None)
            if _is_namespace(spec):
                new["spec"] = {
                    **(new.get("spec") or {}),
                    "finalizers": (current.get("spec") or {}).get("finalizers", []),
                }
            if cur_meta.get("deletionTimestamp"):
                added = [
                    f for f in meta.get("finalizers") or [] if f not in (cur_meta.get("finalizers") or [])
                ]
                if added:
                    raise kube_errors.invalid(
                        spec.group,
                        spec.kind,
                        name,
                        [
                            field_error(
                                "metadata.finalizers",
                                "FieldValueForbidden",
                                detail="no new finalizers can be added if the object is being deleted, "
                                f"found new finalizers {go_strings(added)}",
                            )
                        ],
                    )
            fold_string_data(spec, new)
            if _is_crd(spec):
                specs_from_crd(new)
                new["status"] = self._crd_status(new, current.get("status"))
            causes = validate_object(spec, new, creating=False)
            if causes:
                raise kube_errors.invalid(spec.group, spec.kind, name, causes)
        else:
            raise kube_errors.not_found_generic()

        if spec.tracks_generation and subresource is None and _content(spec, new) != _content(spec, current):
            new["metadata"]["generation"] = int(cur_meta.get("generation") or 0) + 1
        return new

    def _commit_update(self, spec: ResourceSpec, current: JsonObj, new: JsonObj) -> JsonObj:
        rv = self._next_rv()
        new["metadata"]["resourceVersion"] = str(rv)
        if _meta(new).get("deletionTimestamp") and not _pending_finalizers(spec, new):
            # The write that removes the last finalizer deletes the object (shouldDeleteDuringUpdate).
            self._remove(spec, new, rv)
        else:
            self._put(spec, new)
            self._record(spec, WatchEvent(rv, "MODIFIED", new, current))
        self._reconcile()
        return new

    async def update(
        self,
        spec: ResourceSpec,
        namespace: str | None,
        name: str,
        mutate: Callable[[JsonObj], Any],
        *,
        subresource: str | None = None,
        is_put: bool = False,
        dry_run: bool = False,
    ) -> JsonObj:
        """Replace or patch: ``mutate(current)`` returns the candidate (PUT body or patched object)."""
        for _attempt in range(32):
            current = self.current(spec, namespace, name)
            if current is None:
                raise kube_errors.not_found(spec.group, spec.plural, name)
            new = self._prepare_update(spec, current, mutate(current), subresource=subresource, is_put=is_put)
            new = await self._default(spec, new)
            if new == current:
                return current  # a no-op write: no new resourceVersion, no watch event
            await self._admit(spec, new, current)
            if self.current(spec, namespace, name) is not current:
                continue  # changed while the hooks ran: redo against the latest version
            if dry_run:
                return new
            return self._commit_update(spec, current, new)
        raise kube_errors.conflict(spec.group, spec.plural, name)

    def update_sync(
        self,
        spec: ResourceSpec,
        namespace: str | None,
        name: str,
        mutate: Callable[[JsonObj], Any],
        *,
        subresource: str | None = None,
    ) -> JsonObj:
        current = self.current(spec, namespace, name)
        if current is None:
            raise kube_errors.not_found(spec.group, spec.plural, name)
        new = self._prepare_update(spec, current, mutate(current), subresource=subresource, is_put=False)
        return current if new == current else self._commit_update(spec, current, new)

    # -----------------------------------------------------------------------------------------
    # Delete

    def delete(
        self,
        spec: ResourceSpec,
        namespace: str | None,
        name: str,
        *,
        preconditions: Mapping[str, Any] | None = None,
        dry_run: bool = False,
    ) -> tuple[JsonObj, bool]:
        """Delete; returns (object, removed). With finalizers only ``deletionTimestamp`` is set."""
        current = self.current(spec, namespace, name)
        if current is None:
            raise kube_errors.not_found(spec.group, spec.plural, name)
        meta = _meta(current)
        if preconditions:
            uid = preconditions.get("uid")
            if uid and uid != meta.get("uid"):
                raise kube_errors.conflict(
                    spec.group,
                    spec.plural,
                    name,
                    f"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta.get('uid')}",
                )
            rv = preconditions.get("resourceVersion")
            if rv and str(rv) != meta.get("resourceVersion"):
                raise kube_errors.conflict(
                    spec.group,
                    spec.plural,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: {rv}, "
                    f"ResourceVersion in object meta: {meta.get('resourceVersion')}",
                )
        if meta.get("deletionTimestamp") or dry_run:
            return current, False  # already being deleted: nothing changes
        if _pending_finalizers(spec, current):
            new = copy.deepcopy(current)
            new_meta = new["metadata"]
            new_meta["deletionTimestamp"] = now_timestamp()
            new_meta["deletionGracePeriodSeconds"] = 0
            if spec.tracks_generation:
                new_meta["generation"] = int(new_meta.get("generation") or 0) + 1  # rest.BeforeDelete
            if _is_namespace(spec):
                new["status"] = {**(new.get("status") or {}), "phase": "Terminating"}
            rv = self._next_rv()
            new_meta["resourceVersion"] = str(rv)
            self._put(spec, new)
            self._record(spec, WatchEvent(rv, "MODIFIED", new, current))
            self._reconcile()
            return new, False
        rv = self._next_rv()
        final = {**current, "metadata": {**meta, "resourceVersion": str(rv)}}
        self._remove(spec, final, rv)
        self._reconcile()
        return final, True

    # -----------------------------------------------------------------------------------------
    # Storage primitives

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def notify(self) -> None:
        """Wake every watcher and waiter (used when watch streams are told to close)."""
        self._notify()

    def _record(self, spec: ResourceSpec, event: WatchEvent) -> None:
        self.history(spec).append(event)
        self._notify()

    def _mirror_key(self, spec: ResourceSpec, obj: JsonObj) -> tuple[kmock.resource, str | None, str]:
        meta = _meta(obj)
        version = spec.storage_version or spec.version
        return (
            kmock.resource(spec.group, version, spec.plural),
            meta.get("namespace") if spec.namespaced else None,
            meta["name"],
        )

    def _put(self, spec: ResourceSpec, obj: JsonObj) -> None:
        meta = _meta(obj)
        key = (meta.get("namespace") if spec.namespaced else None, meta["name"])
        self._objects.setdefault(spec.storage_key, {})[key] = obj
        if _is_crd(spec) and not meta.get("deletionTimestamp"):
            spec_of_crd = obj.get("spec") or {}
            self.registry.replace_crd(
                str(spec_of_crd.get("group")),
                str((spec_of_crd.get("names") or {}).get("plural")),
                specs_from_crd(obj),
            )
        if self._mirror is not None:
            # Keep kmock's ObjectsArray (with its version history) in step, for kmock-style assertions.
            mkey = self._mirror_key(spec, obj)
            if mkey in self._mirror:
                handle = self._mirror[mkey]
                handle.create(obj)
                if len(handle.history) > self.object_history:
                    del handle.history[: len(handle.history) - self.object_history]
            else:
                self._mirror[mkey] = obj

    def _remove(self, spec: ResourceSpec, final: JsonObj, rv: int) -> None:
        meta = _meta(final)
        key = (meta.get("namespace") if spec.namespaced else None, meta["name"])
        self._objects.get(spec.storage_key, {}).pop(key, None)
        self._uids.pop(meta.get("uid", ""), None)
        self._removed_uids.add(meta.get("uid", ""))
        if self._mirror is not None:
            mkey = self._mirror_key(spec, final)
            if mkey in self._mirror:
                self._mirror[mkey].delete()
        self._record(spec, WatchEvent(rv, "DELETED", final, None))
        if _is_crd(spec):
            names = (final.get("spec") or {}).get("names") or {}
            group = str((final.get("spec") or {}).get("group") or "")
            plural = str(names.get("plural") or "")
            self.registry.remove(group, plural)
            self._objects.pop((group, plural), None)

    def compact(self, spec: ResourceSpec | None = None) -> None:
        """Forget the watch history (like etcd compaction): older resourceVersions become 410 Expired."""
        specs = [spec] if spec is not None else [s for s in self.registry.all()]
        for item in specs:
            history = self.history(item)
            history.events.clear()
            history.compacted_rv = self._rv
        self._notify()

    # -----------------------------------------------------------------------------------------
    # Built-in controllers (run synchronously after every commit)

    @staticmethod
    def _crd_status(crd: JsonObj, previous: Any) -> JsonObj:
        # What the apiextensions controllers write: names accepted, Established, stored versions.
        spec = crd.get("spec") or {}
        names = dict(spec.get("names") or {})
        names.setdefault("singular", str(names.get("kind", "")).lower())
        names.setdefault("listKind", f"{names.get('kind', '')}List")
        storage = [
            v.get("name") for v in spec.get("versions") or [] if isinstance(v, dict) and v.get("storage")
        ]
        now = now_timestamp()
        status = {
            "acceptedNames": names,
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": now,
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": now,
                },
            ],
            "storedVersions": storage,
        }
        if isinstance(previous, dict) and {**previous, "conditions": None} == {**status, "conditions": None}:
            return previous  # unchanged: keep the transition times so that re-applying is a no-op
        return status

    def _reconcile(self) -> None:
        if self._reconciling:
            return
        self._reconciling = True
        try:
            for _round in range(1000):
                if not self._reconcile_once():
                    break
        finally:
            self._reconciling = False

    def _reconcile_once(self) -> bool:
        changed = False
        # Garbage collector: dependents of removed owners.
        if self._removed_uids:
            gone, self._removed_uids = self._removed_uids, set()
            for spec, obj in list(self._all_live()):
                refs = [r for r in _meta(obj).get("ownerReferences") or [] if isinstance(r, dict)]
                if not refs or _meta(obj).get("deletionTimestamp"):
                    continue
                if any(r.get("uid") in gone for r in refs) and not any(
                    r.get("uid") in self._uids for r in refs
                ):
                    self.delete(spec, _meta(obj).get("namespace"), _meta(obj)["name"])
                    changed = True
        # Namespace controller: empty a terminating namespace, then finalize it.
        ns_spec = self.registry.resolve("v1/namespaces")
        for ns in self.live(ns_spec):
            if not _meta(ns).get("deletionTimestamp"):
                continue
            name = _meta(ns)["name"]
            contents = [
                (s, o) for s, o in self._all_live() if s.namespaced and _meta(o).get("namespace") == name
            ]
            for spec, obj in contents:
                if not _meta(obj).get("deletionTimestamp"):
                    self.delete(spec, name, _meta(obj)["name"])
                    changed = True
            if not contents and (ns.get("spec") or {}).get("finalizers"):
                self.update_sync(
                    ns_spec, None, name, lambda cur: {"spec": {"finalizers": []}}, subresource="finalize"
                )
                changed = True
        # CRD finalizer controller: delete the instances of a terminating CRD, then let it go.
        crd_spec = self.registry.resolve("customresourcedefinitions")
        for crd in self.live(crd_spec):
            meta = _meta(crd)
            if not meta.get("deletionTimestamp") or CRD_CLEANUP_FINALIZER not in (
                meta.get("finalizers") or []
            ):
                continue
            group = str((crd.get("spec") or {}).get("group") or "")
            plural = str(((crd.get("spec") or {}).get("names") or {}).get("plural") or "")
            instances_spec = self.registry.storage_spec(group, plural)
            instances = self.live(instances_spec) if instances_spec is not None else []
            for obj in instances:
                if instances_spec is not None and not _meta(obj).get("deletionTimestamp"):
                    self.delete(instances_spec, _meta(obj).get("namespace"), _meta(obj)["name"])
                    changed = True
            if not instances:
                self.update_sync(crd_spec, None, meta["name"], _without_cleanup_finalizer)
                changed = True
        return changed
