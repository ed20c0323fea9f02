"""The API server's audit log, read back: what every client asked and what it was told.

The server writes one JSON event per request stage (policy: Metadata level for everything,
RequestReceived omitted). Tests and the benchmark count requests through it, e.g. the writes to
`llm-config` or the Secret reads of the operator's identity, from the server's own record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
"""


@dataclass(frozen=True)
class AuditEntry:
    audit_id: str
    stage: str  # ResponseStarted (watches), ResponseComplete, Panic
    verb: str
    user: str
    groups: tuple[str, ...]
    uri: str
    group: str | None
    resource: str | None
    subresource: str | None
    namespace: str | None
    name: str | None
    status: int | None
    reason: str | None

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS

    def matches(self, **criteria: Any) -> bool:
        """Every criterion equals the entry's field; a collection (list, set, tuple) is a choice."""
        for key, wanted in criteria.items():
            value = getattr(self, key)
            if isinstance(wanted, list | set | frozenset | tuple):
                if value not in wanted:
                    return False
            elif value != wanted:
                return False
        return True


def _entry(event: dict[str, Any]) -> AuditEntry:
    ref = event.get("objectRef") or {}
    user = event.get("user") or {}
    response = event.get("responseStatus") or {}
    return AuditEntry(
        audit_id=event.get("auditID", ""),
        stage=event.get("stage", ""),
        verb=event.get("verb", ""),
        user=user.get("username", ""),
        groups=tuple(user.get("groups") or ()),
        uri=event.get("requestURI", ""),
        group=ref.get("apiGroup") or None,
        resource=ref.get("resource"),
        subresource=ref.get("subresource"),
        namespace=ref.get("namespace"),
        name=ref.get("name"),
        status=response.get("code"),
        reason=response.get("reason"),
    )


class AuditLog:
    """The audit file as a list of requests: one entry per request, at its last stage so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._entries: dict[str, AuditEntry] = {}

    def _read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        self._offset += end
        for line in data[:end].splitlines():
            if line.strip():
                entry = _entry(json.loads(line))
                self._entries[entry.audit_id] = entry

    def __iter__(self) -> Iterator[AuditEntry]:
        self._read()
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        self._read()
        return len(self._entries)

    def mark(self) -> int:
        """A position: `since(mark)` gives the requests that came after it."""
        return len(self)

    def since(self, mark: int) -> list[AuditEntry]:
        return list(self)[mark:]

    def filter(self, **criteria: Any) -> list[AuditEntry]:
        return [entry for entry in self if entry.matches(**criteria)]

    def count(self, **criteria: Any) -> int:
        return len(self.filter(**criteria))

    def writes(self, **criteria: Any) -> list[AuditEntry]:
        return [entry for entry in self.filter(**criteria) if entry.is_write]
