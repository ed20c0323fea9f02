"""The Kubernetes API server every Kubernetes-facing test runs against: a real kube-apiserver and
etcd (foundry_emulator.controlplane), one per test run, with the CRDs installed. Each sandbox
empties it when it ends (foundry_emulator.sandbox.empty_cluster)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from foundry_emulator.controlplane import ControlPlane
from foundry_emulator.sandbox import TEST_LABEL, Sandbox, crd_documents
from tests.chart.chart_support import objects, one, render

ROOT = Path(__file__).resolve().parents[1]


def peering_crds() -> list[dict[str, Any]]:
    text = (
        ROOT / "charts" / "foundry-operator" / "charts" / "kopf-peering" / "crds" / "kopf-peering.yaml"
    ).read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    # Started from pytest's main thread (the processes die with the thread that started them).
    plane = ControlPlane(Path(tmp_path_factory.mktemp("controlplane"))).start()
    try:
        # Ours, and kopf's peering CRDs (the chart ships them) for the HA tests.
        plane.install_crds([*crd_documents(), *peering_crds()])
        yield plane
    finally:
        plane.stop()


def apply_chart_rbac(box: Sandbox, values: dict[str, Any]) -> str:
    """The chart's RBAC for `values` on the server, as `helm install` would create it (cluster
    objects labelled for the sandbox's clean-up; the namespaces of its Roles made first), and a
    token of the chart's ServiceAccount, so that an operator logged in with it is held to exactly
    the chart's rules by the server's authorizer."""
    docs = render(values)
    rbac: Any = k8s.RbacAuthorizationV1Api(box.api)  # plain dicts as bodies, as kubectl sends
    core = k8s.CoreV1Api(box.api)
    key, value = TEST_LABEL.split("=")
    for kind, create in (
        ("ClusterRole", rbac.create_cluster_role),
        ("ClusterRoleBinding", rbac.create_cluster_role_binding),
    ):
        doc = one(docs, kind)
        doc["metadata"]["labels"][key] = value
        create(doc)
    for doc in objects(docs, "Role"):
        with contextlib.suppress(k8s.exceptions.ApiException):  # the namespace exists already
            core.create_namespace(
                k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=doc["metadata"]["namespace"]))
            )
        rbac.create_namespaced_role(doc["metadata"]["namespace"], doc)
    for doc in objects(docs, "RoleBinding"):
        rbac.create_namespaced_role_binding(doc["metadata"]["namespace"], doc)
    account = one(docs, "ServiceAccount")["metadata"]
    return box.kube.service_account_token(account["namespace"], account["name"])
