"""Object validation the real API server applies to every write, for the Kubernetes API emulator.

Part of :mod:`foundry_emulator.kube`. Stands for the pieces of ``ValidateObjectMeta`` and the
per-kind validation an operator can trip over, with the exact messages of
``k8s.io/apimachinery/pkg/util/validation``:

* object names: DNS-1123 subdomains (DNS-1123 labels for namespaces) -- a FoundryDeployment
  called ``Kimi-K2.6`` is refused here exactly as by a real cluster;
* label keys and values, annotation keys;
* ConfigMap/Secret data keys (``[-._a-zA-Z0-9]+``), no key in both ``data`` and ``binaryData``,
  and the 1 MiB ConfigMap size limit;
* Secret ``stringData``, which the server folds into base64 ``data`` on write.

Custom resources get their schema/CEL validation through the admission hook instead
(see :mod:`foundry_emulator.kube_store`).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any

from foundry_emulator.kube_errors import field_error
from foundry_emulator.kube_resources import ResourceSpec

CONFIGMAP_MAX_BYTES = 1024 * 1024

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_QUALIFIED_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


def _is_qualified_name(part: str) -> bool:
    return bool(_QUALIFIED_NAME.match(part)) and len(part) <= 63


def go_strings(values: Iterable[str]) -> str:
    """Go's %#v of a []string, as in some validation messages."""
    return "[]string{" + ", ".join(json.dumps(v) for v in values) + "}"


def validate_object(spec: ResourceSpec, obj: dict[str, Any], *, creating: bool) -> list[dict[str, str]]:
    """The causes of a 422 for this object (empty if it is valid)."""
    causes: list[dict[str, str]] = []
    raw_meta = obj.get("metadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    name = str(meta.get("name", ""))
    if creating:
        if spec.group == "" and spec.plural == "namespaces":
            if not _LABEL.match(name):
                causes.append(field_error("metadata.name", value=name, detail=_LABEL_MSG))
            elif len(name) > 63:
                causes.append(
                    field_error("metadata.name", value=name, detail="must be no more than 63 characters")
                )
        elif not _SUBDOMAIN.match(name):
            causes.append(field_error("metadata.name", value=name, detail=_SUBDOMAIN_MSG))
        elif len(name) > 253:
            causes.append(
                field_error("metadata.name", value=name, detail="must be no more than 253 characters")
            )
    for what in ("labels", "annotations"):
        values = meta.get(what) or {}
        if not isinstance(values, dict):
            causes.append(field_error(f"metadata.{what}", "FieldValueTypeInvalid", detail="must be a map"))
            continue
        for key, value in values.items():
            prefix, _, part = str(key).rpartition("/")
            if (prefix and not _SUBDOMAIN.match(prefix)) or not _is_qualified_name(part):
                causes.append(field_error(f"metadata.{what}", value=key, detail=_QUALIFIED_MSG))
            if what == "labels" and (
                not isinstance(value, str) or not _LABEL_VALUE.match(value) or len(value) > 63
            ):
                causes.append(field_error("metadata.labels", value=value, detail=_LABEL_VALUE_MSG))
    if spec.group == "" and spec.plural in ("configmaps", "secrets"):
        size = 0
        for what in ("data", "binaryData") if spec.plural == "configmaps" else ("data",):
            values = obj.get(what) or {}
            if not isinstance(values, dict):
                causes.append(field_error(what, "FieldValueTypeInvalid", detail="must be a map"))
                continue
            for key, value in values.items():
                if not _CONFIG_KEY.match(str(key)) or len(str(key)) > 253:
                    causes.append(field_error(f"{what}[{key}]", value=key, detail=_CONFIG_KEY_MSG))
                size += len(str(key)) + len(str(value).encode())
        if spec.plural == "configmaps":
            overlap = set(obj.get("data") or {}) & set(obj.get("binaryData") or {})
            causes += [
                field_error(f"data[{key}]", "FieldValueDuplicate", value=key) for key in sorted(overlap)
            ]
            if size > CONFIGMAP_MAX_BYTES:
                causes.append(
                    field_error(
                        "", "FieldValueTooLong", detail=f"must have at most {CONFIGMAP_MAX_BYTES} bytes"
                    )
                )
    return causes


def fold_string_data(spec: ResourceSpec, obj: dict[str, Any]) -> None:
    # Secrets: stringData is a write-only convenience merged into data (base64) by the server.
    if spec.group == "" and spec.plural == "secrets" and isinstance(obj.get("stringData"), dict):
        data = dict(obj.get("data") or {})
        for key, value in obj.pop("stringData").items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data
