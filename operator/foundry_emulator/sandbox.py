"""A whole local world: the Azure emulator, a real Kubernetes API server, and the real operator.

`make demo`, the integration tests and the benchmark all use this, so the operator they exercise
is the production one: it reads Azure settings as it would from the environment and logs in to
Kubernetes through a kubeconfig; only the endpoints are local. The Kubernetes API is a real
kube-apiserver + etcd (foundry_emulator.controlplane), either started for this sandbox or shared
by many sandboxes (the test suites share one per run and empty it between tests).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml
from kubernetes import client as k8s

from foundry_emulator.azure import AzureEmulator, Scenario, default_scenario_path, load_scenario
from foundry_emulator.controlplane import ControlPlane
from foundry_emulator.controlplane.pki import KeyPair
from foundry_emulator.controlplane.proxy import FaultProxy
from foundry_operator.api.models import GROUP, VERSION
from foundry_operator.kube import build_api_client
from foundry_operator.metrics import Metrics
from foundry_operator.runner import RunOptions, serve
from foundry_operator.settings import AzureSettings, OperatorSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = REPO_ROOT / "crds"


def crd_paths() -> list[Path]:
    """The checked-in CRDs, or (installed without the repository) the generated ones."""
    return sorted(CRD_DIR.glob("*.yaml"))


def crd_documents() -> list[dict[str, Any]]:
    paths = crd_paths()
    if paths:
        return [yaml.safe_load(path.read_text()) for path in paths]
    from foundry_operator.api.crdgen import render_crds

    return [yaml.safe_load(text) for text in render_crds().values()]


@dataclass
class OperatorHandle:
    task: asyncio.Task[None]
    stop: asyncio.Event
    ready: asyncio.Event
    metrics: Metrics

    async def shutdown(self, timeout: float = 10.0) -> None:
        self.stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except (TimeoutError, asyncio.CancelledError):
            self.task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self.task


@dataclass
class OperatorProcess:
    """The operator as its own process (`python -m foundry_operator run`), for crashes and footprints."""

    process: asyncio.subprocess.Process
    log_path: Path

    async def kill(self) -> None:
        """SIGKILL: no handler, finalizer or write gets to finish, as in a crashed pod."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self, timeout: float = 15.0) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                await self.kill()


@dataclass
class Sandbox:
    azure: AzureEmulator
    kube: ControlPlane
    state_dir: Path
    api: k8s.ApiClient
    operators: list[OperatorHandle] = field(default_factory=list)
    processes: list[OperatorProcess] = field(default_factory=list)
    proxies: list[FaultProxy] = field(default_factory=list)

    @property
    def core(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api)

    @property
    def custom(self) -> k8s.CustomObjectsApi:
        return k8s.CustomObjectsApi(self.api)

    def azure_settings(self) -> AzureSettings:
        return AzureSettings(
            tenant_id=self.azure.tenant_id,
            client_id=self.azure.client_id,
            client_secret=self.azure.client_secret,
            authority_host=self.azure.url,
            resource_manager_endpoint=self.azure.url,
            resource_manager_audience="https://management.azure.com/",  # the emulator plays public Azure
            ca_bundle=str(self.azure.ca_file),
        )

    async def start_operator(
        self,
        settings: OperatorSettings | None = None,
        namespaces: Iterable[str] = (),
        wait_ready: bool = True,
        kubeconfig: Path | None = None,
    ) -> OperatorHandle:
        """The operator in this process. `kubeconfig`: log in with another identity or through the
        fault proxy (`operator_kubeconfig`); default: the sandbox's admin kubeconfig. In-process
        operators share the process's KUBECONFIG, so the last one started decides for kopf."""
        stop, ready, metrics = asyncio.Event(), asyncio.Event(), Metrics()
        os.environ["KUBECONFIG"] = str(kubeconfig or self.state_dir / "kubeconfig")
        api_client = build_api_client()  # from KUBECONFIG, as `foundry-operator run` does outside a pod
        task = asyncio.create_task(
            serve(
                RunOptions(namespaces=list(namespaces)),
                settings=settings or fast_settings(),
                azure=self.azure_settings(),
                api_client=api_client,
                metrics=metrics,
                stop_flag=stop,
                ready_flag=ready,
            )
        )
        handle = OperatorHandle(task, stop, ready, metrics)
        self.operators.append(handle)
        if wait_ready:
            await asyncio.wait_for(ready.wait(), 30)
        return handle

    def operator_environment(
        self, settings: OperatorSettings | None = None, kubeconfig: Path | None = None
    ) -> dict[str, str]:
        """The environment a deployed operator would get, pointing at the local endpoints."""
        azure = self.azure_settings()
        env = {key: value for key, value in os.environ.items() if not key.startswith(("AZURE_", "FOUNDRY_"))}
        env.update(
            KUBECONFIG=str(kubeconfig or self.state_dir / "kubeconfig"),
            AZURE_TENANT_ID=str(azure.tenant_id),
            AZURE_CLIENT_ID=str(azure.client_id),
            AZURE_CLIENT_SECRET=str(azure.client_secret),
            AZURE_AUTHORITY_HOST=azure.authority_host,
            AZURE_RESOURCE_MANAGER_ENDPOINT=azure.resource_manager_endpoint,
            AZURE_RESOURCE_MANAGER_AUDIENCE=str(azure.resource_manager_audience),
            REQUESTS_CA_BUNDLE=str(azure.ca_bundle),
            SSL_CERT_FILE=str(azure.ca_bundle),
        )
        for name, value in (settings or fast_settings()).model_dump().items():
            env[f"FOUNDRY_{name.upper()}"] = str(value)
        return env

    async def start_operator_process(
        self,
        settings: OperatorSettings | None = None,
        args: Iterable[str] = ("-A", "--standalone"),
        kubeconfig: Path | None = None,
    ) -> OperatorProcess:
        log_path = self.state_dir / f"operator-{len(self.processes)}.log"
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "foundry_operator",
                "run",
                *args,
                env=self.operator_environment(settings, kubeconfig),
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        handle = OperatorProcess(process, log_path)
        self.processes.append(handle)
        return handle

    def operator_kubeconfig(
        self, name: str, identity: KeyPair | None = None, token: str | None = None, server: str | None = None
    ) -> Path:
        """A kubeconfig for an operator: another identity (a client certificate or a token), and/or
        another server URL (the fault proxy's)."""
        return self.kube.write_kubeconfig(self.state_dir / f"kubeconfig-{name}", identity, token, server)

    async def fault_proxy(self, identity: KeyPair | None = None) -> FaultProxy:
        """A fault proxy in front of the API server, forwarding as `identity` (default: admin);
        stopped with the sandbox. Point an operator at it with `operator_kubeconfig(server=proxy.url)`."""
        proxy = await FaultProxy(self.kube, identity or self.kube.admin).start()
        self.proxies.append(proxy)
        return proxy

    # -- Kubernetes helpers (through the real client, in a thread) ------------------------------

    async def ensure_namespace(self, name: str) -> None:
        body = k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name))
        with suppress(k8s.exceptions.ApiException):
            await asyncio.to_thread(self.core.create_namespace, body)

    async def apply(self, documents: Iterable[dict[str, Any]], namespace: str) -> None:
        await self.ensure_namespace(namespace)
        for document in documents:
            plural = _plural(document["kind"])
            await asyncio.to_thread(
                self.custom.create_namespaced_custom_object, GROUP, VERSION, namespace, plural, document
            )

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        result = await asyncio.to_thread(
            self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, _plural(kind), name
        )
        return cast(dict[str, Any], result)

    async def list(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        result = await asyncio.to_thread(
            self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, _plural(kind)
        )
        return list(cast(dict[str, Any], result).get("items", []))

    async def patch_spec(self, kind: str, namespace: str, name: str, spec: dict[str, Any]) -> None:
        await asyncio.to_thread(
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            _plural(kind),
            name,
            {"spec": spec},
        )

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        await asyncio.to_thread(
            self.custom.delete_namespaced_custom_object, GROUP, VERSION, namespace, _plural(kind), name
        )

    async def config_map(self, namespace: str, name: str = "llm-config") -> dict[str, str] | None:
        try:
            found = await asyncio.to_thread(self.core.read_namespaced_config_map, name, namespace)
        except k8s.exceptions.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(found.data or {})

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 60.0,
        interval: float = 0.1,
        what: str = "condition",
    ) -> Any:
        """Poll an async or sync predicate until it returns something truthy."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = predicate()
            if asyncio.iscoroutine(last):
                last = await last
            if last:
                return last
            await asyncio.sleep(interval)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")

    async def condition(
        self, kind: str, namespace: str, name: str, type_: str = "Ready"
    ) -> dict[str, Any] | None:
        obj = await self.get(kind, namespace, name)
        return next((c for c in obj.get("status", {}).get("conditions", []) if c.get("type") == type_), None)

    async def wait_condition(
        self,
        kind: str,
        namespace: str,
        name: str,
        type_: str = "Ready",
        status: str = "True",
        reason: str | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            found = await self.condition(kind, namespace, name, type_)
            if found and found.get("status") == status and (reason is None or found.get("reason") == reason):
                return found
            return None

        result: dict[str, Any] = await self.wait_for(
            check,
            timeout,
            what=f"{kind} {namespace}/{name} {type_}={status}" + (f" ({reason})" if reason else ""),
        )
        return result


def _plural(kind: str) -> str:
    return {"FoundryAccount": "foundryaccounts", "FoundryDeployment": "foundrydeployments"}[kind]


def fast_settings(**overrides: Any) -> OperatorSettings:
    """Timings for local runs: the same behaviour, on a shorter clock."""
    values: dict[str, Any] = {
        "resync_interval_seconds": 60.0,
        "catalog_ttl_seconds": 60.0,
        "usage_ttl_seconds": 30.0,
        "lro_poll_seconds": 0.2,
        "conflict_retry_seconds": 0.2,
        "transient_retry_seconds": 1.0,
        "arm_retry_backoff_max_seconds": 2.0,
        "configmap_debounce_seconds": 0.02,
        "metrics_port": 0,
    }
    values.update(overrides)
    return OperatorSettings(**values)


def load_documents(paths: Iterable[Path]) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in paths:
        files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
        for file in files:
            documents += [doc for doc in yaml.safe_load_all(file.read_text()) if doc]
    return documents


@asynccontextmanager
async def sandbox(
    state_dir: Path, scenario: Scenario | None = None, control_plane: ControlPlane | None = None
) -> AsyncIterator[Sandbox]:
    """The Azure emulator and a Kubernetes API server; KUBECONFIG points at the latter (as admin),
    so kopf and the `kubernetes` client log in as they would anywhere.

    Without `control_plane`, one is started for this sandbox and stopped after it (the demo).
    With one (shared by a test session), the CRDs must already be installed; what the sandbox
    created is removed afterwards, so the next sandbox starts from an empty cluster.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    scenario = scenario or load_scenario(default_scenario_path())
    owned = control_plane is None
    kube = control_plane or ControlPlane(state_dir / "controlplane").start()
    try:
        if owned:
            kube.install_crds(crd_documents())
        kubeconfig = kube.write_kubeconfig(state_dir / "kubeconfig")
        previous = os.environ.get("KUBECONFIG")
        os.environ["KUBECONFIG"] = str(kubeconfig)
        async with AzureEmulator(scenario, state_dir=state_dir / "azure") as azure:
            box = Sandbox(azure, kube, state_dir, k8s.ApiClient(kube.client_configuration()))
            try:
                yield box
            finally:
                for handle in box.operators:
                    await handle.shutdown()
                for process in box.processes:
                    await process.stop()
                for proxy in box.proxies:
                    await proxy.stop()
                if previous is None:
                    os.environ.pop("KUBECONFIG", None)
                else:
                    os.environ["KUBECONFIG"] = previous
                if not owned:
                    await asyncio.to_thread(empty_cluster, box.api)
    finally:
        if owned:
            kube.stop()


# Namespaces the API server makes for itself; everything else is the tests' or the demo's.
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})


def empty_cluster(api: k8s.ApiClient) -> None:
    """Remove what a sandbox left in a shared API server: our custom resources (finalizers
    dropped: no operator runs any more), ConfigMaps, Secrets, Events, ServiceAccounts and RBAC
    objects in every namespace. Namespaces stay: without a namespace controller a deleted one
    would stay Terminating and refuse the next sandbox's objects."""
    core, rbac = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
    custom: Any = k8s.CustomObjectsApi(api)
    for plural in ("foundrydeployments", "foundryaccounts"):
        for item in custom.list_cluster_custom_object(GROUP, VERSION, plural).get("items", []):
            meta = item["metadata"]
            with suppress(k8s.exceptions.ApiException):
                if meta.get("finalizers"):
                    custom.patch_namespaced_custom_object(
                        GROUP,
                        VERSION,
                        meta["namespace"],
                        plural,
                        meta["name"],
                        {"metadata": {"finalizers": None}},
                    )
                custom.delete_namespaced_custom_object(
                    GROUP, VERSION, meta["namespace"], plural, meta["name"]
                )
    for namespace in _names(core.list_namespace().items):
        if namespace in SYSTEM_NAMESPACES:
            continue
        core.delete_collection_namespaced_config_map(namespace)
        core.delete_collection_namespaced_secret(namespace)
        core.delete_collection_namespaced_event(namespace)
        rbac.delete_collection_namespaced_role_binding(namespace)
        rbac.delete_collection_namespaced_role(namespace)
        for account in _names(core.list_namespaced_service_account(namespace).items):
            if account != "default":
                core.delete_namespaced_service_account(account, namespace)
    for binding in _names(rbac.list_cluster_role_binding(label_selector=TEST_LABEL).items):
        rbac.delete_cluster_role_binding(binding)
    for role in _names(rbac.list_cluster_role(label_selector=TEST_LABEL).items):
        rbac.delete_cluster_role(role)


def _names(items: Iterable[Any]) -> list[str]:
    return [str(item.metadata.name) for item in items]


# Cluster-scoped objects a sandbox creates carry this label, so that empty_cluster finds them.
TEST_LABEL = "foundry.llmops.io/sandbox=true"
