"""Watch semantics of the Kubernetes API emulator: resourceVersions, 410 Expired, timeouts, bookmarks."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import kubernetes.client
import kubernetes.watch
import pytest
from kube_fixtures import api_client, configmap, core, in_thread, kube, watch_lines

from foundry_emulator.kube import KubeApiServer

__all__ = ["api_client", "core", "kube"]  # fixtures imported for pytest

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def names(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in events]


async def test_watch_from_resource_version_streams_only_later_events(kube: KubeApiServer) -> None:
    await kube.create(configmap("before"))
    rv = kube.resource_version
    await kube.create(configmap("after"))
    await kube.patch("configmaps", "default", "before", {"data": {"x": "1"}})
    await kube.delete("configmaps", "default", "after")

    events = await watch_lines(f"{kube.url}{CONFIGMAPS}?watch=true&resourceVersion={rv}", limit=3)
    assert names(events) == [("ADDED", "after"), ("MODIFIED", "before"), ("DELETED", "after")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > rv


async def test_watch_without_resource_version_starts_with_synthetic_added(kube: KubeApiServer) -> None:
    await kube.create(configmap("a"))
    await kube.create(configmap("b"))
    url = f"{kube.url}{CONFIGMAPS}?watch=true"
    task = asyncio.create_task(watch_lines(url, limit=3))
    await kube.wait_until(lambda: kube.handler.open_watches == 1)
    await kube.create(configmap("c"))
    assert names(await task) == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]


async def test_watch_from_an_expired_resource_version_is_410(
    kube: KubeApiServer, core: kubernetes.client.CoreV1Api
) -> None:
    await kube.create(configmap("a"))
    old_rv = kube.resource_version
    await kube.create(configmap("b"))
    kube.compact()  # like etcd compaction: the history before now is gone

    events = await watch_lines(f"{kube.url}{CONFIGMAPS}?watch=true&resourceVersion={old_rv}")
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    assert status["message"].startswith(f"too old resource version: {old_rv} (")

    # The real client surfaces it as ApiException(410), which is what makes callers re-list.
    def watch_old() -> None:
        for _event in kubernetes.watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=str(old_rv), timeout_seconds=2
        ):
            pass

    with pytest.raises(kubernetes.client.ApiException) as exc:
        await in_thread(watch_old)
    assert exc.value.status == 410

    # Watching from the current resourceVersion is fine.
    current = kube.resource_version
    task = asyncio.create_task(
        watch_lines(f"{kube.url}{CONFIGMAPS}?watch=true&resourceVersion={current}", limit=1)
    )
    await kube.wait_until(lambda: kube.handler.open_watches == 1)
    await kube.create(configmap("c"))
    assert names(await task) == [("ADDED", "c")]


async def test_watch_history_window_expires_old_versions() -> None:
    async with KubeApiServer(watch_history=3) as kube:
        start = kube.resource_version
        for name in "abcde":
            await kube.create(configmap(name))
        events = await watch_lines(f"{kube.url}{CONFIGMAPS}?watch=true&resourceVersion={start}")
        assert events[0]["object"]["reason"] == "Expired"
        recent = kube.get("configmaps", "default", "b")["metadata"]["resourceVersion"]
        events = await watch_lines(f"{kube.url}{CONFIGMAPS}?watch=true&resourceVersion={recent}", limit=3)
        assert names(events) == [("ADDED", "c"), ("ADDED", "d"), ("ADDED", "e")]


async def test_timeout_seconds_ends_the_stream_after_a_bookmark(kube: KubeApiServer) -> None:
    started = time.monotonic()
    rv = kube.resource_version
    url = f"{kube.url}{CONFIGMAPS}?watch=true&resourceVersion={rv}&timeoutSeconds=1&allowWatchBookmarks=true"
    events = await watch_lines(url)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 3
    assert [e["type"] for e in events] == ["BOOKMARK"]
    assert events[0]["object"] == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": str(rv)},
    }
    # Without bookmarks, the stream just ends.
    assert await watch_lines(f"{kube.url}{CONFIGMAPS}?watch=true&resourceVersion={rv}&timeoutSeconds=1") == []


async def test_send_initial_events_ends_with_the_initial_events_bookmark(kube: KubeApiServer) -> None:
    await kube.create(configmap("a"))
    url = (
        f"{kube.url}{CONFIGMAPS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        "&allowWatchBookmarks=true"
    )
    events = await watch_lines(url, limit=2)
    assert names(events)[0] == ("ADDED", "a")
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_selectors_apply_to_watches_with_transitions(kube: KubeApiServer) -> None:
    await kube.create(configmap("a", labels={"app": "llm"}))
    rv = kube.resource_version
    await kube.create(configmap("b", labels={"app": "db"}))  # never visible
    await kube.patch("configmaps", "default", "a", {"metadata": {"labels": {"app": "other"}}})  # leaves
    await kube.patch("configmaps", "default", "b", {"metadata": {"labels": {"app": "llm"}}})  # enters
    await kube.patch("configmaps", "default", "b", {"data": {"k": "v"}})  # stays
    url = f"{kube.url}{CONFIGMAPS}?watch=true&resourceVersion={rv}&labelSelector=app%3Dllm"
    events = await watch_lines(url, limit=3)
    assert names(events) == [("DELETED", "a"), ("ADDED", "b"), ("MODIFIED", "b")]

    url = f"{kube.url}{CONFIGMAPS}?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Db"
    events = await watch_lines(url, limit=3)
    assert names(events) == [("ADDED", "b"), ("MODIFIED", "b"), ("MODIFIED", "b")]


async def test_close_watches_ends_streams_and_clients_resume(kube: KubeApiServer) -> None:
    rv = kube.resource_version
    task = asyncio.create_task(watch_lines(f"{kube.url}{CONFIGMAPS}?watch=true&resourceVersion={rv}"))
    await kube.wait_until(lambda: kube.handler.open_watches == 1)
    await kube.create(configmap("a"))
    assert kube.close_watches() == 1
    events = await task
    assert names(events) == [("ADDED", "a")]
    # Resuming from the last seen resourceVersion misses nothing written meanwhile.
    await kube.create(configmap("b"))
    last = events[-1]["object"]["metadata"]["resourceVersion"]
    assert names(await watch_lines(f"{kube.url}{CONFIGMAPS}?watch=true&resourceVersion={last}", limit=1)) == [
        ("ADDED", "b")
    ]

    # expire=True: the stream ends with 410, which makes clients re-list.
    await kube.wait_until(lambda: kube.handler.open_watches == 0)  # the client above hung up
    task = asyncio.create_task(
        watch_lines(f"{kube.url}{CONFIGMAPS}?watch=true&resourceVersion={kube.resource_version}")
    )
    await kube.wait_until(lambda: kube.handler.open_watches == 1)
    kube.close_watches("configmaps", expire=True)
    assert [(e["type"], e["object"].get("reason")) for e in await task] == [("ERROR", "Expired")]


async def test_kubernetes_client_watch(kube: KubeApiServer, core: kubernetes.client.CoreV1Api) -> None:
    created = await kube.create(configmap("a"))
    rv = created["metadata"]["resourceVersion"]

    def watch() -> list[tuple[str, str]]:
        seen = []
        for event in kubernetes.watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=1
        ):
            seen.append((event["type"], event["object"].metadata.name))
        return seen

    task = asyncio.create_task(in_thread(watch))
    await kube.wait_until(lambda: kube.handler.open_watches == 1)
    await kube.patch("configmaps", "default", "a", {"data": {"x": "y"}})
    assert await task == [("MODIFIED", "a")]
    assert json.loads(json.dumps(kube.requests.filter(verb="watch")[0].query))["resourceVersion"] == rv
