"""Admission as the cluster does it: every manifest the chart renders, for every values preset the
chart tests use, applied with server-side dry-run to the real kube-apiserver (its schemas, defaults
and admission plugins), and the operator's pod admitted by PodSecurity at the `restricted` level
(the release namespace labelled pod-security.kubernetes.io/enforce=restricted)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from tests.chart.chart_support import NAMESPACE, VALUE_SETS, one, render

from foundry_emulator.controlplane import ControlPlane
from foundry_emulator.sandbox import empty_cluster

# The Prometheus Operator's ServiceMonitor CRD is not vendored here: a permissive stand-in lets the
# server admit the object's envelope (apiVersion, kind, metadata); its spec is checked by the chart's
# own tests against the upstream schema, not here.
SERVICE_MONITOR_STAND_IN: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}


def kubectl(plane: ControlPlane, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert plane.binaries is not None and plane.state_dir is not None
    return subprocess.run(
        [str(plane.binaries / "kubectl"), "--kubeconfig", str(plane.state_dir / "kubeconfig"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="module")
def cluster(control_plane: ControlPlane) -> Any:
    control_plane.install_crds([SERVICE_MONITOR_STAND_IN])
    yield control_plane
    empty_cluster(control_plane.api_client())


def ensure_namespace(plane: ControlPlane, name: str, labels: dict[str, str] | None = None) -> None:
    core = k8s.CoreV1Api(plane.api_client())
    body = k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name, labels=labels or {}))
    try:
        core.create_namespace(body)
    except k8s.exceptions.ApiException as exc:
        if exc.status != 409:
            raise
        core.patch_namespace(name, {"metadata": {"labels": labels or {}}})


@pytest.mark.parametrize("preset", sorted(VALUE_SETS))
def test_every_rendered_manifest_is_admitted_by_the_real_server(cluster: ControlPlane, preset: str) -> None:
    docs = render(VALUE_SETS[preset])
    ensure_namespace(cluster, NAMESPACE, RESTRICTED)
    for namespace in {d["metadata"].get("namespace") for d in docs} - {None, NAMESPACE}:
        ensure_namespace(cluster, str(namespace))
    applied = kubectl(
        cluster,
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=chart-admission-test",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(docs),
    )
    assert applied.returncode == 0, f"{preset}: {applied.stderr}"
    kinds = sorted({f"{d['kind']}/{d['metadata']['name']}" for d in docs})
    assert len(applied.stdout.strip().splitlines()) == len(docs), (applied.stdout, kinds)
    assert "Warning" not in applied.stderr, f"{preset}: {applied.stderr}"


@pytest.mark.parametrize("preset", sorted(VALUE_SETS))
def test_the_operator_pod_is_admitted_at_the_restricted_pod_security_level(
    cluster: ControlPlane, preset: str, tmp_path: Path
) -> None:
    docs = render(VALUE_SETS[preset])
    ensure_namespace(cluster, NAMESPACE, RESTRICTED)
    # The pod's ServiceAccount must exist for the ServiceAccount admission plugin (a dry run of the
    # chart does not store it), so it is created for real; the sandbox clean-up removes it.
    account = one(docs, "ServiceAccount")
    k8s_core = k8s.CoreV1Api(cluster.api_client())
    try:
        k8s_core.create_namespaced_service_account(NAMESPACE, account)
    except k8s.exceptions.ApiException as exc:
        if exc.status != 409:
            raise
    template = one(docs, "Deployment")["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "chart-pod-template", "namespace": NAMESPACE, **template.get("metadata", {})},
        "spec": template["spec"],
    }
    created = kubectl(cluster, "create", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(pod))
    assert created.returncode == 0, f"{preset}: {created.stderr}"
    assert "PodSecurity" not in created.stderr, f"{preset}: {created.stderr}"
    admitted = json.loads(created.stdout)
    assert admitted["spec"]["securityContext"]["runAsNonRoot"] is True


def test_a_pod_that_breaks_the_restricted_level_is_refused(cluster: ControlPlane) -> None:
    """The negative control: the same namespace refuses a pod the restricted profile forbids."""
    ensure_namespace(cluster, NAMESPACE, RESTRICTED)
    # Without a controller-manager no namespace gets its `default` ServiceAccount: make it.
    try:
        k8s.CoreV1Api(cluster.api_client()).create_namespaced_service_account(
            NAMESPACE, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="default"))
        )
    except k8s.exceptions.ApiException as exc:
        if exc.status != 409:
            raise
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged", "namespace": NAMESPACE},
        "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]},
    }
    refused = kubectl(cluster, "create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod))
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr
