"""Injected faults: make chosen requests fail, slow down, lose their connection, or start a
long-running operation that ends in Failed.

A fault matches on method and a regular expression searched in the path, applies to ``count``
matching requests (or all of them) and, among those, to a ``probability`` share.
"""

from __future__ import annotations

import random
import re
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import ArmError


class FaultSpec(BaseModel):
    """The body of ``POST /_emulator/faults``."""

    model_config = ConfigDict(extra="forbid")

    method: str | None = None  # None: any method
    path: str = ".*"  # regex, searched in the request path (no query)
    # Respond at once with this status and an ARM error body (Entra paths get the same shape).
    status: int | None = Field(default=None, ge=400, le=599)
    code: str | None = None
    message: str | None = None
    retryAfter: int | None = Field(default=None, ge=0)
    delaySeconds: float | None = Field(default=None, ge=0)  # wait before answering (or failing)
    drop: bool = False  # abort the TCP connection without an answer
    # Accept the write, then end its long-running operation in Failed with code and message.
    failOperation: bool = False
    count: int | None = Field(default=None, ge=1)  # None: every matching request
    probability: float = Field(default=1.0, gt=0, le=1)

    @model_validator(mode="after")
    def _one_effect(self) -> FaultSpec:
        effects = [self.status is not None, self.drop, self.failOperation]
        if sum(effects) > 1:
            raise ValueError("choose one of status, drop and failOperation")
        if not any(effects) and self.delaySeconds is None:
            raise ValueError("a fault needs status, drop, failOperation or delaySeconds")
        if self.failOperation and (self.code is None or self.message is None):
            raise ValueError("failOperation needs code and message")
        re.compile(self.path)
        return self


Effect = Literal["status", "drop", "failOperation", "delay"]


class Fault:
    def __init__(self, spec: FaultSpec) -> None:
        self.id = str(uuid.uuid4())
        self.spec = spec
        self.remaining = spec.count
        self.hits = 0
        self._path = re.compile(spec.path)

    def matches(self, method: str, path: str) -> bool:
        if self.remaining == 0:
            return False
        if self.spec.method is not None and self.spec.method.upper() != method.upper():
            return False
        return self._path.search(path) is not None

    @property
    def effect(self) -> Effect:
        if self.spec.status is not None:
            return "status"
        if self.spec.drop:
            return "drop"
        return "failOperation" if self.spec.failOperation else "delay"

    def error(self) -> ArmError:
        spec = self.spec
        status = spec.status or 500
        return ArmError(
            status,
            spec.code or ("InternalServerError" if status >= 500 else "BadRequest"),
            spec.message or "Injected fault.",
            retry_after=spec.retryAfter,
        )

    def describe(self) -> dict[str, object]:
        return {"id": self.id, "hits": self.hits, "remaining": self.remaining, **self.spec.model_dump()}


class FaultSet:
    def __init__(self, rng: random.Random | None = None) -> None:
        self._faults: list[Fault] = []
        self._rng = rng or random.Random()

    def add(self, spec: FaultSpec) -> Fault:
        fault = Fault(spec)
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()

    def list(self) -> list[Fault]:
        return list(self._faults)

    def pick(self, method: str, path: str) -> Fault | None:
        """The first matching fault that fires for this request; it is charged one use."""
        for fault in self._faults:
            if not fault.matches(method, path):
                continue
            if fault.spec.probability < 1 and self._rng.random() >= fault.spec.probability:
                continue
            fault.hits += 1
            if fault.remaining is not None:
                fault.remaining -= 1
            return fault
        return None
