"""A bench world: a real Kubernetes API server, the Azure emulator, the operator as its own process.

The Kubernetes API is a real kube-apiserver + etcd (foundry_emulator.controlplane), started for
each world so that every figure begins from an empty store. The Azure emulator runs in this
process. The operator runs exactly as `foundry-operator run -A --standalone` runs in a pod: a
separate process that finds Kubernetes through KUBECONFIG (its own client certificate, user
`foundry-operator`) and Azure through the standard AZURE_* variables. That keeps its memory and
CPU measurable on their own (/proc).

The driver stays light: it creates objects with plain POSTs (as kubectl does) and follows
readiness through real WATCHes of the namespace (one list when the namespace is still empty, then
only the changes), never by listing every object again. It logs in as the admin user, so the
API server's audit log tells its requests from the operator's: Kubernetes request counts are the
audit entries of user `foundry-operator`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from foundry_emulator.azure import AzureEmulator, Scenario
from foundry_emulator.controlplane import AuditEntry, ControlPlane
from foundry_emulator.sandbox import crd_documents
from foundry_operator.azure.arm import classify_operation

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WRITE_METHODS = ("PUT", "PATCH", "DELETE", "POST")
OPERATOR_USER = "foundry-operator"
GROUP_VERSION = "foundry.llmops.io/v1alpha1"
PLURALS = {"FoundryAccount": "foundryaccounts", "FoundryDeployment": "foundrydeployments"}
# How many creations the driver keeps in flight: enough that creating 1,000 objects does not
# dominate a figure, few enough to stay a light client next to the operator.
CREATE_CONCURRENCY = 8
# A watch event carries a whole object; llm-config with 1,000 entries is a few hundred KiB.
READ_BUFSIZE = 16 * 1024 * 1024


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


def operator_source_root() -> str:
    """Where this process imported foundry_operator from. The operator process gets it first on
    PYTHONPATH so that it runs the same sources the bench installs CRDs from: a venv's editable
    install may point at another checkout (a worktree run with PYTHONPATH=...)."""
    import foundry_operator

    return str(Path(foundry_operator.__file__).resolve().parents[1])


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
    """`foundry-operator run -A --standalone` pointed at the API server and the Azure emulator."""

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

    async def kill(self) -> None:
        """SIGKILL, as a crashed or evicted pod: no handler, finalizer or write gets to finish."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()

    async def stop(self, timeout: float = 15.0) -> int | None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, FileNotFoundError):
                self.stats()  # the last look before it exits
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                await self.kill()
        return self.process.returncode

    async def metrics(self, session: aiohttp.ClientSession) -> dict[str, float]:
        """The operator's own Prometheus counters (`name{labels}` -> value); empty until it serves."""
        try:
            async with session.get(f"http://127.0.0.1:{self.metrics_port}/metrics", ssl=False) as resp:
                text = await resp.text()
        except (aiohttp.ClientError, OSError):
            return {}
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    values[name] = float(value)
        return values


@dataclass
class Readiness:
    """What the driver saw of the FoundryDeployments, through its watch."""

    ready_at: dict[str, float] = field(default_factory=dict)  # first time Ready=True
    ready_now: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    # Every (condition type, reason) a FoundryDeployment showed, and messages that mention throttling.
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    throttle_messages: list[str] = field(default_factory=list)
    lost: int = 0  # times an object that was Ready stopped being so


def _mentions_throttling(text: str) -> bool:
    lowered = text.lower()
    return "429" in lowered or "throttl" in lowered or "toomanyrequests" in lowered


def _is_ready(obj: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


class Watch:
    """One collection followed as a controller would: a LIST for a resourceVersion, then a WATCH
    from it (bookmarks keep the version fresh across the server's watch timeouts; only a 410 Gone
    lists again). `on_event(type, object)` sees every ADDED/MODIFIED/DELETED."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        on_event: Callable[[str, dict[str, Any]], None],
        params: Mapping[str, str] | None = None,
    ) -> None:
        self.session = session
        self.url = url
        self.on_event = on_event
        self.params = dict(params or {})
        self.listed = asyncio.Event()

    async def _list(self) -> str:
        params: dict[str, str] = {**self.params, "limit": "500"}
        items: list[dict[str, Any]] = []
        while True:
            async with self.session.get(self.url, params=params) as resp:
                resp.raise_for_status()
                page = await resp.json()
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
            params["continue"] = token
        for item in items:
            self.on_event("ADDED", item)
        return str(page["metadata"]["resourceVersion"])

    async def run(self) -> None:
        rv = await self._list()
        self.listed.set()
        while True:
            params = {
                **self.params,
                "watch": "1",
                "resourceVersion": rv,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": "300",
            }
            try:
                async with self.session.get(self.url, params=params) as resp:
                    resp.raise_for_status()
                    async for line in resp.content:
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        kind, obj = event.get("type"), event.get("object") or {}
                        if kind == "ERROR":
                            if obj.get("code") == 410:  # the version fell out of the watch cache
                                rv = await self._list()
                            break
                        rv = str(obj["metadata"]["resourceVersion"])
                        if kind != "BOOKMARK":
                            self.on_event(str(kind), obj)
            except aiohttp.ClientResponseError as exc:
                if exc.status == 410:  # Gone as the response itself: list again, as on the event
                    rv = await self._list()
                else:
                    await asyncio.sleep(0.2)
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.2)  # the server closed or dropped the watch: resume from rv


class World:
    def __init__(
        self,
        azure: AzureEmulator,
        kube: ControlPlane,
        session: aiohttp.ClientSession,
        state_dir: Path,
        namespace: str,
    ) -> None:
        self.azure = azure
        self.kube = kube
        self.session = session
        self.state_dir = state_dir
        self.namespace = namespace
        # The operator's own identity, so that the audit log tells its requests from the driver's.
        self.kubeconfig = kube.write_kubeconfig(
            state_dir / "kubeconfig-operator", kube.user(OPERATOR_USER, ("system:masters",))
        )
        self.readiness = Readiness()
        self.accounts_ready: set[str] = set()
        self.config_map_data: dict[str, str] = {}
        self.warning_events: list[str] = []
        self.operators: list[OperatorProcess] = []
        self.server: dict[str, str] = {"server": "kube-apiserver", "version": kube.version}
        self._changed = asyncio.Event()
        self._watches: list[asyncio.Task[None]] = []
        self._config_map_watch: Watch | None = None

    # -- the operator process ----------------------------------------------------------------

    def operator_env(self, settings: Mapping[str, str]) -> dict[str, str]:
        """A clean environment: nothing from the caller's shell leaks into the operator's settings."""
        base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
        ca = str(self.azure.ca_file)
        return {
            **base,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": operator_source_root(),
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

    # -- Kubernetes objects, through the API --------------------------------------------------

    def _collection(self, plural: str, group_version: str = GROUP_VERSION) -> str:
        prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        return f"{self.kube.url}{prefix}/namespaces/{self.namespace}/{plural}"

    async def _post(self, url: str, document: Mapping[str, Any]) -> None:
        async with self.session.post(url, json=document) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"POST {url}: HTTP {resp.status}: {(await resp.text())[:500]}")

    async def ensure_namespace(self) -> None:
        document = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        async with self.session.post(f"{self.kube.url}/api/v1/namespaces", json=document) as resp:
            if resp.status >= 300 and resp.status != 409:
                raise RuntimeError(f"creating namespace {self.namespace}: HTTP {resp.status}")

    async def apply(self, documents: Iterable[dict[str, Any]]) -> None:
        """Create the objects in the world's namespace, a few requests in flight at a time."""
        gate = asyncio.Semaphore(CREATE_CONCURRENCY)

        async def create(document: dict[str, Any]) -> None:
            async with gate:
                await self._post(self._collection(PLURALS[document["kind"]]), document)

        await asyncio.gather(*(create(document) for document in documents))

    # -- following the objects, through watches ------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _observe(self, kind: str, obj: dict[str, Any]) -> None:
        if kind == "DELETED":
            return
        now = time.monotonic()
        name = str((obj.get("metadata") or {}).get("name"))
        self.readiness.seen.add(name)
        for cond in (obj.get("status") or {}).get("conditions") or []:
            type_, status = str(cond.get("type")), str(cond.get("status"))
            if (type_ == "Ready" and status == "False") or (type_ == "Stalled" and status == "True"):
                self.readiness.reasons[(type_, str(cond.get("reason")))] += 1
                text = f"{cond.get('reason')}: {cond.get('message')}"
                if _mentions_throttling(text) and len(self.readiness.throttle_messages) < 20:
                    self.readiness.throttle_messages.append(f"{name}: {text}")
        if _is_ready(obj):
            self.readiness.ready_at.setdefault(name, now)
            self.readiness.ready_now.add(name)
        elif name in self.readiness.ready_now:
            self.readiness.ready_now.discard(name)
            self.readiness.lost += 1
        self._notify()

    def _observe_account(self, kind: str, obj: dict[str, Any]) -> None:
        name = str((obj.get("metadata") or {}).get("name"))
        if kind != "DELETED" and _is_ready(obj):
            self.accounts_ready.add(name)
        else:
            self.accounts_ready.discard(name)
        self._notify()

    def _observe_event(self, kind: str, obj: dict[str, Any]) -> None:
        text = f"{obj.get('reason')}: {obj.get('message')}"
        if (
            kind == "ADDED"
            and obj.get("type") == "Warning"
            and _mentions_throttling(text)
            and len(self.warning_events) < 20
        ):
            self.warning_events.append(text)

    def _observe_config_map(self, kind: str, obj: dict[str, Any]) -> None:
        self.config_map_data = {} if kind == "DELETED" else dict(obj.get("data") or {})
        self._notify()

    async def _start_watch(self, watch: Watch) -> None:
        self._watches.append(asyncio.create_task(watch.run()))
        await watch.listed.wait()

    async def start_watches(self) -> None:
        await self._start_watch(Watch(self.session, self._collection("foundrydeployments"), self._observe))
        await self._start_watch(
            Watch(self.session, self._collection("foundryaccounts"), self._observe_account)
        )
        await self._start_watch(Watch(self.session, self._collection("events", "v1"), self._observe_event))

    async def watch_config_map(self, name: str = "llm-config") -> None:
        """Started only where a figure needs it: with 1,000 entries every write of the ConfigMap is
        a large event to parse, work the footprint figure's driver should not do."""
        if self._config_map_watch is None:
            self._config_map_watch = Watch(
                self.session,
                self._collection("configmaps", "v1"),
                self._observe_config_map,
                {"fieldSelector": f"metadata.name={name}"},
            )
            await self._start_watch(self._config_map_watch)

    async def _until(self, done: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(what())
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, 1.0))

    async def wait_ready(self, names: Iterable[str], timeout: float) -> float:
        """Wait until every named object has been Ready; returns the monotonic time the last became so."""
        wanted = set(names)

        def what() -> str:
            missing = wanted - self.readiness.ready_at.keys()
            return (
                f"{len(missing)} of {len(wanted)} objects not Ready after {timeout:.0f}s "
                f"(e.g. {sorted(missing)[:3]}); reasons seen: {dict(self.readiness.reasons.most_common(5))}"
            )

        await self._until(lambda: wanted <= self.readiness.ready_at.keys(), timeout, what)
        return max(self.readiness.ready_at[name] for name in wanted)

    async def wait_ready_accounts(self, count: int, timeout: float) -> None:
        await self._until(
            lambda: len(self.accounts_ready) >= count,
            timeout,
            lambda: f"only {len(self.accounts_ready)} of {count} FoundryAccounts Ready after {timeout:.0f}s",
        )

    async def wait_config_map_key(self, key: str, timeout: float) -> None:
        await self._until(
            lambda: key in self.config_map_data, timeout, lambda: f"{key} not in llm-config after {timeout}s"
        )

    async def wait_quiet(self, quiet_seconds: float = 1.0, timeout: float = 60.0) -> None:
        """Until neither Azure nor Kubernetes has seen a request from the operator for a while."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            arm_seq, kube_mark = self.azure.log.last_seq, self.kube_mark()
            await asyncio.sleep(quiet_seconds)
            if arm_seq == self.azure.log.last_seq and not any(e.is_write for e in self.kube_since(kube_mark)):
                return

    async def stop_watches(self) -> None:
        for task in self._watches:
            task.cancel()
        for task in self._watches:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- request accounting ------------------------------------------------------------------

    def kube_mark(self) -> int:
        return self.kube.audit.mark()

    def kube_since(self, mark: int) -> list[AuditEntry]:
        """The operator's Kubernetes requests after `mark`, as the API server's audit log has them."""
        return [entry for entry in self.kube.audit.since(mark) if entry.user == OPERATOR_USER]

    def arm_since(self, seq: int) -> list[dict[str, Any]]:
        return [entry for entry in self.azure.log.since(seq) if entry["service"] == "arm"]


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


def _kube_kind(entry: AuditEntry) -> str:
    if entry.resource is None:  # discovery and other non-resource paths (/api, /apis, /version)
        return f"{entry.verb} {entry.uri.split('?', 1)[0]}"
    return f"{entry.verb} {entry.resource}{'/' + entry.subresource if entry.subresource else ''}"


def summarize_kube(entries: list[AuditEntry]) -> dict[str, Any]:
    """The operator's requests to the API server, from its audit log, by verb and resource."""
    writes = [e for e in entries if e.is_write]
    by_kind: Counter[str] = Counter(_kube_kind(e) for e in entries if e.verb)
    return {
        "total": len(entries),
        "writes": len(writes),
        "configmap_writes": sum(1 for e in writes if e.resource == "configmaps"),
        "configmap_reads": sum(1 for e in entries if e.resource == "configmaps" and e.verb == "get"),
        "status_patches": sum(1 for e in writes if e.resource == "foundrydeployments"),
        "events_posted": sum(1 for e in writes if e.resource == "events"),
        "by_kind": dict(sorted(by_kind.items())),
    }


def etcd_version(kube: ControlPlane) -> str | None:
    """etcd's own /version (plain HTTP on loopback); None if it does not answer."""
    try:
        with urllib.request.urlopen(f"{kube.etcd_url}/version", timeout=5) as response:
            return str(json.loads(response.read())["etcdserver"])
    except (OSError, ValueError, KeyError):
        return None


@asynccontextmanager
async def open_azure(state_dir: Path, scenario: Scenario) -> AsyncIterator[AzureEmulator]:
    """Only the Azure emulator: the baselines talk to nothing else."""
    state_dir.mkdir(parents=True, exist_ok=True)
    async with AzureEmulator(scenario, state_dir=state_dir / "azure") as azure:
        yield azure


@asynccontextmanager
async def open_world(
    state_dir: Path, scenario: Scenario, namespace: str, kube: ControlPlane | None = None
) -> AsyncIterator[World]:
    """A world on `kube`, or on a control plane started for it (and stopped after it).

    A control plane of its own is started here, on the event loop's thread, which must be the main
    thread: its processes die with the thread that started them. It blocks the loop for the few
    seconds it takes, before any figure's clock runs."""
    state_dir.mkdir(parents=True, exist_ok=True)
    owned = kube is None
    plane = kube or ControlPlane(state_dir / "controlplane").start()
    try:
        if owned:
            plane.install_crds(crd_documents())
        ssl_context = plane.ssl_context()  # the admin certificate: the driver is kubectl's user
        async with (
            AzureEmulator(scenario, state_dir=state_dir / "azure") as azure,
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=ssl_context),
                timeout=aiohttp.ClientTimeout(total=None, connect=10),
                read_bufsize=READ_BUFSIZE,
            ) as session,
        ):
            world = World(azure, plane, session, state_dir, namespace)
            version = etcd_version(plane)
            if version:
                world.server["etcd"] = version
            await world.ensure_namespace()
            await world.start_watches()
            try:
                yield world
            finally:
                for handle in world.operators:
                    await handle.stop()
                await world.stop_watches()
    finally:
        if owned:
            plane.stop()
