"""The control plane itself: a real kube-apiserver and etcd, started as envtest does, usable with
kubectl, restartable, audited, and gone afterwards; the fault proxy in front of it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from foundry_emulator.controlplane import ControlPlane, ControlPlaneUnavailable, binaries_dir
from foundry_emulator.controlplane.proxy import FaultProxy, request_info
from foundry_emulator.sandbox import empty_cluster

ROOT = Path(__file__).resolve().parents[2]
NS = "cp-tests"


def kubectl(
    plane: ControlPlane, *args: str, kubeconfig: Path | None = None
) -> subprocess.CompletedProcess[str]:
    assert plane.binaries is not None
    config = kubeconfig or plane.state_dir / "kubeconfig"  # type: ignore[operator]
    return subprocess.run(
        [str(plane.binaries / "kubectl"), "--kubeconfig", str(config), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.fixture
def clean(control_plane: ControlPlane) -> Any:
    yield control_plane
    empty_cluster(control_plane.api_client())


def test_it_is_a_real_kube_apiserver_of_the_pinned_release(control_plane: ControlPlane) -> None:
    version = k8s.VersionApi(control_plane.api_client()).get_code()
    assert version.git_version == "v1.34.4" == control_plane.version
    client = kubectl(control_plane, "version", "-o", "json")
    assert json.loads(client.stdout)["clientVersion"]["gitVersion"] == "v1.34.4"


def test_kubectl_apply_get_and_describe_the_examples(clean: ControlPlane) -> None:
    assert kubectl(clean, "create", "namespace", NS).returncode in (0, 1)  # 1: exists from an earlier test
    applied = kubectl(clean, "apply", "-n", NS, "-f", str(ROOT / "examples"))
    assert applied.returncode == 0, applied.stderr
    assert "foundrydeployment.foundry.llmops.io/reasoning-pro created" in applied.stdout
    table = kubectl(clean, "get", "fdep", "-n", NS)
    header = table.stdout.splitlines()[0].split()
    assert header == ["NAME", "READY", "ACCOUNT", "REGION", "MODEL", "VERSION", "AGE"]  # the printer columns
    assert any(line.split()[:2] == ["reasoning-pro", "gpt-5.4-pro"] for line in table.stdout.splitlines())
    described = kubectl(clean, "describe", "fdep", "reasoning-pro", "-n", NS)
    assert described.returncode == 0 and "gpt-5.4-pro" in described.stdout
    accounts = kubectl(clean, "get", "fa", "-n", NS, "-o", "name")
    assert sorted(accounts.stdout.split()) == [
        "foundryaccount.foundry.llmops.io/aucert-ai",
        "foundryaccount.foundry.llmops.io/aucert-ai-east",
    ]


def test_the_server_refuses_a_bad_manifest_with_the_crd_schema_and_cel(clean: ControlPlane) -> None:
    kubectl(clean, "create", "namespace", NS)
    bad = {
        "apiVersion": "foundry.llmops.io/v1alpha1",
        "kind": "FoundryDeployment",
        "metadata": {"name": "dup"},
        "spec": {"model": {"name": "gpt-5.4"}, "accounts": ["aucert-ai", "aucert-ai"]},
    }
    custom = k8s.CustomObjectsApi(clean.api_client())
    with pytest.raises(k8s.exceptions.ApiException) as refused:
        custom.create_namespaced_custom_object("foundry.llmops.io", "v1alpha1", NS, "foundrydeployments", bad)
    assert refused.value.status == 422
    assert "spec.accounts" in str(refused.value.body)


def test_rbac_is_enforced_for_a_service_account(clean: ControlPlane) -> None:
    token = clean.service_account_token(NS, "nobody")
    core = k8s.CoreV1Api(clean.api_client(token=token))
    with pytest.raises(k8s.exceptions.ApiException) as refused:
        core.list_namespaced_secret(NS)
    assert refused.value.status == 403
    denied = clean.audit.filter(user=f"system:serviceaccount:{NS}:nobody", resource="secrets", status=403)
    assert len(denied) == 1 and denied[0].verb == "list"


def test_restarting_the_apiserver_keeps_the_store(clean: ControlPlane) -> None:
    core = k8s.CoreV1Api(clean.api_client())
    kubectl(clean, "create", "namespace", NS)
    body = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="survives"), data={"A": "1"})
    core.create_namespaced_config_map(NS, body)
    port, pids = clean.port, clean.pids()
    clean.restart_apiserver()
    assert clean.port == port and clean.pids()[1] == pids[1] and clean.pids()[0] != pids[0]
    assert core.read_namespaced_config_map("survives", NS).data == {"A": "1"}


def test_nothing_is_left_running_after_stop(tmp_path: Path) -> None:
    plane = ControlPlane(tmp_path / "plane").start()
    pids = plane.pids()
    assert len(pids) == 2 and plane.running()
    plane.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_kubebuilder_assets_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    built = binaries_dir()
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(built))
    assert binaries_dir() == built
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    with pytest.raises(ControlPlaneUnavailable, match="has no kube-apiserver, etcd"):
        binaries_dir()


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api/v1/namespaces/a/configmaps/llm-config", "", ("get", "", "configmaps", None, "a")),
        ("GET", "/api/v1/namespaces/a/configmaps", "watch=true", ("watch", "", "configmaps", None, "a")),
        ("GET", "/api/v1/namespaces", "", ("list", "", "namespaces", None, None)),
        ("GET", "/api/v1/namespaces/a", "", ("get", "", "namespaces", None, None)),
        (
            "PATCH",
            "/apis/foundry.llmops.io/v1alpha1/namespaces/a/foundrydeployments/x/status",
            "",
            ("patch", "foundry.llmops.io", "foundrydeployments", "status", "a"),
        ),
        ("DELETE", "/api/v1/namespaces/a/secrets", "", ("deletecollection", "", "secrets", None, "a")),
    ],
)
def test_the_proxy_names_requests_as_rbac_does(
    method: str, path: str, query: str, expected: tuple[str, str, str, str | None, str | None]
) -> None:
    info = request_info(method, path, query)
    assert (info.verb, info.group, info.resource, info.subresource, info.namespace) == expected


async def test_fault_proxy_injects_errors_real_conflicts_and_broken_watches(clean: ControlPlane) -> None:
    kubectl(clean, "create", "namespace", NS)
    # The proxy forwards as its own identity (the client's certificate does not reach the server).
    proxy = await FaultProxy(clean, clean.user("proxied-client", ("system:masters",))).start()
    admin = k8s.CoreV1Api(clean.api_client())
    try:
        configuration = clean.client_configuration(clean.user("unused"))
        configuration.host = proxy.url
        via_proxy = k8s.CoreV1Api(k8s.ApiClient(configuration))
        body = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="contested"), data={"N": "0"})
        await asyncio.to_thread(via_proxy.create_namespaced_config_map, NS, body)

        failing = proxy.fail_next(1, code=503, verbs=("get",), resource="configmaps", namespace=NS)
        with pytest.raises(k8s.exceptions.ApiException) as injected:
            await asyncio.to_thread(via_proxy.read_namespaced_config_map, "contested", NS)
        assert injected.value.status == 503 and failing.remaining == 0

        # Another writer lands between our read and our write: the server itself answers 409.
        async def other_writer(_: object) -> None:
            await asyncio.to_thread(
                admin.patch_namespaced_config_map, "contested", NS, {"data": {"N": "other"}}
            )

        proxy.before_next(1, other_writer, verbs=("update",), resource="configmaps", name="contested")
        current = await asyncio.to_thread(via_proxy.read_namespaced_config_map, "contested", NS)
        current.data = {"N": "mine"}
        with pytest.raises(k8s.exceptions.ApiException) as conflict:
            await asyncio.to_thread(via_proxy.replace_namespaced_config_map, "contested", NS, current)
        assert conflict.value.status == 409
        assert clean.audit.count(user="proxied-client", verb="update", resource="configmaps", status=409) == 1

        # A watch through the proxy ends when the proxy drops it.
        stream = asyncio.create_task(
            asyncio.to_thread(
                via_proxy.list_namespaced_config_map,
                NS,
                watch=True,
                timeout_seconds=30,
                _preload_content=False,
            )
        )
        response = await stream
        await asyncio.sleep(0.3)
        assert proxy.close_watches() == 1
        remaining = await asyncio.to_thread(response.read)
        assert b"contested" in remaining  # the initial ADDED event, then the stream ended early
    finally:
        await proxy.stop()
