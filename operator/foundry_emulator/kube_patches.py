"""Patch application and list/watch selectors for the Kubernetes API emulator.

Part of :mod:`foundry_emulator.kube`. Each function stands for one real API-server behaviour:

* :func:`merge_patch` -- ``application/merge-patch+json`` (RFC 7386): objects merge recursively,
  ``null`` deletes a key, lists and scalars are replaced whole.
* :func:`json_patch` -- ``application/json-patch+json`` (RFC 6902): ordered ops including ``test``;
  a failed op is a 422 exactly as the real server answers (kopf relies on that for its
  ``test /metadata/resourceVersion`` precondition).
* ``application/strategic-merge-patch+json`` is served by :func:`merge_patch` for built-in kinds.
  The real strategic merge differs only for lists that have a patch strategy in the Go types
  (e.g. ``containers`` merged by ``name``, ``finalizers`` merged as a set); ConfigMaps, Secrets,
  Events, Leases and Namespaces have no such lists in practice, so this is the same result there.
  Custom resources do not support strategic merge on a real server (415), and neither here.
* :class:`LabelSelector` -- ``labelSelector=`` (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``,
  ``!key``) as ``k8s.io/apimachinery/pkg/labels`` parses and matches it.
* :class:`FieldSelector` -- ``fieldSelector=`` (``=``, ``==``, ``!=``) over the fields the real
  server indexes: ``metadata.name`` and ``metadata.namespace`` for everything, plus the
  per-resource extras passed in (e.g. ``involvedObject.name`` for Events, CRD
  ``selectableFields``); anything else is a 400 ``field label not supported`` like a real server.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonpatch
import jsonpointer

from foundry_emulator import kube_errors


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch; returns a new document (inputs are not mutated)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch; 400 if the body is not a list of ops, 422 if an op fails (as real)."""
    if not isinstance(ops, list) or not all(isinstance(op, Mapping) for op in ops):
        # jsonpatch.DecodePatch fails -> errors.NewBadRequest in the real patch handler.
        raise kube_errors.bad_request(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
            if isinstance(ops, Mapping)
            else "invalid JSON patch: the body must be a JSON array of operations"
        )
    try:
        return jsonpatch.apply_patch(copy.deepcopy(target), ops, in_place=True)
    except (
        jsonpatch.JsonPatchException,
        jsonpointer.JsonPointerException,
        KeyError,
        IndexError,
        TypeError,
    ) as e:
        raise kube_errors.unprocessable_patch(str(e) or type(e).__name__) from e


# ---------------------------------------------------------------------------------------------
# Label selectors (k8s.io/apimachinery/pkg/labels)


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value in self.values
        if self.op == "!=":
            return not present or value not in self.values
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        return not present  # "!"


_LABEL_KEY = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_SET_REQ = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)$")


def _split_top_level(text: str) -> list[str]:
    # Commas inside "(a,b)" belong to a set requirement, not to the requirement list.
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts]


def _check_key(key: str, raw: str) -> str:
    if not _LABEL_KEY.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
        raise kube_errors.bad_request(f"unable to parse requirement: {raw!r}: invalid label key {key!r}")
    return key


def _check_value(value: str, raw: str) -> str:
    if not _LABEL_VALUE.match(value) or len(value) > 63:
        raise kube_errors.bad_request(f"unable to parse requirement: {raw!r}: invalid label value {value!r}")
    return value


class LabelSelector:
    """A parsed ``labelSelector``; empty selects everything."""

    def __init__(self, text: str | None) -> None:
        self.text = text or ""
        self.requirements: list[_Requirement] = []
        if not self.text.strip():
            return
        for raw in _split_top_level(self.text):
            if not raw:
                raise kube_errors.bad_request(
                    f"unable to parse requirement: found '', expected: identifier in {text!r}"
                )
            self.requirements.append(self._parse(raw))

    @staticmethod
    def _parse(raw: str) -> _Requirement:
        if m := _SET_REQ.match(raw):
            values = frozenset(_check_value(v.strip(), raw) for v in m["values"].split(",") if v.strip())
            return _Requirement(_check_key(m["key"], raw), m["op"], values)
        if raw.startswith("!"):
            return _Requirement(_check_key(raw[1:].strip(), raw), "!", frozenset())
        for token, op in (("!=", "!="), ("==", "="), ("=", "=")):
            if token in raw:
                key, value = raw.split(token, 1)
                return _Requirement(
                    _check_key(key.strip(), raw), op, frozenset({_check_value(value.strip(), raw)})
                )
        return _Requirement(_check_key(raw, raw), "exists", frozenset())

    def matches(self, obj: Mapping[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(requirement.matches(labels) for requirement in self.requirements)


# ---------------------------------------------------------------------------------------------
# Field selectors (k8s.io/apimachinery/pkg/fields)

# Fields every resource supports (registry.DefaultClusterScopedAttr/DefaultNamespaceScopedAttr).
DEFAULT_FIELDS = ("metadata.name", "metadata.namespace")


def _lookup(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return ""
        value = value.get(part)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class FieldSelector:
    """A parsed ``fieldSelector``; only the fields listed in ``supported`` may be used."""

    def __init__(self, text: str | None, supported: Iterable[str] = DEFAULT_FIELDS) -> None:
        self.text = text or ""
        self.terms: list[tuple[str, bool, str]] = []  # (field, equal?, value)
        allowed = set(supported)
        if not self.text.strip():
            return
        for raw in _split_top_level(self.text):
            field, equal, value = self._parse_term(raw)
            if field not in allowed:
                raise kube_errors.bad_request(f"field label not supported: {field}")
            self.terms.append((field, equal, value))

    def _parse_term(self, raw: str) -> tuple[str, bool, str]:
        for token, equal in (("!=", False), ("==", True), ("=", True)):
            if token in raw:
                field, value = raw.split(token, 1)
                return field.strip(), equal, value.strip()
        raise kube_errors.bad_request(f"invalid selector: '{self.text}'; can't understand '{raw}'")

    def value_of(self, field: str) -> str | None:
        """The value of an equality term on ``field`` (used to narrow name-scoped watches)."""
        for name, equal, value in self.terms:
            if name == field and equal:
                return value
        return None

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for field, equal, value in self.terms:
            if (_lookup(obj, field) == value) != equal:
                return False
        return True
