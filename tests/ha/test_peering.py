"""Two operator replicas with kopf peering, on the real API server: exactly one is active; the active
one SIGKILLed in the middle of a long-running Azure operation is replaced by the standby within the
peering lifetime, without a second Azure write or a lost key; a rolling update (old and new replica
overlapping) writes nothing twice. The failover time is written to build/ha-figures.json.

The replicas run as the chart's ServiceAccount with the chart's RBAC for `replicas: 2` (its
peering rules included) enforced by the server, and its ClusterKopfPeering object; the audit log
shows they were refused nothing and used every peering grant."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from tests.chart.chart_support import iter_rules, one, render
from tests.controlplane_fixture import apply_chart_rbac
from tests.integration.conftest import ROOT, accounts, arm_requests, deployment, quick_scenario

from foundry_emulator.controlplane import ControlPlane
from foundry_emulator.sandbox import OperatorProcess, Sandbox, fast_settings, sandbox

NAMESPACE = "ha"
CHART_VALUES: dict[str, Any] = {"replicas": 2}
OPERATOR_USER = "system:serviceaccount:foundry-system:foundry-operator"
LIFETIME = 4.0  # seconds: short, so that the test measures a failover instead of waiting a minute
SETTINGS = fast_settings(peering_lifetime_seconds=LIFETIME)
FIGURES = ROOT / "build" / "ha-figures.json"


@pytest.fixture
async def box(tmp_path: Path, control_plane: ControlPlane) -> AsyncIterator[Sandbox]:
    async with sandbox(tmp_path, quick_scenario(), control_plane) as world:
        # The control plane serves the whole run: only this test's requests are judged.
        world.audit_mark = world.kube.audit.mark()  # type: ignore[attr-defined]
        token = await asyncio.to_thread(install_chart, world)
        world.replica_kubeconfig = world.operator_kubeconfig("chart-sa", token=token)  # type: ignore[attr-defined]
        try:
            yield world
        finally:
            custom = k8s.CustomObjectsApi(control_plane.api_client())
            await asyncio.to_thread(
                custom.delete_cluster_custom_object, "kopf.dev", "v1", "clusterkopfpeerings", peering_name()
            )


def peers(box: Sandbox) -> dict[str, Any]:
    custom = k8s.CustomObjectsApi(box.api)
    found = custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", peering_name())
    return dict(found.get("status") or {})


def peering_name() -> str:
    return str(one(render(CHART_VALUES), "ClusterKopfPeering")["metadata"]["name"])


def install_chart(box: Sandbox) -> str:
    """The chart's RBAC for two replicas and its ClusterKopfPeering; a token of its ServiceAccount."""
    token = apply_chart_rbac(box, CHART_VALUES)
    peering = one(render(CHART_VALUES), "ClusterKopfPeering")
    k8s.CustomObjectsApi(box.api).create_cluster_custom_object(
        "kopf.dev", "v1", "clusterkopfpeerings", peering
    )
    return token


async def replica(box: Sandbox, priority: int) -> OperatorProcess:
    return await box.start_operator_process(
        SETTINGS,
        args=("-A", "--peering", peering_name(), "--priority", str(priority)),
        kubeconfig=box.replica_kubeconfig,  # type: ignore[attr-defined]
    )


def peering_grants_used(box: Sandbox) -> None:
    """As the chart's ServiceAccount, nothing was refused, and every peering grant was used."""
    mark: int = box.audit_mark  # type: ignore[attr-defined]
    entries = [e for e in box.kube.audit.since(mark) if e.user == OPERATOR_USER and e.resource]
    assert entries, "no request of the chart's ServiceAccount in the audit log"
    assert [(e.verb, e.resource, e.namespace) for e in entries if e.status == 403] == []
    granted = {
        verb
        for group, resource, verbs in iter_rules(one(render(CHART_VALUES), "ClusterRole"))
        if resource == "clusterkopfpeerings"
        for verb in verbs
    }
    used = {e.verb for e in entries if e.resource == "clusterkopfpeerings"}
    assert used == granted, {"granted": sorted(granted), "used": sorted(used)}


def log_of(process: OperatorProcess) -> str:
    return process.log_path.read_text(errors="replace")


async def ready(box: Sandbox, name: str) -> bool:
    found = await box.condition("FoundryDeployment", NAMESPACE, name)
    return bool(found and found.get("status") == "True")


def puts(box: Sandbox, name: str) -> list[dict[str, Any]]:
    return [e for e in arm_requests(box, "PUT") if e["path"].endswith(f"/deployments/{name}")]


def record(figures: dict[str, Any]) -> None:
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    FIGURES.write_text(json.dumps({**known, **figures}, indent=2) + "\n")


async def test_the_standby_takes_over_a_long_running_create_without_writing_twice(box: Sandbox) -> None:
    active = await replica(box, priority=20)
    await box.wait_for(lambda: "Resuming operations" in log_of(active), 30, what="the first replica active")
    standby = await replica(box, priority=10)
    # A replica that finds a higher-priority peer at start stays paused (kopf logs only changes):
    # both keep-alives in the peering object say both run.
    await box.wait_for(lambda: len(peers(box)) == 2, 30, what="two peers in the peering object")
    await box.apply(accounts(), NAMESPACE)
    for name in ("aucert-ai", "aucert-ai-east"):
        await box.wait_condition("FoundryAccount", NAMESPACE, name, timeout=30)
    assert f"[{NAMESPACE}/" not in log_of(standby)  # it handled no object while paused

    box.azure.state.scenario.timing.lroSeconds = 8.0  # the create outlives the active replica
    await box.apply([deployment("chat", "gpt-5.4", keys=["CHAT"])], NAMESPACE)
    await box.wait_for(lambda: [e for e in puts(box, "gpt-5.4") if e["status"] == 201], 30, what="the PUT")
    resumes_before = log_of(standby).count("Resuming operations")
    await active.kill()
    killed = time.monotonic()

    await box.wait_for(
        lambda: log_of(standby).count("Resuming operations") > resumes_before,
        30,
        what="the standby to resume",
    )
    resumed = time.monotonic() - killed
    await box.wait_for(lambda: ready(box, "chat"), 60, what="chat Ready")
    converged = time.monotonic() - killed
    box.azure.state.scenario.timing.lroSeconds = 0.3

    assert len(puts(box, "gpt-5.4")) == 1, "the standby wrote the deployment again"
    assert arm_requests(box, status=409) == []
    data = await box.config_map(NAMESPACE)
    assert data is not None and data["FOUNDRY_DEPLOYMENT_CHAT"] == "gpt-5.4"
    peering_grants_used(box)
    assert resumed <= LIFETIME + 10  # the peering lifetime plus kopf's keep-alive and watch restart
    record(
        {
            "failover": {
                "peering_lifetime_seconds": LIFETIME,
                "resumed_after_kill_seconds": round(resumed, 2),
                "ready_after_kill_seconds": round(converged, 2),
            }
        }
    )


async def test_a_rolling_update_overlaps_old_and_new_replicas_without_double_writes(box: Sandbox) -> None:
    old = await replica(box, priority=10)
    await box.apply(accounts(), NAMESPACE)
    for name in ("aucert-ai", "aucert-ai-east"):
        await box.wait_condition("FoundryAccount", NAMESPACE, name, timeout=30)
    box.azure.state.scenario.timing.lroSeconds = 2.0
    models = ["gpt-5.4", "gpt-5.1-codex", "gpt-5.3-codex", "gpt-5.4-mini"]
    await box.apply([deployment(f"m{i}", model, keys=[f"M{i}"]) for i, model in enumerate(models)], NAMESPACE)
    await box.wait_for(lambda: arm_requests(box, "PUT"), 30, what="the first write")

    # The new replica starts while the old one is writing (maxSurge), then the old one is stopped.
    new = await replica(box, priority=20)
    await box.wait_for(lambda: "Pausing operations" in log_of(old), 30, what="the old replica to pause")
    await old.stop()
    for i in range(len(models)):
        await box.wait_for(lambda i=i: ready(box, f"m{i}"), 60, what=f"m{i} Ready")
    box.azure.state.scenario.timing.lroSeconds = 0.3

    # Each deployment written once. While both replicas run, the old one finishes the handlers it
    # had started (kopf pauses new work, not work in flight) and the new one starts its own: the
    # per-account write queue is per process, so a write of one may meet the other's operation on
    # the same account and be refused by Azure (409 RequestConflict: nothing written) and retried.
    for model in models:
        accepted = [e for e in puts(box, model) if e["status"] in (200, 201)]
        assert len(accepted) == 1, [(e["status"], e["timestamp"]) for e in puts(box, model)]
    refused = len(arm_requests(box, "PUT", status=409))
    record(
        {
            "rolling_update": {
                "deployments": len(models),
                "accepted_writes": len(models),
                "refused_409": refused,
            }
        }
    )
    data = await box.config_map(NAMESPACE)
    assert data is not None and {data[f"FOUNDRY_DEPLOYMENT_M{i}"] for i in range(len(models))} == set(models)
    assert new.process.returncode is None
