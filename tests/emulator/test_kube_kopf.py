"""kopf itself, in-process, against the Kubernetes API emulator.

What it takes to embed kopf here: a fresh ``kopf.OperatorRegistry()`` has no login handlers (only
the default ``SmartOperatorRegistry`` has them), so each test registers ``@kopf.on.login`` returning
``kube.connection_info()`` -- or ``kopf.login_with_kubeconfig`` with ``KUBECONFIG`` set to
``kube.write_kubeconfig(...)``. ``standalone=True`` skips peering; ``ready_flag``/``stop_flag``
start and stop it. kopf 1.45 posts k8s Events only for explicit ``kopf.info/warn/event`` calls
(``settings.posting.loggers`` is off by default).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kopf
import pytest
from kube_fixtures import GROUP, configmap, kube, widget

from foundry_emulator.kube import KubeApiServer

__all__ = ["kube"]  # fixtures imported for pytest

FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"


def fresh_registry(kube: KubeApiServer) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kube.connection_info(user="system:serviceaccount:default:operator")

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Short server-side watch timeouts: kopf reconnects from its last resourceVersion.
        settings.watching.server_timeout = 5
        settings.watching.reconnect_backoff = 0.05

    return registry


@contextlib.asynccontextmanager
async def running(registry: kopf.OperatorRegistry, **options: Any) -> AsyncIterator[None]:
    stop = asyncio.Event()
    ready = asyncio.Event()
    options.setdefault("standalone", True)
    options.setdefault("clusterwide", True)
    task = asyncio.create_task(kopf.operator(registry=registry, stop_flag=stop, ready_flag=ready, **options))
    await asyncio.wait_for(ready.wait(), timeout=10)
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


def status_of(obj: dict[str, Any] | None) -> dict[str, Any]:
    return dict((obj or {}).get("status") or {})


async def test_kopf_create_update_delete_events_and_finalizer(kube: KubeApiServer) -> None:
    registry = fresh_registry(kube)
    updates: list[int] = []
    deletions: list[str] = []

    @kopf.on.create(GROUP, "v1", "widgets", registry=registry, id="create")
    def on_create(spec: kopf.Spec, body: kopf.Body, **_: Any) -> dict[str, Any]:
        kopf.info(body, reason="Created", message=f"size {spec['size']}")
        return {"size": spec["size"]}

    @kopf.on.update(GROUP, "v1", "widgets", registry=registry, id="update")
    def on_update(spec: kopf.Spec, meta: kopf.Meta, **_: Any) -> dict[str, Any]:
        updates.append(int(meta["generation"]))
        return {"size": spec["size"]}

    @kopf.on.delete(GROUP, "v1", "widgets", registry=registry, id="delete")
    def on_delete(name: str, **_: Any) -> None:
        deletions.append(name)

    async with running(registry):
        await kube.create(widget("w1", size=1))
        obj = await kube.wait_for(
            "widgets", "default", "w1", lambda o: status_of(o).get("create") == {"size": 1}
        )
        assert obj is not None and FINALIZER in obj["metadata"]["finalizers"]

        # The handler's result went through /status; main-resource patches carried no status.
        status_patches = kube.requests.filter(verb="patch", resource="widgets", subresource="status")
        assert status_patches and all(r.status == 200 for r in status_patches)
        main_patches = kube.requests.filter(verb="patch", resource="widgets", subresource=None)
        assert not any(isinstance(r.body, dict) and "status" in r.body for r in main_patches)
        assert {r.content_type for r in main_patches} <= {
            "application/merge-patch+json",
            "application/json-patch+json",
        }
        assert {r.user for r in main_patches} == {"system:serviceaccount:default:operator"}

        # A spec change bumps the generation, and kopf's on.update fires.
        await kube.patch("widgets", "default", "w1", {"spec": {"size": 2}})
        obj = await kube.wait_for(
            "widgets", "default", "w1", lambda o: status_of(o).get("update") == {"size": 2}
        )
        assert obj is not None and obj["metadata"]["generation"] == 2 and updates == [2]

        # The explicit kopf.info() became a core v1 Event about the object.
        await kube.wait_until(
            lambda: any(e["reason"] == "Created" for e in kube.list("v1/events", "default"))
        )
        event = next(e for e in kube.list("v1/events", "default") if e["reason"] == "Created")
        assert event["involvedObject"]["uid"] == obj["metadata"]["uid"] and event["message"] == "size 1"
        assert event["metadata"]["name"].startswith("kopf-event-")  # generateName

        # Deletion waits for kopf's finalizer, which kopf releases after on.delete.
        await kube.delete("widgets", "default", "w1")
        await kube.wait_for("widgets", "default", "w1", lambda o: o is None)
        assert deletions == ["w1"]


async def test_kopf_timer_and_daemon(kube: KubeApiServer) -> None:
    registry = fresh_registry(kube)
    daemon_runs: list[str] = []

    @kopf.timer(GROUP, "v1", "widgets", registry=registry, id="tick", interval=0.1)
    def tick(status: kopf.Status, patch: kopf.Patch, **_: Any) -> None:
        patch.status["ticks"] = int(status.get("ticks") or 0) + 1

    @kopf.daemon(GROUP, "v1", "widgets", registry=registry, id="daemon")
    async def daemon(name: str, stopped: kopf.DaemonStopped, **_: Any) -> None:
        daemon_runs.append(f"started {name}")
        await stopped.wait()
        daemon_runs.append(f"stopped {name}")

    async with running(registry):
        await kube.create(widget("w1"))
        await kube.wait_for("widgets", "default", "w1", lambda o: int(status_of(o).get("ticks") or 0) >= 3)
        assert daemon_runs == ["started w1"]
        await kube.delete("widgets", "default", "w1")
        await kube.wait_for("widgets", "default", "w1", lambda o: o is None)
        assert daemon_runs == ["started w1", "stopped w1"]


async def test_kopf_resumes_after_closed_and_expired_watches(kube: KubeApiServer) -> None:
    registry = fresh_registry(kube)

    @kopf.on.create(GROUP, "v1", "widgets", registry=registry, id="create")
    def on_create(name: str, **_: Any) -> str:
        return name

    def widget_watches() -> int:
        return len(kube.requests.filter(verb="watch", resource="widgets"))

    async with running(registry):
        await kube.create(widget("w1"))
        await kube.wait_for("widgets", "default", "w1", lambda o: status_of(o).get("create") == "w1")

        # The server drops the streams: kopf reconnects from its last resourceVersion.
        watches = widget_watches()
        assert kube.close_watches("widgets") >= 1
        await kube.create(widget("w2"))
        await kube.wait_for("widgets", "default", "w2", lambda o: status_of(o).get("create") == "w2")
        await kube.wait_until(lambda: widget_watches() > watches)
        assert all(
            r.query.get("resourceVersion") for r in kube.requests.filter(verb="watch", resource="widgets")
        )

        # History compacted and streams expired (410): kopf re-lists and carries on.
        lists = len(kube.requests.filter(verb="list", resource="widgets"))
        kube.compact()
        kube.close_watches(expire=True)
        await kube.create(widget("w3"))
        await kube.wait_for("widgets", "default", "w3", lambda o: status_of(o).get("create") == "w3")
        assert len(kube.requests.filter(verb="list", resource="widgets")) > lists


async def test_kopf_login_with_kubeconfig(
    kube: KubeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kubeconfig route: what `foundry-operator run` gets from KUBECONFIG (set before kopf starts).
    monkeypatch.setenv(
        "KUBECONFIG", str(kube.write_kubeconfig(tmp_path / "kubeconfig", user="kubeconfig-user"))
    )
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(kopf.login_with_kubeconfig)
    seen: list[str] = []

    @kopf.on.create("v1", "configmaps", registry=registry, id="seen", labels={"watched": "yes"})
    def on_configmap(name: str, **_: Any) -> None:
        seen.append(name)

    # A namespace glob makes kopf list and watch the cluster-scoped `namespaces` resource too.
    async with running(registry, clusterwide=False, namespaces=["def*"]):
        await kube.create(configmap("cm", labels={"watched": "yes"}))
        await kube.create(configmap("ignored"))
        await kube.wait_until(lambda: seen == ["cm"])
    assert kube.requests.filter(verb="watch", resource="namespaces")
    assert kube.requests.filter(verb="watch", resource="configmaps", namespace="default")
    assert {r.user for r in kube.requests.filter(resource="configmaps", verb="patch")} == {"kubeconfig-user"}


async def test_kopf_peering(kube: KubeApiServer) -> None:
    registry = fresh_registry(kube)
    await kube.create(
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "emulator"}}
    )
    async with running(registry, standalone=False, peering_name="emulator"):
        peering = await kube.wait_for("clusterkopfpeerings", None, "emulator", lambda o: bool(status_of(o)))
        assert peering is not None and len(status_of(peering)) == 1  # this operator's heartbeat
