"""Fixtures and helpers for the Kubernetes API emulator tests (imported by tests/emulator/test_kube_*.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import aiohttp
import kubernetes.client
import pytest

from foundry_emulator.kube import KubeApiServer

T = TypeVar("T")

GROUP = "emulator.test"

# A namespaced test CRD with the status subresource (what kopf operators usually declare).
WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {
            "kind": "Widget",
            "plural": "widgets",
            "singular": "widget",
            "shortNames": ["wg"],
            "categories": ["toys"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}

# Without the status subresource: .status is part of the main resource (and of generation).
GADGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"gadgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Cluster",
        "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget"},
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


def widget(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec or {"size": 1},
    }


def configmap(
    name: str, namespace: str = "default", labels: dict[str, str] | None = None, **data: str
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


@pytest.fixture
async def kube() -> AsyncIterator[KubeApiServer]:
    async with KubeApiServer() as server:
        server.register_crd(WIDGET_CRD)
        server.register_crd(GADGET_CRD)
        yield server


@pytest.fixture
def api_client(kube: KubeApiServer) -> Iterator[kubernetes.client.ApiClient]:
    with kubernetes.client.ApiClient(kube.client_configuration()) as client:
        yield client


@pytest.fixture
def core(api_client: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(api_client)


@pytest.fixture
def custom(api_client: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api_client)


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking `kubernetes` client call off the loop, so that the emulator can answer it."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def api_error(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """Call a client method that must fail; return (HTTP status, the Status body)."""
    try:
        await in_thread(fn, *args, **kwargs)
    except kubernetes.client.ApiException as e:
        return int(e.status), json.loads(e.body or "{}")
    raise AssertionError("the call was expected to fail")


async def watch_lines(url: str, *, limit: int | None = None, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Read a watch stream until it ends (or `limit` events arrive); each line is one event."""
    events: list[dict[str, Any]] = []
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as rsp,
    ):
        assert rsp.status == 200, await rsp.text()
        async for line in rsp.content:
            if line.strip():
                events.append(json.loads(line))
                if limit is not None and len(events) >= limit:
                    break
    return events
