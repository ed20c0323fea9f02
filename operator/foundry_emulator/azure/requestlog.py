"""The request log that tests, the demo and the benchmark read: every Entra ID and ARM request,
with a monotonically increasing sequence number as a cursor (``?since=N``)."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from .errors import ArmError

# What handlers and middleware tell each other about a request.
PRINCIPAL = web.RequestKey("principal", str)  # client id of the caller
OPERATION = web.RequestKey("operation", str)  # ARM's read / write / delete
FAULT = web.RequestKey("fault", str)  # the injected effect
FAIL_OPERATION = web.RequestKey("fail_operation", ArmError)  # end this write's operation in Failed

# Bounded so that a long demo or benchmark run cannot grow the emulator without limit.
MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class LogEntry:
    seq: int
    timestamp: str
    method: str
    path: str
    query: dict[str, str]
    status: int | None  # None: the connection was dropped (an injected fault)
    durationMs: float
    principal: str | None  # client id, when known
    operation: str | None  # read / write / delete for ARM requests
    service: str  # "entra" or "arm"
    fault: str | None  # the injected effect, if any


class RequestLog:
    def __init__(self) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=MAX_ENTRIES)
        self._seq = 0

    def append(self, **fields: Any) -> LogEntry:
        self._seq += 1
        entry = LogEntry(seq=self._seq, **fields)
        self._entries.append(entry)
        return entry

    def since(self, seq: int) -> list[dict[str, Any]]:
        return [asdict(e) for e in self._entries if e.seq > seq]

    @property
    def last_seq(self) -> int:
        return self._seq

    def clear(self) -> None:
        """Forget the entries; sequence numbers keep counting so that old cursors stay valid."""
        self._entries.clear()
