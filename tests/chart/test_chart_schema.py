"""values.schema.json refuses wrong values at install time, with a message that names the key."""

from __future__ import annotations

import json
from typing import Any

import helm_python
import pytest
import yaml
from chart_support import CHART_DIR, NAMESPACE, RELEASE, VALUE_SETS

BAD_VALUES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown log level", {"logLevel": "loud"}, "/logLevel"),
    ("unknown log format", {"logFormat": "xml"}, "/logFormat"),
    ("negative replicas", {"replicas": -1}, "/replicas"),
    ("unknown top-level key", {"replicaCount": 2}, "additional properties 'replicaCount' not allowed"),
    (
        "typo in a nested key",
        {"metrics": {"serviceMonitor": {"enabeld": True}}},
        "additional properties 'enabeld'",
    ),
    ("unknown cloud", {"azure": {"cloud": "Mars"}}, "/azure/cloud"),
    (
        "workload identity without client id",
        {"azure": {"workloadIdentity": {"enabled": True}}},
        "/azure/workloadIdentity/clientId",
    ),
    (
        "client id not a GUID",
        {"azure": {"workloadIdentity": {"enabled": True, "clientId": "my-identity"}}},
        "/azure/workloadIdentity/clientId",
    ),
    ("custom cloud without endpoints", {"azure": {"cloud": "Custom"}}, "/azure/resourceManagerEndpoint"),
    (
        "plain-http ARM endpoint",
        {"azure": {"resourceManagerEndpoint": "http://management.azure.com/"}},
        "/azure/resourceManagerEndpoint",
    ),
    ("namespace not a DNS label", {"watchNamespaces": ["Team_A"]}, "/watchNamespaces/0"),
    ("duplicate namespace", {"watchNamespaces": ["a", "a"]}, "/watchNamespaces"),
    (
        "duration as a string",
        {"settings": {"resyncIntervalSeconds": "5m"}},
        "/settings/resyncIntervalSeconds",
    ),
    ("latest image tag", {"image": {"tag": "latest"}}, "/image/tag"),
    ("port out of range", {"metrics": {"port": 70000}}, "/metrics/port"),
    ("pull policy", {"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
]


@pytest.mark.parametrize(("what", "values", "named"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_wrong_values_are_refused_by_install(what: str, values: dict[str, Any], named: str) -> None:
    # Chart.render is the install path: Helm validates the coalesced values before rendering.
    with helm_python.Chart.load(CHART_DIR) as chart, pytest.raises(helm_python.HelmValuesError) as refused:
        chart.render(values, name=RELEASE, namespace=NAMESPACE)
    assert named in str(refused.value), f"{what}: message does not name {named!r}: {refused.value}"


@pytest.mark.parametrize(("what", "values", "named"), BAD_VALUES[:3], ids=[b[0] for b in BAD_VALUES[:3]])
def test_wrong_values_fail_lint(what: str, values: dict[str, Any], named: str) -> None:
    report = helm_python.lint(CHART_DIR, values)
    assert any(named in error for error in report["errors"]), f"{what}: {report['errors']}"


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_supported_value_sets_pass_the_schema(name: str) -> None:
    with helm_python.Chart.load(CHART_DIR) as chart:
        chart.validate_schema(chart.merge_values(VALUE_SETS[name]))


def test_schema_is_strict_everywhere_the_chart_owns_the_shape() -> None:
    """Every object in values.yaml that the chart itself defines (not a Kubernetes passthrough such as
    resources or affinity) refuses unknown keys, so typos cannot be silently ignored."""
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    passthrough = {
        "podSecurityContext",
        "securityContext",
        "affinity",
        "nodeSelector",
        "podAnnotations",
        "podLabels",
        "resources/requests",
        "resources/limits",
        "serviceAccount/annotations",
        "metrics/service/annotations",
        "metrics/serviceMonitor/labels",
    }

    def walk(node: dict[str, Any], node_schema: dict[str, Any], path: str) -> None:
        assert set(node) <= set(node_schema.get("properties", {})), (
            f"{path or '/'}: keys missing from the schema"
        )
        for key, value in node.items():
            child_path = f"{path}/{key}".lstrip("/")
            if isinstance(value, dict) and child_path not in passthrough:
                child_schema = node_schema["properties"][key]
                assert child_schema.get("additionalProperties") is False, f"{child_path} accepts unknown keys"
                walk(value, child_schema, child_path)

    assert schema["additionalProperties"] is False
    walk(defaults, schema, "")
