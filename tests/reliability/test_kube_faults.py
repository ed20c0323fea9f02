"""Kubernetes misbehaving: ConfigMap conflicts with a concurrent writer, the ConfigMap deleted by
hand, watch streams broken (and expired), API errors on writes, and a FoundryDeployment deleted
while Azure is still creating it. One sandbox and one operator serve the whole module.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from kubernetes import client as k8s

from foundry_emulator.sandbox import Sandbox, fast_settings
from tests.integration.conftest import arm_requests, azure_deployments, deployment
from tests.reliability.conftest import (
    LEDGER,
    account_docs,
    close_watches,
    converged,
    gone,
    kube_conflict,
    kube_fail,
    put_configmap,
    world,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SETTINGS = fast_settings(resync_interval_seconds=2.0, transient_retry_seconds=0.5)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def box(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    async with world(tmp_path_factory.mktemp("kube-faults")) as shared:
        await shared.start_operator(SETTINGS)
        yield shared


@pytest.fixture(autouse=True)
def _clear_faults(box: Sandbox) -> Iterator[None]:
    yield
    box.kube.faults.clear()
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


async def test_configmap_conflicts_with_another_writer_keep_both_changes(box: Sandbox) -> None:
    namespace = "kf-conflict"
    await put_configmap(box, namespace, {"OTHER_WRITER_TICK": "0", "LOG_LEVEL": "info"})
    await _accounts(box, namespace)
    other = k8s.CoreV1Api(k8s.ApiClient(box.kube.client_configuration(user="other-writer")))
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

    # Besides the writer's own pace: right before four of the operator's updates reach the store,
    # another writer's change lands first (so the operator's resourceVersion is stale: a real 409).
    interleaved = {"left": 4}

    async def interleave(
        verb: str, group: str, resource: str, sub: str | None, ns: str | None, name: str | None, user: str
    ) -> bool:
        ours = user != "other-writer"
        if (
            ours
            and ns == namespace
            and resource == "configmaps"
            and verb == "update"
            and interleaved["left"] > 0
        ):
            interleaved["left"] -= 1
            LEDGER.counts["kube_interleaved_writes"] += 1
            ticks["last"] += 1000
            await box.kube.patch(
                "configmaps", ns, "llm-config", {"data": {"OTHER_WRITER_TICK": str(ticks["last"])}}
            )
        return True

    box.kube.authorizer = interleave
    writer = asyncio.create_task(other_writer())
    conflicts = kube_conflict(box, "configmaps", 3, name="llm-config")
    try:
        await box.apply(_deployments("cm", 6), namespace)
        for i in range(6):
            await box.wait_for(lambda i=i: converged(box, namespace, f"m{i}"), 40, what=f"m{i} Ready")
    finally:
        stop.set()
        await writer
        box.kube.authorizer = None
    data = await box.config_map(namespace)
    assert data is not None
    assert data["OTHER_WRITER_TICK"] == str(ticks["last"]) and data["LOG_LEVEL"] == "info"
    assert all(data[f"FOUNDRY_DEPLOYMENT_M{i}"] == f"cm-{i}" for i in range(6))
    assert conflicts.remaining == 0 and interleaved["left"] == 0
    real = box.kube.requests.filter(resource="configmaps", namespace=namespace, status=409)
    operator_conflicts = [e for e in real if e.user != "other-writer"]
    assert len(operator_conflicts) >= 4  # at least the interleaved writes; every one survived
    # No blind write: every update of the operator carried the resourceVersion it had read.
    operator_writes = [
        e
        for e in box.kube.requests.writes(resource="configmaps", namespace=namespace)
        if e.user != "other-writer" and e.verb != "create"
    ]
    assert all(e.verb == "update" for e in operator_writes)  # replace with resourceVersion, never a patch
    assert all((e.body or {}).get("metadata", {}).get("resourceVersion") for e in operator_writes)
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


async def test_watch_streams_broken_and_expired_are_resumed(box: Sandbox) -> None:
    namespace = "kf-watch"
    await _accounts(box, namespace)
    await box.apply(_deployments("watch", 1), namespace)
    await box.wait_for(lambda: converged(box, namespace, "m0"), 30, what="m0 Ready")
    watches_before = box.kube.requests.count(verb="watch", resource="foundrydeployments")

    # Broken: the streams end; kopf reconnects from the last resourceVersion it saw.
    assert close_watches(box) > 0
    await box.patch_spec("FoundryDeployment", namespace, "m0", {"sku": {"capacity": 6}})
    await box.wait_for(lambda: converged(box, namespace, "m0", capacity=6), 30, what="m0 updated")

    # Expired: the streams end with 410 Gone and the history is compacted; kopf lists again.
    assert close_watches(box, expire=True) > 0
    box.kube.compact()
    await box.apply(
        [deployment("late", "gpt-5.4", accounts=["west"], deploymentName="watch-late")], namespace
    )
    await box.patch_spec("FoundryDeployment", namespace, "m0", {"sku": {"capacity": 7}})
    await box.wait_for(lambda: converged(box, namespace, "late"), 30, what="late Ready")
    await box.wait_for(lambda: converged(box, namespace, "m0", capacity=7), 30, what="m0 updated again")
    assert box.kube.requests.count(verb="watch", resource="foundrydeployments") > watches_before
    assert azure_deployments(box, "aucert-ai")["watch-0"].capacity == 7


async def test_api_errors_on_configmap_and_status_writes_are_retried(box: Sandbox) -> None:
    namespace = "kf-errors"
    await _accounts(box, namespace)
    cm_errors = kube_fail(
        box, 2, code=500, verbs=("create", "update"), resource="configmaps", namespace=namespace
    )
    status_errors = kube_fail(
        box,
        2,
        code=503,
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
