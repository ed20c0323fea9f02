"""A bench world: both emulators in this process, the operator as its own process.

The operator runs exactly as `foundry-operator run -A --standalone` runs in a pod: a separate
process that finds Kubernetes through KUBECONFIG and Azure through the standard AZURE_*
variables. That keeps its memory and CPU measurable on their own (/proc), and on this 2-core
machine it gives the operator a core while the emulators and the bench driver share the other.

The driver stays light: it creates objects in-process (through the API server's own admission,
as kubectl's requests would go) and follows readiness from the API server's watch history
(only what changed since the last look), never by listing every object again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foundry_emulator.azure import AzureEmulator, Scenario
from foundry_emulator.kube import KubeApiServer
from foundry_emulator.sandbox import admission, crd_documents, defaulter
from foundry_operator.azure.arm import classify_operation

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WRITE_METHODS = ("PUT", "PATCH", "DELETE", "POST")


def extra_operator_env() -> dict[str, str]:
    """BENCH_OPERATOR_ENV="NAME=value,NAME=value": extra variables for the operator process, for
    experiments (an allocator setting, a log level) without editing the bench."""
    text = os.environ.get("BENCH_OPERATOR_ENV", "")
    pairs = [item.split("=", 1) for item in text.split(",") if "=" in item]
    return {name.strip(): value for name, value in pairs}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def operator_command() -> list[str]:
    """The installed console script, next to this interpreter (the venv's bin)."""
    script = Path(sys.executable).parent / "foundry-operator"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from foundry_operator.cli import main; main()"]


@dataclass
class ProcessStats:
    rss_mib: float
    peak_rss_mib: float
    cpu_seconds: float


def process_stats(pid: int) -> ProcessStats:
    """RSS now and at its peak (VmHWM), and user+system CPU seconds, from /proc."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = float(value.split()[0]) / 1024  # kB -> MiB
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command name (which may contain spaces) start after the last ')'.
    after = stat.rsplit(")", 1)[1].split()
    utime, stime = int(after[11]), int(after[12])
    return ProcessStats(fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0), (utime + stime) / CLOCK_TICKS)


class OperatorProcess:
    """`foundry-operator run -A --standalone` pointed at the emulators."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path, metrics_port: int) -> None:
        self.process = process
        self.log_path = log_path
        self.metrics_port = metrics_port
        self.last_stats: ProcessStats | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def stats(self) -> ProcessStats:
        self.last_stats = process_stats(self.pid)
        return self.last_stats

    async def stop(self, timeout: float = 15.0) -> int | None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, FileNotFoundError):
                self.stats()  # the last look before it exits
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        return self.process.returncode


@dataclass
class Readiness:
    """What the driver saw of the FoundryDeployments, from the watch history."""

    ready_at: dict[str, float] = field(default_factory=dict)  # first time Ready=True
    ready_now: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    # Every (condition type, reason) a FoundryDeployment showed, and messages that mention throttling.
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    throttle_messages: list[str] = field(default_factory=list)


def _mentions_throttling(text: str) -> bool:
    lowered = text.lower()
    return "429" in lowered or "throttl" in lowered or "toomanyrequests" in lowered


class World:
    def __init__(self, azure: AzureEmulator, kube: KubeApiServer, state_dir: Path, namespace: str) -> None:
        self.azure = azure
        self.kube = kube
        self.state_dir = state_dir
        self.namespace = namespace
        self.kubeconfig = state_dir / "kubeconfig"
        self.readiness = Readiness()
        self.operators: list[OperatorProcess] = []
        self._fdep = kube.resource("foundrydeployments")
        self._events = kube.resource("v1/events")
        self._rv = 0
        self._event_rv = 0
        self._watcher: asyncio.Task[None] | None = None
        self.warning_events: list[str] = []

    # -- the operator process ----------------------------------------------------------------

    def operator_env(self, settings: Mapping[str, str]) -> dict[str, str]:
        """A clean environment: nothing from the caller's shell leaks into the operator's settings."""
        base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
        ca = str(self.azure.ca_file)
        return {
            **base,
            "PYTHONUNBUFFERED": "1",
            "KUBECONFIG": str(self.kubeconfig),
            "AZURE_TENANT_ID": self.azure.tenant_id,
            "AZURE_CLIENT_ID": self.azure.client_id,
            "AZURE_CLIENT_SECRET": self.azure.client_secret,
            "AZURE_AUTHORITY_HOST": self.azure.url,
            "AZURE_RESOURCE_MANAGER_ENDPOINT": self.azure.url,
            "AZURE_RESOURCE_MANAGER_AUDIENCE": "https://management.azure.com/",
            "REQUESTS_CA_BUNDLE": ca,
            "SSL_CERT_FILE": ca,
            **settings,
            **extra_operator_env(),
        }

    async def start_operator(self, settings: Mapping[str, str], name: str = "operator") -> OperatorProcess:
        port = free_port()
        log_path = self.state_dir / f"{name}-{len(self.operators)}.log"
        log = log_path.open("wb")
        try:
            process = await asyncio.create_subprocess_exec(
                *operator_command(),
                "run",
                "--all-namespaces",
                "--standalone",
                "--metrics-port",
                str(port),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=self.operator_env(settings),
            )
        finally:
            log.close()  # the child holds its own descriptor
        handle = OperatorProcess(process, log_path, port)
        self.operators.append(handle)
        return handle

    # -- Kubernetes objects ------------------------------------------------------------------

    async def ensure_namespace(self) -> None:
        if self.kube.find("v1/namespaces", None, self.namespace) is None:
            await self.kube.create(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
            )

    async def apply(self, documents: Iterable[dict[str, Any]]) -> None:
        for document in documents:
            await self.kube.create(document, namespace=self.namespace)

    def config_map(self, name: str = "llm-config") -> dict[str, str]:
        found = self.kube.store.current(self.kube.resource("v1/configmaps"), self.namespace, name)
        return dict((found or {}).get("data") or {})

    # -- readiness, from the watch history ------------------------------------------------------

    def _observe(self, obj: Mapping[str, Any], now: float) -> None:
        meta = obj.get("metadata") or {}
        if meta.get("namespace") != self.namespace:
            return
        name = str(meta.get("name"))
        self.readiness.seen.add(name)
        ready = False
        for cond in (obj.get("status") or {}).get("conditions") or []:
            kind, status = str(cond.get("type")), str(cond.get("status"))
            if status == "True" and kind == "Ready":
                ready = True
            if (kind == "Ready" and status == "False") or (kind == "Stalled" and status == "True"):
                self.readiness.reasons[(kind, str(cond.get("reason")))] += 1
                text = f"{cond.get('reason')}: {cond.get('message')}"
                if _mentions_throttling(text) and len(self.readiness.throttle_messages) < 20:
                    self.readiness.throttle_messages.append(f"{name}: {text}")
        if ready:
            self.readiness.ready_at.setdefault(name, now)
            self.readiness.ready_now.add(name)
        else:
            self.readiness.ready_now.discard(name)

    def poll(self) -> None:
        now = time.monotonic()
        history = self.kube.store.history(self._fdep)
        if history.compacted_rv > self._rv:  # fell out of the window: look at everything once
            for obj in self.kube.store.live(self._fdep, self.namespace):
                self._observe(obj, now)
        for event in history.after(self._rv):
            self._rv = event.rv
            if event.type != "DELETED":
                self._observe(event.obj, now)
        for event in self.kube.store.history(self._events).after(self._event_rv):
            self._event_rv = event.rv
            obj = event.obj
            text = f"{obj.get('reason')}: {obj.get('message')}"
            if obj.get("type") == "Warning" and _mentions_throttling(text) and len(self.warning_events) < 20:
                self.warning_events.append(text)

    async def _watch(self) -> None:
        while True:
            changed = self.kube.store.changed
            self.poll()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), 0.5)

    async def wait_ready(self, names: Iterable[str], timeout: float) -> float:
        """Wait until every named object has been Ready; returns the monotonic time the last became so."""
        wanted = set(names)
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            missing = wanted - self.readiness.ready_at.keys()
            if not missing:
                return max(self.readiness.ready_at[name] for name in wanted)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(missing)} of {len(wanted)} objects not Ready after {timeout:.0f}s "
                    f"(e.g. {sorted(missing)[:3]}); reasons seen: {dict(self.readiness.reasons.most_common(5))}"
                )
            changed = self.kube.store.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), 0.25)

    async def wait_ready_accounts(self, count: int, timeout: float) -> None:
        spec = self.kube.resource("foundryaccounts")
        deadline = time.monotonic() + timeout
        while True:
            ready = [
                obj
                for obj in self.kube.store.live(spec, self.namespace)
                if any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (obj.get("status") or {}).get("conditions") or []
                )
            ]
            if len(ready) >= count:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(ready)} of {count} FoundryAccounts Ready after {timeout:.0f}s")
            await asyncio.sleep(0.1)

    async def wait_quiet(self, quiet_seconds: float = 1.0, timeout: float = 60.0) -> None:
        """Until neither Azure nor Kubernetes has seen a request from the operator for a while."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            arm_seq, kube_id = self.azure.log.last_seq, self.kube_last_id()
            await asyncio.sleep(quiet_seconds)
            if arm_seq == self.azure.log.last_seq and self._kube_writes_since(kube_id) == 0:
                return

    # -- request accounting ------------------------------------------------------------------

    def kube_last_id(self) -> int:
        log = self.kube.requests
        return log[-1].id if log else 0

    def _kube_writes_since(self, kube_id: int) -> int:
        return sum(1 for entry in self.kube.requests if entry.id > kube_id and entry.is_write)

    def arm_since(self, seq: int) -> list[dict[str, Any]]:
        return [entry for entry in self.azure.log.since(seq) if entry["service"] == "arm"]

    def kube_since(self, kube_id: int) -> list[Any]:
        return [entry for entry in self.kube.requests if entry.id > kube_id]


def summarize_arm(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests by kind (method + operation + status), and the totals the targets speak of."""
    by_kind: Counter[str] = Counter(
        f"{e['method']} {classify_operation(e['path'])} {e['status']}" for e in entries
    )
    reads = [e for e in entries if e["method"] == "GET"]
    writes = [e for e in entries if e["method"] in WRITE_METHODS]
    return {
        "total": len(entries),
        "reads": len(reads),
        "writes": len(writes),
        "catalog_reads": sum(1 for e in reads if classify_operation(e["path"]) == "location.models"),
        "deployment_reads": sum(
            1 for e in reads if classify_operation(e["path"]) in ("deployment", "deployments.list")
        ),
        "lro_polls": sum(1 for e in reads if classify_operation(e["path"]) == "operation.status"),
        "conflicts_409": sum(1 for e in writes if e["status"] == 409),
        "throttled_429": sum(1 for e in entries if e["status"] == 429),
        "by_kind": dict(sorted(by_kind.items())),
    }


def summarize_kube(entries: list[Any]) -> dict[str, Any]:
    writes = [e for e in entries if e.is_write]
    by_kind: Counter[str] = Counter(
        f"{e.verb} {e.resource}{'/' + e.subresource if e.subresource else ''}" for e in entries if e.verb
    )
    return {
        "total": len(entries),
        "writes": len(writes),
        "configmap_writes": sum(1 for e in writes if e.resource == "configmaps"),
        "configmap_reads": sum(1 for e in entries if e.resource == "configmaps" and e.verb == "get"),
        "status_patches": sum(1 for e in writes if e.resource == "foundrydeployments"),
        "events_posted": sum(1 for e in writes if e.resource == "events"),
        "by_kind": dict(sorted(by_kind.items())),
    }


@asynccontextmanager
async def open_world(state_dir: Path, scenario: Scenario, namespace: str) -> AsyncIterator[World]:
    state_dir.mkdir(parents=True, exist_ok=True)
    async with (
        AzureEmulator(scenario, state_dir=state_dir / "azure") as azure,
        KubeApiServer(admission=admission, defaulter=defaulter) as kube,
    ):
        kube.register_crds(crd_documents())
        world = World(azure, kube, state_dir, namespace)
        kube.write_kubeconfig(world.kubeconfig)
        await world.ensure_namespace()
        world._watcher = asyncio.create_task(world._watch())
        try:
            yield world
        finally:
            for handle in world.operators:
                await handle.stop()
            world._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await world._watcher
