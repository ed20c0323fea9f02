"""Generate the CustomResourceDefinitions from the pydantic API models.

Pydantic emits JSON Schema with `$ref`s and `anyOf: [X, null]` for optional fields; a Kubernetes
structural schema needs every node typed and inline, so this module resolves references, folds
optionals into "not required", and keeps only the keywords the API server accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from foundry_operator.api import models

# Keywords of JSON Schema that a CRD's openAPIV3Schema accepts and that pydantic may emit.
_KEPT_KEYWORDS = {
    "type",
    "description",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "format",
    "default",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
}


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    printer_columns: tuple[dict[str, Any], ...]
    description: str


_READY_COLUMN = {
    "name": "Ready",
    "type": "string",
    "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
}
_AGE_COLUMN = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

KINDS: tuple[KindInfo, ...] = (
    KindInfo(
        kind="FoundryAccount",
        plural="foundryaccounts",
        singular="foundryaccount",
        short_names=("fa",),
        spec_model=models.FoundryAccountSpec,
        status_model=models.FoundryAccountStatus,
        printer_columns=(
            _READY_COLUMN,
            {"name": "Account", "type": "string", "jsonPath": ".spec.accountName"},
            {"name": "Region", "type": "string", "jsonPath": ".status.location"},
            {"name": "Kind", "type": "string", "jsonPath": ".status.kind"},
            {"name": "Primary", "type": "boolean", "jsonPath": ".spec.primary"},
            _AGE_COLUMN,
        ),
        description="An Azure AI Foundry account (Microsoft.CognitiveServices/accounts) that FoundryDeployments may be placed on.",
    ),
    KindInfo(
        kind="FoundryDeployment",
        plural="foundrydeployments",
        singular="foundrydeployment",
        short_names=("fdep",),
        spec_model=models.FoundryDeploymentSpec,
        status_model=models.FoundryDeploymentStatus,
        printer_columns=(
            _READY_COLUMN,
            {"name": "Account", "type": "string", "jsonPath": ".status.account"},
            {"name": "Region", "type": "string", "jsonPath": ".status.region"},
            {"name": "Model", "type": "string", "jsonPath": ".spec.model.name"},
            {"name": "Version", "type": "string", "jsonPath": ".status.modelVersion"},
            _AGE_COLUMN,
        ),
        description="A model deployment in Azure AI Foundry, placed where the model is offered and published to a ConfigMap.",
    ),
)


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline `$ref`s recursively."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = defs[node["$ref"].split("/")[-1]]
            merged = {**_resolve(target, defs), **{k: v for k, v in node.items() if k != "$ref"}}
            return _resolve(merged, defs)
        return {key: _resolve(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    return node


def _structural(node: dict[str, Any]) -> dict[str, Any]:
    """Turn one resolved pydantic schema node into a structural-schema node."""
    node = dict(node)
    # Optional[X] appears as anyOf [X, {type: null}]: the field is simply not required.
    if "anyOf" in node:
        variants = [variant for variant in node.pop("anyOf") if variant.get("type") != "null"]
        if len(variants) != 1:
            raise ValueError(f"cannot express a union in a structural schema: {variants}")
        inner = dict(variants[0])
        for key in ("description", "default", "x-kubernetes-validations"):
            if key in node:
                inner[key] = node[key]
        node = {**inner, **{k: v for k, v in node.items() if k not in inner}}
    if node.get("default", "absent") is None:
        del node["default"]
    if "const" in node:
        node["enum"] = [node.pop("const")]
        node.setdefault("type", "string")
    result: dict[str, Any] = {key: value for key, value in node.items() if key in _KEPT_KEYWORDS}
    # Field-level json_schema_extra puts item rules next to pydantic's own items schema: merge them.
    node_type = node.get("type")
    if node_type == "object" or "properties" in node:
        result["type"] = "object"
        properties = node.get("properties", {})
        if properties:
            result["properties"] = {name: _structural(prop) for name, prop in properties.items()}
        if isinstance(node.get("additionalProperties"), dict):
            result["additionalProperties"] = _structural(node["additionalProperties"])
        required = [name for name in node.get("required", []) if name in properties]
        if required:
            result["required"] = required
    elif node_type == "array":
        result["items"] = _structural(node.get("items", {}))
    elif node_type == "integer":
        result.setdefault("format", "int64")
    if "default" in result and isinstance(result["default"], dict | list) and not result["default"]:
        # `default: {}` on an object makes the API server fill nested defaults; keep it for objects only.
        if node_type != "object" and "properties" not in node:
            del result["default"]
    return result


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _structural(_resolve(raw, defs))


def build_crd(info: KindInfo) -> dict[str, Any]:
    spec_schema = openapi_schema(info.spec_model)
    spec_schema["description"] = (info.spec_model.__doc__ or "").strip() or spec_schema.get("description", "")
    status_schema = openapi_schema(info.status_model)
    status_schema["description"] = f"Observed state of the {info.kind}, written by the operator."
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{info.plural}.{models.GROUP}",
            "labels": {"app.kubernetes.io/part-of": "foundry-operator"},
        },
        "spec": {
            "group": models.GROUP,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": ["foundry"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": models.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": list(info.printer_columns),
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": info.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def crd_file_name(info: KindInfo) -> str:
    return f"{models.GROUP}_{info.plural}.yaml"


def render_crds() -> dict[str, str]:
    """File name -> YAML text of every CRD (deterministic, so a drift test can compare bytes)."""
    header = "# Generated by `make crds` from operator/foundry_operator/api/models.py. Do not edit.\n"
    return {
        crd_file_name(info): header + yaml.safe_dump(build_crd(info), sort_keys=False, width=120)
        for info in KINDS
    }


def write_crds(*folders: Path) -> list[Path]:
    written: list[Path] = []
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in render_crds().items():
            path = folder / name
            path.write_text(text)
            written.append(path)
    return written
