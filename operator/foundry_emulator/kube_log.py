"""Request log and fault injection for the Kubernetes API emulator.

Part of :mod:`foundry_emulator.kube`.

* :class:`RequestLog` is what a real API server's audit log gives you: every request with its
  HTTP shape (method, path, query, content type, status) and its Kubernetes attributes (the RBAC
  ``verb``, group, resource, subresource, namespace, name, user). Tests and the benchmark count
  e.g. the writes to ``llm-config`` with it.
* :class:`Faults` stands for the transient failures a real cluster produces and that an
  operator must survive: optimistic-concurrency conflicts from other writers (409), throttling
  (429), apiserver hiccups (500/503). Watch-stream closing and history compaction live on the
  server because they need the watch machinery (see ``KubeEmulator.close_watches``/``compact``).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from types import EllipsisType
from typing import Any

from foundry_emulator import kube_errors

WRITE_VERBS: frozenset[str] = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass
class LoggedRequest:
    """One request as the server saw it. ``status`` is None while it is still being served (watches)."""

    id: int
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    verb: str | None  # get/list/watch/create/update/patch/delete/deletecollection; None for discovery etc.
    group: str | None
    version: str | None
    resource: str | None
    subresource: str | None
    namespace: str | None
    name: str | None
    user: str
    body: Any = None
    status: int | None = None
    reason: str | None = None  # the Status reason of a failed request (Conflict, NotFound, ...)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS

    @property
    def duration(self) -> float | None:
        return None if self.finished is None else self.finished - self.started

    def matches(
        self,
        *,
        verb: str | Collection[str] | None = None,
        resource: str | None = None,
        subresource: str | EllipsisType | None = ...,
        namespace: str | None = None,
        name: str | None = None,
        group: str | None = None,
        method: str | None = None,
        status: int | None = None,
    ) -> bool:
        if verb is not None:
            verbs = {verb} if isinstance(verb, str) else set(verb)
            if self.verb not in verbs:
                return False
        if subresource is not ... and self.subresource != subresource:
            return False
        return (
            (resource is None or self.resource == resource)
            and (namespace is None or self.namespace == namespace)
            and (name is None or self.name == name)
            and (group is None or self.group == group)
            and (method is None or self.method.upper() == method.upper())
            and (status is None or self.status == status)
        )


class RequestLog(list[LoggedRequest]):
    """All requests, oldest first. A list, plus filters for the usual questions.

    ``subresource=...`` (the default) means "main resource or any subresource";
    pass ``None`` for the main resource only or ``"status"`` for status writes only.
    """

    def filter(self, **criteria: Any) -> list[LoggedRequest]:
        return [entry for entry in self if entry.matches(**criteria)]

    def count(self, *args: Any, **criteria: Any) -> int:  # type: ignore[override]
        if args:  # keep list.count(value) working for whoever expects a plain list
            return super().count(*args)
        return len(self.filter(**criteria))

    def writes(self, **criteria: Any) -> list[LoggedRequest]:
        """Writes (create/update/patch/delete/deletecollection), optionally narrowed further."""
        criteria.setdefault("verb", WRITE_VERBS)
        return self.filter(**criteria)

    def __iter__(self) -> Iterator[LoggedRequest]:
        # Iterate over a snapshot: the server appends while tests iterate in other coroutines.
        return iter(list(super().__iter__()))


@dataclass
class FaultRule:
    """Fail the next ``remaining`` requests that match, with ``code``."""

    remaining: int
    code: int
    verbs: frozenset[str]
    resource: str | None = None
    subresource: str | EllipsisType | None = ...
    namespace: str | None = None
    name: str | None = None

    def matches(self, entry: LoggedRequest) -> bool:
        return self.remaining > 0 and entry.matches(
            verb=self.verbs,
            resource=self.resource,
            subresource=self.subresource,
            namespace=self.namespace,
            name=self.name,
        )

    def error(self, entry: LoggedRequest) -> kube_errors.ApiError:
        group = entry.group or ""
        resource = entry.resource or ""
        name = entry.name or ""
        if self.code == 409:
            return kube_errors.conflict(group, resource, name)
        if self.code == 429:
            return kube_errors.too_many_requests()
        if self.code == 503:
            return kube_errors.service_unavailable()
        if self.code == 404:
            return kube_errors.not_found(group, resource, name)
        return kube_errors.internal_error("injected fault")


@dataclass
class Faults:
    """Pending injected failures, consumed first-registered-first."""

    rules: list[FaultRule] = field(default_factory=list)

    def fail_next(
        self,
        count: int = 1,
        *,
        code: int = 409,
        verbs: Collection[str] = ("update", "patch"),
        resource: str | None = None,
        subresource: str | EllipsisType | None = ...,
        namespace: str | None = None,
        name: str | None = None,
    ) -> FaultRule:
        """Make the next ``count`` matching requests fail with ``code`` (409, 429, 500, 503, 404).

        ``resource`` is the plural (``configmaps``); 409 renders the real ``Conflict`` Status.
        """
        rule = FaultRule(count, code, frozenset(verbs), resource, subresource, namespace, name)
        self.rules.append(rule)
        return rule

    def conflict_next(self, resource: str, count: int = 1, *, name: str | None = None) -> FaultRule:
        """The next ``count`` updates/patches of ``resource`` get ``409 Conflict``, as if someone else wrote first."""
        return self.fail_next(count, code=409, verbs=("update", "patch"), resource=resource, name=name)

    def take(self, entry: LoggedRequest) -> kube_errors.ApiError | None:
        for rule in self.rules:
            if rule.matches(entry):
                rule.remaining -= 1
                self.rules = [r for r in self.rules if r.remaining > 0]
                return rule.error(entry)
        return None

    def clear(self) -> None:
        self.rules.clear()
