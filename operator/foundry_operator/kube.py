"""Kubernetes I/O through the `kubernetes` client: Secrets for per-account credentials, and llm-config.

The client is synchronous; calls run in worker threads so the kopf event loop never blocks.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

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

if TYPE_CHECKING:
    from kubernetes.client import CoreV1Api

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


class _LazyCoreV1Api:
    """The `kubernetes` client's CoreV1Api, imported and built on its first use.

    Importing CoreV1Api costs about 21 MiB of RSS (kubernetes 37's generated API: the models of
    every core kind and a pydantic `validate_call` per method). The operator uses it only to read a
    Secret a FoundryAccount names and to read and write llm-config, so an operator that has not
    needed either yet does not carry it.
    """

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self._api_client = api_client
        self._api: CoreV1Api | None = None
        self._lock = threading.Lock()  # first uses may come from several worker threads at once

    def __getattr__(self, name: str) -> Any:
        api = self.__dict__.get("_api")
        if api is None:
            with self.__dict__["_lock"]:
                if self._api is None:
                    from kubernetes.client import CoreV1Api

                    self._api = CoreV1Api(self._api_client)
                api = self._api
        return getattr(api, name)


def lazy_core_v1_api(api_client: k8s.ApiClient) -> CoreV1Api:
    """A CoreV1Api over `api_client` whose import waits for its first call (see _LazyCoreV1Api)."""
    return cast("CoreV1Api", _LazyCoreV1Api(api_client))


async def read_principal(core: CoreV1Api, namespace: str, name: str) -> ServicePrincipal:
    secret = await asyncio.to_thread(core.read_namespaced_secret, name, namespace)
    data = {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}
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
        core: CoreV1Api,
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
                current = self._core.read_namespaced_config_map(name, namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                body = k8s.V1ConfigMap(
                    metadata=k8s.V1ObjectMeta(
                        name=name,
                        namespace=namespace,
                        annotations={
                            MANAGED_KEYS_ANNOTATION: desired_keys,
                            CONTENT_HASH_ANNOTATION: content_hash(rendering.data),
                        },
                        labels={"app.kubernetes.io/managed-by": "foundry-operator"},
                    ),
                    data=dict(rendering.data),
                )
                try:
                    self._core.create_namespaced_config_map(namespace, body)
                    self._metrics.configmap_writes.labels("created").inc()
                    return
                except ApiException as create_exc:
                    if create_exc.status == 409:  # created meanwhile by someone else: merge into it
                        self._metrics.configmap_writes.labels("conflict").inc()
                        continue
                    raise
            metadata = current.metadata or k8s.V1ObjectMeta()
            annotations = dict(metadata.annotations or {})
            existing = dict(current.data or {})
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
            metadata.annotations = annotations
            current.metadata = metadata
            current.data = merged
            try:
                # replace carries metadata.resourceVersion: a concurrent writer makes this a 409.
                self._core.replace_namespaced_config_map(name, namespace, current)
                self._metrics.configmap_writes.labels("updated").inc()
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
                self._metrics.configmap_writes.labels("conflict").inc()
        raise RuntimeError(
            f"ConfigMap {namespace}/{name} kept changing under us ({CONFLICT_RETRIES} conflicts)"
        )
