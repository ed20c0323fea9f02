"""Validate a manifest the way the API server does: defaults, structural schema, unknown fields, CEL.

Used by the preflight `check`, by the tests (so they check what the API server will enforce) and
as the admission hook of the in-process Kubernetes API emulator. The rules come from the CRD's
own openAPIV3Schema, never from a second copy.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import celpy
import yaml

from foundry_operator.api import crdgen, models


@dataclass(frozen=True)
class FieldError:
    """One refusal: the field path as the API server prints it, and what is wrong with it."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    """kind -> openAPIV3Schema, generated from the models (identical to the checked-in CRDs)."""
    result: dict[str, dict[str, Any]] = {}
    for info in crdgen.KINDS:
        crd = yaml.safe_load(crdgen.render_crds()[crdgen.crd_file_name(info)])
        result[info.kind] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return result


def schema_for_kind(kind: str) -> dict[str, Any] | None:
    return _schemas().get(kind)


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Structural defaulting: fill absent fields that declare a default, recursively."""
    if isinstance(value, dict) and schema.get("type") == "object":
        for name, prop in schema.get("properties", {}).items():
            if name not in value and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
            if name in value:
                value[name] = apply_defaults(prop, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in list(value):
                if key not in schema.get("properties", {}):
                    value[key] = apply_defaults(extra, value[key])
    elif isinstance(value, list) and schema.get("type") == "array":
        return [apply_defaults(schema.get("items", {}), item) for item in value]
    return value


_TYPE_CHECKS: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def _type_name(value: Any) -> str:
    for name in ("boolean", "integer", "number", "string", "array", "object"):
        if _TYPE_CHECKS[name](value):
            return name
    return "null"


def _join(path: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{path}[{name}]"
    return f"{path}.{name}" if path else name


@cache
def _program(rule: str) -> Any:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


# Structural errors after which the API server evaluates no CEL rule at all (apiextensions'
# hasBlockingErr); any other structural error (pattern, minimum, ...) leaves every rule evaluated.
_BLOCKING = frozenset(
    {
        "FieldValueNotSupported",
        "FieldValueRequired",
        "FieldValueTooLong",
        "FieldValueTooMany",
        "FieldValueTypeInvalid",
    }
)
NOT_CHECKED = FieldError(
    "<nil>",
    "Invalid value: null: some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation",
)


def _cel_message(reason: str, message: str, value: Any) -> str:
    """The refusal as the API server words it for the rule's reason (it names the type, not the value)."""
    if reason == "FieldValueRequired":
        return f"Required value: {message}"
    if reason == "FieldValueForbidden":
        return f"Forbidden: {message}"
    if reason == "FieldValueDuplicate":  # the server drops the rule's message for this reason
        return f'Duplicate value: "{_type_name(value)}"'
    return f'Invalid value: "{_type_name(value)}": {message}'


_CelSite = tuple[dict[str, Any], Any, Any, str]


def _check_cel(schema: dict[str, Any], value: Any, old: Any, path: str, errors: list[FieldError]) -> None:
    for rule in schema.get("x-kubernetes-validations", []):
        uses_old = "oldSelf" in rule["rule"]
        if uses_old and old is None:
            continue  # transition rules apply to updates only, as in the API server
        activation = {"self": celpy.json_to_cel(value)}
        if uses_old:
            activation["oldSelf"] = celpy.json_to_cel(old)
        try:
            outcome = _program(rule["rule"]).evaluate(activation)
        except celpy.CELEvalError as exc:  # a rule that cannot evaluate refuses, as the API server does
            errors.append(
                FieldError(path or "<root>", f"rule {rule['rule']!r} could not be evaluated: {exc}")
            )
            continue
        if not bool(outcome):
            field = path + rule.get("fieldPath", "") if rule.get("fieldPath") else path
            reason = rule.get("reason", "FieldValueInvalid")
            message = rule.get("message", f"failed rule: {rule['rule']}")
            errors.append(FieldError(field or "<root>", _cel_message(reason, message, value), reason))


def _check_string(schema: dict[str, Any], value: str, path: str, errors: list[FieldError]) -> None:
    # Like the server (kube-openapi), only the first failing one of maxLength, minLength, pattern.
    if "maxLength" in schema and len(value.encode()) > schema["maxLength"]:
        message = f"Too long: may not be more than {schema['maxLength']} bytes"
        errors.append(FieldError(path, message, "FieldValueTooLong"))
    elif "minLength" in schema and len(value) < schema["minLength"]:
        message = (
            f'Invalid value: "{value}": {path} in body should be at least {schema["minLength"]} chars long'
        )
        errors.append(FieldError(path, message))
    elif "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(
            FieldError(path, f"Invalid value: \"{value}\": {path} in body should match '{schema['pattern']}'")
        )


def _validate(
    schema: dict[str, Any], value: Any, old: Any, path: str, errors: list[FieldError], sites: list[_CelSite]
) -> None:
    """The structural checks, worded as the server words them; where CEL rules apply is
    collected in `sites` for afterwards."""
    expected = schema.get("type")
    if expected and not _TYPE_CHECKS[expected](value):
        actual = _type_name(value)
        message = f'Invalid value: "{actual}": {path} in body must be of type {expected}: "{actual}"'
        errors.append(FieldError(path, message, "FieldValueTypeInvalid"))
        return
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(f'"{item}"' for item in schema["enum"])
        errors.append(
            FieldError(
                path, f'Unsupported value: "{value}": supported values: {allowed}', "FieldValueNotSupported"
            )
        )
    if isinstance(value, str):
        _check_string(schema, value, path, errors)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(
                FieldError(
                    path,
                    f"Invalid value: {value}: {path} in body should be greater than or equal to {schema['minimum']}",
                )
            )
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(
                FieldError(
                    path,
                    f"Invalid value: {value}: {path} in body should be less than or equal to {schema['maximum']}",
                )
            )
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(
                FieldError(
                    path,
                    f"Invalid value: {len(value)}: {path} in body should have at least {schema['minItems']} items",
                )
            )
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(
                FieldError(
                    path,
                    f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
                    "FieldValueTooMany",
                )
            )
        for index, item in enumerate(value):
            _validate(schema.get("items", {}), item, None, _join(path, index), errors, sites)
    if isinstance(value, dict):
        properties: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name in schema.get("required", []):
            if name not in value:
                errors.append(FieldError(_join(path, name), "Required value", "FieldValueRequired"))
        for name, item in value.items():
            if name in properties:
                old_item = old.get(name) if isinstance(old, dict) else None
                _validate(properties[name], item, old_item, _join(path, name), errors, sites)
            elif isinstance(extra, dict):
                _validate(extra, item, None, _join(path, name), errors, sites)
            elif properties and path != "metadata":
                # kubectl's default strict field validation refuses what pruning would silently drop
                # (the server answers 400 "strict decoding error: unknown field ...").
                errors.append(
                    FieldError(_join(path, name), f'unknown field "{_join(path, name)}"', "FieldValueInvalid")
                )
    if schema.get("x-kubernetes-validations"):
        sites.append((schema, value, old, path))


def validate_object(
    obj: dict[str, Any], old: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[FieldError]]:
    """Default and validate one foundry.llmops.io object. Returns (defaulted object, errors)."""
    kind = obj.get("kind")
    schema = schema_for_kind(str(kind))
    if obj.get("apiVersion") != models.API_VERSION or schema is None:
        return obj, [
            FieldError(
                "apiVersion/kind",
                f"not a {models.API_VERSION} FoundryAccount or FoundryDeployment: {obj.get('apiVersion')}/{kind}",
            )
        ]
    defaulted = apply_defaults(schema, copy.deepcopy(obj))
    errors: list[FieldError] = []
    metadata = defaulted.get("metadata") or {}
    if not metadata.get("name"):
        errors.append(FieldError("metadata.name", "Required value: name is required", "FieldValueRequired"))
    sites: list[_CelSite] = []
    _validate(schema, defaulted, old, "", errors, sites)
    if any(error.reason in _BLOCKING for error in errors):
        errors.append(NOT_CHECKED)  # as the server: no rule is evaluated, and it says so
    else:
        for site in sites:
            _check_cel(*site, errors)
    return defaulted, errors
