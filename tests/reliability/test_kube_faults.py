"""Kubernetes misbehaving, on a real kube-apiserver: ConfigMap conflicts with a concurrent writer
(genuine 409s from the server), the ConfigMap deleted by hand, watch streams broken (by the fault
proxy) and the API server restarted (every watch ends; the new watch cache starts at the store's
current revision), API errors on writes (500/503 from the fault proxy: a real server does not
produce them on demand), and a FoundryDeployment deleted while Azure is still creating it. One
sandbox and one operator (logged in through the fault proxy) serve the whole module.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from kubernetes import client as k8s

from foundry_emulator.controlplane import ControlPlane
from foundry_emulator.controlplane.proxy import FaultProxy, RequestInfo
from foundry_emulator.sandbox import Sandbox, fast_settings
from tests.integration.conftest import arm_requests, azure_deployments, deployment
from tests.reliability.conftest import (
    LEDGER,
    account_docs,
    close_watches,
    converged,
    gone,
    kube_fail,
    proxied_operator,
    put_configmap,
    world,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SETTINGS = fast_settings(resync_interval_seconds=2.0, transient_retry_seconds=0.5)
# The operator reaches the server through the proxy, which forwards as admin: its requests are
# audited as "admin"; the tests' other writer has its own name.
OPERATOR = "admin"
OTHER = "other-writer"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def box(
    tmp_path_factory: pytest.TempPathFactory, control_plane: ControlPlane
) -> AsyncIterator[Sandbox]:
    async with world(tmp_path_factory.mktemp("kube-faults"), control_plane) as shared:
        await proxied_operator(shared, SETTINGS)
        yield shared


@pytest.fixture
def proxy(box: Sandbox) -> FaultProxy:
    return box.proxies[0]


@pytest.fixture(autouse=True)
def _clear_faults(box: Sandbox) -> Iterator[None]:
    yield
    box.proxies[0].clear()
    box.azure.faults.clear()


async def _accounts(box: Sandbox, namespace: str) -> None:
    await box.apply(account_docs(), namespace)
    for name in ("west", "east"):
        await box.wait_condition("FoundryAccount", namespace, name, timeout=20)


def _deployments(prefix: str, count: int) -> list[dict[str, Any]]:
    return [
        deployment(f"m{i}", "gpt-5.4", accounts=["west"], deploymentName=f"{prefix}-{i}", sku={"capacity": 5})
        for i in range(count)
    ]


async def test_configmap_conflicts_with_another_writer_keep_both_changes(
    box: Sandbox, proxy: FaultProxy
) -> None:
    namespace = "kf-conflict"
    await put_configmap(box, namespace, {"OTHER_WRITER_TICK": "0", "LOG_LEVEL": "info"})
    await _accounts(box, namespace)
    mark = box.kube.audit.mark()
    # Another tool with its own identity (and full rights), writing straight to the server.
    writer_identity = box.kube.user(OTHER, ("system:masters",))
    other = k8s.CoreV1Api(k8s.ApiClient(box.kube.client_configuration(user=writer_identity)))
    stop = asyncio.Event()
    ticks = {"last": 0}

    def write_tick(value: int) -> bool:
        current = other.read_namespaced_config_map("llm-config", namespace)
        current.data = {**(current.data or {}), "OTHER_WRITER_TICK": str(value)}
        try:
            other.replace_namespaced_config_map("llm-config", namespace, current)
        except k8s.exceptions.ApiException as exc:
            if exc.status != 409:
                raise
            return False
        return True

    async def other_writer() -> None:
        while not stop.is_set():
            value = ticks["last"] + 1
            if await asyncio.to_thread(write_tick, value):
                ticks["last"] = max(ticks["last"], value)
            await asyncio.sleep(0.01)

    # Besides the writer's own pace: right before four of the operator's updates reach the server,
    # the other writer's change lands first, so the operator's resourceVersion is stale and the
    # server itself answers 409 (nothing is injected).
    async def interleave(info: RequestInfo) -> None:
        LEDGER.counts["kube_interleaved_writes"] += 1
        ticks["last"] += 1000
        body = {"data": {"OTHER_WRITER_TICK": str(ticks["last"])}}
        await asyncio.to_thread(other.patch_namespaced_config_map, "llm-config", namespace, body)

    interleaved = proxy.before_next(
        4, interleave, verbs=("update",), resource="configmaps", namespace=namespace, name="llm-config"
    )
    writer = asyncio.create_task(other_writer())
    try:
        await box.apply(_deployments("cm", 6), namespace)
        for i in range(6):
            await box.wait_for(lambda i=i: converged(box, namespace, f"m{i}"), 40, what=f"m{i} Ready")
    finally:
        stop.set()
        await writer
    data = await box.config_map(namespace)
    assert data is not None
    # Both writers' changes: the other writer's last tick (each operator update came after some of
    # its ticks, so a blind write would have put an older tick back) and every operator key.
    assert data["OTHER_WRITER_TICK"] == str(ticks["last"]) and data["LOG_LEVEL"] == "info"
    assert all(data[f"FOUNDRY_DEPLOYMENT_M{i}"] == f"cm-{i}" for i in range(6))
    assert interleaved.remaining == 0 and interleaved.hits == 4
    audited = [
        e for e in box.kube.audit.since(mark) if e.resource == "configmaps" and e.namespace == namespace
    ]
    operator_writes = [e for e in audited if e.user == OPERATOR and e.is_write]
    # No blind write: the operator only ever replaced (never patched), and each of the four
    # interleaved replaces was refused by the server with 409, which only a replace carrying the
    # resourceVersion it had read can be (an unconditional replace of a ConfigMap succeeds).
    assert operator_writes and {e.verb for e in operator_writes} == {"update"}
    operator_conflicts = [e for e in operator_writes if e.status == 409]
    assert len(operator_conflicts) >= interleaved.hits
    assert [e for e in operator_writes if e.status == 200], "no update of the operator went through"
    real = [e for e in audited if e.status == 409]
    LEDGER.counts["kube_configmap_conflicts_survived"] += len(real)


async def test_configmap_deleted_by_hand_is_recreated_with_every_key(box: Sandbox) -> None:
    namespace = "kf-deleted"
    await _accounts(box, namespace)
    await box.apply(_deployments("del", 2), namespace)
    for i in range(2):
        await box.wait_for(lambda i=i: converged(box, namespace, f"m{i}"), 30, what=f"m{i} Ready")
    await asyncio.to_thread(box.core.delete_namespaced_config_map, "llm-config", namespace)
    LEDGER.counts["kube_configmaps_deleted_by_hand"] += 1

    async def recreated() -> dict[str, str] | None:
        data = await box.config_map(namespace)
        if data and all(f"FOUNDRY_DEPLOYMENT_M{i}" in data for i in range(2)) and "FOUNDRY_ENDPOINT" in data:
            return data
        return None

    data = await box.wait_for(recreated, 15, what="llm-config recreated")
    assert data["FOUNDRY_DEPLOYMENT_M0"] == "del-0" and data["FOUNDRY_DEPLOYMENT_M1"] == "del-1"
    # Azure was not touched to repair a Kubernetes-side loss.
    assert len([e for e in arm_requests(box, "PUT") if "/deployments/del-" in e["path"]]) == 2


async def test_watch_streams_broken_and_the_api_server_restarted_are_resumed(
    box: Sandbox, proxy: FaultProxy
) -> None:
    namespace = "kf-watch"
    await _accounts(box, namespace)
    await box.apply(_deployments("watch", 1), namespace)
    await box.wait_for(lambda: converged(box, namespace, "m0"), 30, what="m0 Ready")

    # Broken: the streams end (the proxy drops them); kopf watches again.
    mark = box.kube.audit.mark()
    assert close_watches(proxy) > 0
    await box.patch_spec("FoundryDeployment", namespace, "m0", {"sku": {"capacity": 6}})
    await box.wait_for(lambda: converged(box, namespace, "m0", capacity=6), 30, what="m0 updated")
    rewatched = box.kube.audit.since(mark)
    assert [e for e in rewatched if e.verb == "watch" and e.resource == "foundrydeployments"]

    # The API server restarted: every stream ends, requests are refused while it is down, and
    # the new server's watch cache starts at the store's current revision (an older
    # resourceVersion is "too old": 410 Gone). Blocking the loop for the restart is deliberate:
    # the processes must be started from the main thread; the operator sees a server gone quiet.
    mark = box.kube.audit.mark()
    box.kube.restart_apiserver()
    LEDGER.counts["kube_apiserver_restarts"] += 1
    await box.apply(
        [deployment("late", "gpt-5.4", accounts=["west"], deploymentName="watch-late")], namespace
    )
    await box.patch_spec("FoundryDeployment", namespace, "m0", {"sku": {"capacity": 7}})
    await box.wait_for(lambda: converged(box, namespace, "late"), 45, what="late Ready")
    await box.wait_for(lambda: converged(box, namespace, "m0", capacity=7), 30, what="m0 updated again")
    after = [e for e in box.kube.audit.since(mark) if e.user == OPERATOR]
    assert [e for e in after if e.verb == "watch" and e.resource == "foundrydeployments"]
    assert azure_deployments(box, "aucert-ai")["watch-0"].capacity == 7
    assert "watch-late" in azure_deployments(box, "aucert-ai")


async def test_api_errors_on_configmap_and_status_writes_are_retried(box: Sandbox, proxy: FaultProxy) -> None:
    namespace = "kf-errors"
    await _accounts(box, namespace)
    cm_errors = kube_fail(
        proxy, 2, 500, verbs=("create", "update"), resource="configmaps", namespace=namespace
    )
    status_errors = kube_fail(
        proxy,
        2,
        503,
        verbs=("patch",),
        resource="foundrydeployments",
        subresource="status",
        namespace=namespace,
    )
    await box.apply(_deployments("err", 1), namespace)
    await box.wait_for(lambda: converged(box, namespace, "m0"), 30, what="m0 Ready")
    assert cm_errors.remaining == 0 and status_errors.remaining == 0
    data = await box.config_map(namespace)
    assert data is not None and data["FOUNDRY_DEPLOYMENT_M0"] == "err-0"
    assert len([e for e in arm_requests(box, "PUT") if e["path"].endswith("/deployments/err-0")]) == 1


async def test_deleted_while_its_create_is_in_flight(box: Sandbox) -> None:
    namespace = "kf-inflight"
    await _accounts(box, namespace)
    await put_configmap(box, namespace, {"TEAM_OWNED_SETTING": "keep-me"})
    box.azure.state.scenario.timing.lroSeconds = 2.0
    try:
        await box.apply(
            [deployment("doomed", "gpt-5.4", accounts=["west"], deploymentName="doomed")], namespace
        )
        await box.wait_for(
            lambda: [
                e for e in arm_requests(box, "PUT", status=201) if e["path"].endswith("/deployments/doomed")
            ],
            20,
            what="the PUT accepted",
        )
        await box.delete("FoundryDeployment", namespace, "doomed")
    finally:
        box.azure.state.scenario.timing.lroSeconds = 0.3
    await box.wait_for(lambda: gone(box, namespace, "doomed"), 30, what="doomed gone")
    assert "doomed" not in azure_deployments(box, "aucert-ai")  # nothing paid for is left behind
    doomed = [e for e in arm_requests(box) if e["path"].endswith("/deployments/doomed")]
    assert [e["status"] for e in doomed if e["method"] == "PUT"] == [201]
    assert [e["status"] for e in doomed if e["method"] == "DELETE"] == [202]  # after the create ended
    assert not [e for e in doomed if e["status"] == 409]
    data = await box.config_map(namespace)
    assert data is not None and data.get("TEAM_OWNED_SETTING") == "keep-me"
    assert "FOUNDRY_DEPLOYMENT_DOOMED" not in data
