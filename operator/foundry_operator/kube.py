"""Kubernetes I/O through the `kubernetes` client: Secrets for per-account credentials, and llm-config.

The client is synchronous; calls run in worker threads so the kopf event loop never blocks.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient, Resource

from foundry_operator.azure.credentials import ServicePrincipal, principal_from_secret
from foundry_operator.metrics import Metrics
from foundry_operator.publishing import (
    CONTENT_HASH_ANNOTATION,
    MANAGED_KEYS_ANNOTATION,
    PublishedEntry,
    Rendering,
    content_hash,
    format_managed_keys,
    merge,
    parse_managed_keys,
    render,
)

logger = logging.getLogger(__name__)

CONFLICT_RETRIES = 10


def build_api_client() -> k8s.ApiClient:
    """In a pod: the service account. Elsewhere: KUBECONFIG or ~/.kube/config (read now, not at import)."""
    configuration = k8s.Configuration()
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)
    except k8s_config.ConfigException:
        # The client computes its default KUBECONFIG path when it is imported: read it now instead.
        k8s_config.load_kube_config(
            config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
        )
    return k8s.ApiClient(configuration)


def _plain(_client: DynamicClient, data: dict[str, Any]) -> dict[str, Any]:
    """A DynamicClient response as the JSON object it is (no ResourceInstance wrapper)."""
    return data


class _CoreKinds:
    """The DynamicClient's `resources` for the two core kinds the operator uses, known in advance:
    no discovery round trips at start-up, and no discovery cache file in the temp directory."""

    def __init__(self, client: DynamicClient, cache_file: str | None = None) -> None:
        self.config_maps = Resource(
            prefix="api",
            api_version="v1",
            kind="ConfigMap",
            name="configmaps",
            namespaced=True,
            client=client,
        )
        self.secrets = Resource(
            prefix="api", api_version="v1", kind="Secret", name="secrets", namespaced=True, client=client
        )


class KubeCore:
    """Secrets and ConfigMaps, through the official client's DynamicClient: JSON objects in and out.

    Not CoreV1Api: importing it costs about 21 MiB of RSS (kubernetes 37's generated API: the
    pydantic models of every core kind and a `validate_call` per method) for the four calls the
    operator makes, and it parses every ConfigMap read (1,000 entries at 1,000 objects) into
    models. The DynamicClient is already loaded with the `kubernetes` package, and it shares the
    ApiClient's configuration, authentication, TLS and error handling: a failed call raises an
    `ApiException` (kubernetes.dynamic's subclass of it) with the HTTP status, as CoreV1Api did.
    Calls are synchronous; callers run them in worker threads.
    """

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self._client = DynamicClient(api_client, discoverer=_CoreKinds)
        self._kinds: _CoreKinds = self._client.resources

    def read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        return self._request("get", self._kinds.secrets, name=name, namespace=namespace)

    def read_config_map(self, namespace: str, name: str) -> dict[str, Any]:
        return self._request("get", self._kinds.config_maps, name=name, namespace=namespace)

    def create_config_map(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("create", self._kinds.config_maps, body=body, namespace=namespace)

    def replace_config_map(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT: the body's metadata.resourceVersion makes a concurrent change a 409."""
        return self._request("replace", self._kinds.config_maps, body=body, name=name, namespace=namespace)

    def _request(self, verb: str, resource: Resource, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = getattr(self._client, verb)(resource, serializer=_plain, **kwargs)
        return result


async def read_principal(core: KubeCore, namespace: str, name: str) -> ServicePrincipal:
    secret = await asyncio.to_thread(core.read_secret, namespace, name)
    data = {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}
    return principal_from_secret(namespace, name, data)


@dataclass
class _ConfigMapState:
    entries: dict[str, PublishedEntry | None] = field(
        default_factory=dict
    )  # owner -> entry (None: withdrawn)
    primary: str | None = None
    generation: int = 0
    flushed_generation: int = -1
    last: Rendering = field(default_factory=lambda: Rendering({}))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    seeded: bool = False
    verified_at: float = float("-inf")  # when a flush last saw the ConfigMap hold `last`


class ConfigMapPublisher:
    """Coalesces many objects' changes into one write per ConfigMap, only when content changes.

    Entries come from handlers as they publish, and from the operator's index of FoundryDeployment
    statuses for objects not yet seen since start, so a restart never drops another object's keys.
    """

    def __init__(
        self,
        core: KubeCore,
        metrics: Metrics,
        debounce_seconds: float,
        verify_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._core = core
        self._metrics = metrics
        self._debounce = debounce_seconds
        self._verify_seconds = verify_seconds
        self._clock = clock
        self._states: defaultdict[tuple[str, str], _ConfigMapState] = defaultdict(_ConfigMapState)

    def known_configmaps(self, namespace: str) -> list[str]:
        return [name for (ns, name) in self._states if ns == namespace]

    async def publish(
        self,
        namespace: str,
        name: str,
        primary: str | None,
        seed: Iterable[PublishedEntry] = (),
        owner: str | None = None,
        entry: PublishedEntry | None = None,
    ) -> Rendering:
        """Record `owner`'s entry (None withdraws it) and wait until the ConfigMap reflects it.

        A resync republishes every object, most of them unchanged: an entry that is already in the
        ConfigMap, as a flush saw less than `verify_seconds` ago, returns at once instead of
        rendering every entry and reading the ConfigMap again (per object, that was quadratic in
        the number of objects). A ConfigMap edited by hand is still repaired within that time.
        """
        state = self._states[(namespace, name)]
        if not state.seeded:
            # kopf fills its indexes before any handler runs, so the first seed holds every
            # object published before a restart; later objects publish their own entries.
            for seeded in seed:
                state.entries.setdefault(seeded.owner, seeded)
            state.seeded = True
        if (
            owner is not None
            and owner in state.entries
            and state.entries[owner] == entry
            and state.primary == primary
            and state.flushed_generation == state.generation
            and self._clock() - state.verified_at < self._verify_seconds
        ):
            return state.last
        if owner is not None:
            state.entries[owner] = entry
        state.primary = primary
        state.generation += 1
        wanted = state.generation
        async with state.lock:
            if state.flushed_generation >= wanted:
                return state.last  # a flush that started after our change already wrote it
            await asyncio.sleep(self._debounce)  # let concurrent publishers join this write
            generation = state.generation
            entries = [e for e in state.entries.values() if e is not None]
            rendering = render(entries, state.primary, litellm=True)
            await asyncio.to_thread(self._write, namespace, name, rendering)
            state.flushed_generation = generation
            state.last = rendering
            state.verified_at = self._clock()
            return rendering

    def _write(self, namespace: str, name: str, rendering: Rendering) -> None:
        desired_keys = format_managed_keys(set(rendering.data))
        for _ in range(CONFLICT_RETRIES):
            try:
                current = self._core.read_config_map(namespace, name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                body = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": name,
                        "namespace": namespace,
                        "annotations": {
                            MANAGED_KEYS_ANNOTATION: desired_keys,
                            CONTENT_HASH_ANNOTATION: content_hash(rendering.data),
                        },
                        "labels": {"app.kubernetes.io/managed-by": "foundry-operator"},
                    },
                    "data": dict(rendering.data),
                }
                try:
                    self._core.create_config_map(namespace, body)
                    self._metrics.configmap_writes.labels("created").inc()
                    return
                except ApiException as create_exc:
                    if create_exc.status == 409:  # created meanwhile by someone else: merge into it
                        self._metrics.configmap_writes.labels("conflict").inc()
                        continue
                    raise
            metadata = current.get("metadata") or {}
            annotations = dict(metadata.get("annotations") or {})
            existing = dict(current.get("data") or {})
            merged = merge(
                existing, parse_managed_keys(annotations.get(MANAGED_KEYS_ANNOTATION)), rendering.data
            )
            digest = content_hash(merged)  # of everything the pods read, foreign keys included
            if (
                merged == existing
                and annotations.get(MANAGED_KEYS_ANNOTATION) == desired_keys
                and annotations.get(CONTENT_HASH_ANNOTATION) == digest
            ):
                self._metrics.configmap_writes.labels("unchanged").inc()
                return
            annotations[MANAGED_KEYS_ANNOTATION] = desired_keys
            annotations[CONTENT_HASH_ANNOTATION] = digest
            metadata["annotations"] = annotations
            current["metadata"] = metadata
            current["data"] = merged
            try:
                # replace carries metadata.resourceVersion: a concurrent writer makes this a 409.
                self._core.replace_config_map(namespace, name, current)
                self._metrics.configmap_writes.labels("updated").inc()
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
                self._metrics.configmap_writes.labels("conflict").inc()
        raise RuntimeError(
            f"ConfigMap {namespace}/{name} kept changing under us ({CONFLICT_RETRIES} conflicts)"
        )
