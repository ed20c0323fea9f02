"""Render the Helm chart with Helm's own engine (helm-python-sdk) and look into the result.

Rendering goes through ``helm_python.Chart.render``, which is Helm's install-time rendering: values
are coalesced with values.yaml and checked against values.schema.json first, exactly as
``helm install`` would, so a value the schema refuses fails here too.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "foundry-operator"
PEERING_CRDS = CHART_DIR / "charts" / "kopf-peering" / "crds" / "kopf-peering.yaml"
RELEASE = "foundry-operator"
NAMESPACE = "foundry-system"

Manifest = dict[str, Any]

WI_CLIENT_ID = "7f3c2b1a-0d9e-4c8b-a6f5-e4d3c2b1a098"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"

# The value sets the chart is rendered, linted and validated with. Each stands for an install a
# platform team would really run; e2e is the file tests/e2e/run.sh installs.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "workload-identity": {
        "azure": {"tenantId": TENANT_ID, "workloadIdentity": {"enabled": True, "clientId": WI_CLIENT_ID}},
    },
    "namespaced": {"watchNamespaces": ["team-a", "team-b"]},
    "namespaced-ha": {"watchNamespaces": ["team-a", "team-b"], "replicas": 2},
    "ha": {"replicas": 2},
    "us-government": {
        "azure": {
            "cloud": "AzureUSGovernment",
            "tenantId": TENANT_ID,
            "workloadIdentity": {"enabled": True, "clientId": WI_CLIENT_ID},
        },
    },
    "china": {"azure": {"cloud": "AzureChinaCloud"}},
    "monitoring-networkpolicy": {
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}},
        "networkPolicy": {
            "enabled": True,
            "metricsFrom": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
            ],
            "kubeApiServer": {"cidrs": ["20.10.0.4/32"]},
        },
    },
    "service-principal-ca-bundle": {
        "azure": {
            "tenantId": TENANT_ID,
            "credentialsSecret": "foundry-sp",
            "caBundle": {"configMap": "corp-ca"},
        },
        "rbac": {"secretNamespaces": ["team-a"]},
        "metrics": {"enabled": False},
        "imagePullSecrets": [{"name": "acr-pull"}],
        "image": {"digest": "sha256:" + "ab" * 32},
    },
    "e2e": yaml.safe_load((REPO_ROOT / "tests" / "e2e" / "values.yaml").read_text()),
}


def _freeze(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True)


@functools.cache
def _render_cached(frozen: str, namespace: str) -> tuple[tuple[str, str], ...]:
    with helm_python.Chart.load(CHART_DIR) as chart:
        rendered = chart.render(json.loads(frozen), name=RELEASE, namespace=namespace)
    return tuple(sorted(rendered.items()))


def render_files(values: dict[str, Any] | None = None, namespace: str = NAMESPACE) -> dict[str, str]:
    """Template path -> rendered text (NOTES.txt included). Cached: the chart is immutable in a run."""
    return dict(_render_cached(_freeze(values or {}), namespace))


def render(values: dict[str, Any] | None = None, namespace: str = NAMESPACE) -> list[Manifest]:
    """Every Kubernetes object the chart renders, parsed. Deep copies, so tests may mutate them."""
    docs: list[Manifest] = []
    for path, text in render_files(values, namespace).items():
        if not path.endswith((".yaml", ".yml")):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return copy.deepcopy(docs)


def objects(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[Manifest], kind: str) -> Manifest:
    found = objects(docs, kind)
    assert len(found) == 1, f"expected exactly one {kind}, found {len(found)}"
    return found[0]


def operator_container(docs: list[Manifest]) -> Manifest:
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    containers = [c for c in pod["containers"] if c["name"] == "operator"]
    assert len(containers) == 1
    return containers[0]


def env_of(container: Manifest) -> dict[str, Any]:
    """Container env as name -> value (or the valueFrom dict)."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def load_yaml_documents(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def iter_rules(role: Manifest) -> Iterator[tuple[str, str, frozenset[str]]]:
    """Flatten a (Cluster)Role into (apiGroup, resource, verbs) triples."""
    for rule in role.get("rules", []):
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                yield group, resource, frozenset(rule.get("verbs", []))
