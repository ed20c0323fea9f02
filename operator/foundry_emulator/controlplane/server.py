"""A real Kubernetes control plane on loopback, started the way controller-runtime's envtest does.

etcd on loopback ports with a data directory of its own; kube-apiserver on a secure port with a
generated CA, an admin client certificate (`system:masters`), RBAC authorization, service-account
signing keys (so TokenRequest works without a controller-manager) and an audit log. There is no
controller-manager: namespaces never finish terminating and ownerReferences are not garbage
collected; nothing here pretends otherwise.

Processes are started from the calling thread with a parent-death signal, in their own process
group, and stopped by `stop()` (also at interpreter exit): nothing is left running, even when a
test fails or the test runner is killed. Start it from the main thread: Linux delivers the
parent-death signal when the *thread* that started the child ends.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s

from foundry_emulator.controlplane.audit import POLICY, AuditLog
from foundry_emulator.controlplane.binaries import binaries_dir
from foundry_emulator.controlplane.pki import CertificateAuthority, KeyPair, service_account_keys

ADMIN_USER = "admin"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    os.setpgrp()
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _Process:
    name: str
    args: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.popen = None

    def tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class ControlPlaneError(RuntimeError):
    pass


@dataclass
class ControlPlane:
    """kube-apiserver + etcd. `start()`, then `kubeconfig()`/`client_configuration()`; `stop()`."""

    state_dir: Path | None = None
    binaries: Path | None = None
    extra_apiserver_args: list[str] = field(default_factory=list)
    _owns_state_dir: bool = False
    _etcd: _Process | None = None
    _apiserver: _Process | None = None
    port: int = 0
    version: str = ""

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> ControlPlane:
        if self.state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix="foundry-controlplane-"))
            self._owns_state_dir = True
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.binaries = self.binaries or binaries_dir()
        self.ca = CertificateAuthority(self.state_dir / "pki")
        self.serving = self.ca.server("kube-apiserver", ["127.0.0.1", "localhost", "kubernetes.default.svc"])
        self.admin = self.ca.client(ADMIN_USER, ("system:masters",))
        self.sa_keys = service_account_keys(self.state_dir / "pki")
        self.audit_path = self.state_dir / "audit.log"
        (self.state_dir / "audit-policy.yaml").write_text(POLICY)
        self.audit = AuditLog(self.audit_path)
        atexit.register(self.stop)

        etcd_port, peer_port = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._etcd = _Process(
            "etcd",
            [
                str(self.binaries / "etcd"),
                f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync=true",  # a throw-away store: durability costs time and buys nothing
                "--log-level=warn",
            ],
            self.state_dir / "etcd.log",
        )
        self._etcd.start()
        self.port = free_port()
        self._apiserver = _Process(
            "kube-apiserver", self._apiserver_args(), self.state_dir / "kube-apiserver.log"
        )
        try:
            self._wait_http(f"{self.etcd_url}/health", self._etcd, timeout, tls=False)
            self._apiserver.start()
            self._wait_http(f"{self.url}/readyz", self._apiserver, timeout)
        except BaseException:
            self.stop()
            raise
        self.version = self._server_version()
        self.write_kubeconfig(self.state_dir / "kubeconfig")
        return self

    def _apiserver_args(self) -> list[str]:
        assert self.state_dir is not None and self.binaries is not None
        return [
            str(self.binaries / "kube-apiserver"),
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--tls-cert-file={self.serving.cert_file}",
            f"--tls-private-key-file={self.serving.key_file}",
            f"--client-ca-file={self.ca.cert_file}",
            f"--etcd-servers={self.etcd_url}",
            "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.0.0.0/24",
            f"--service-account-issuer=https://127.0.0.1:{self.port}",
            f"--service-account-key-file={self.sa_keys.cert_file}",
            f"--service-account-signing-key-file={self.sa_keys.key_file}",
            "--allow-privileged=true",
            f"--audit-policy-file={self.state_dir / 'audit-policy.yaml'}",
            f"--audit-log-path={self.audit_path}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
            "--profiling=false",
            *self.extra_apiserver_args,
        ]

    def restart_apiserver(self, timeout: float = 60.0) -> None:
        """Stop kube-apiserver and start it again on the same port and store: every watch ends,
        and the new server's watch cache starts at the store's current revision."""
        assert self._apiserver is not None
        self._apiserver.stop()
        self._apiserver.start()
        self._wait_http(f"{self.url}/readyz", self._apiserver, timeout)

    def stop_apiserver(self) -> None:
        if self._apiserver is not None:
            self._apiserver.stop()

    def start_apiserver(self, timeout: float = 60.0) -> None:
        assert self._apiserver is not None
        self._apiserver.start()
        self._wait_http(f"{self.url}/readyz", self._apiserver, timeout)

    def stop(self) -> None:
        for process in (self._apiserver, self._etcd):
            if process is not None:
                process.stop()
        atexit.unregister(self.stop)
        if self._owns_state_dir and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self._owns_state_dir = False

    def running(self) -> bool:
        return bool(self._apiserver and self._apiserver.running() and self._etcd and self._etcd.running())

    def pids(self) -> list[int]:
        return [p.popen.pid for p in (self._apiserver, self._etcd) if p is not None and p.popen is not None]

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- readiness --------------------------------------------------------------------------------

    def ssl_context(self, user: KeyPair | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca.cert_file))
        pair = user or self.admin
        context.load_cert_chain(pair.cert_file, pair.key_file)
        return context

    def _wait_http(self, url: str, process: _Process, timeout: float, tls: bool = True) -> None:
        deadline = time.monotonic() + timeout
        context = self.ssl_context() if tls else None
        last = ""
        while time.monotonic() < deadline:
            if not process.running():
                raise ControlPlaneError(f"{process.name} exited during start-up:\n{process.tail()}")
            try:
                with urllib.request.urlopen(url, context=context, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError as exc:  # refused while starting; 500 until the post-start hooks finish
                last = str(exc)
            time.sleep(0.2)
        raise ControlPlaneError(f"{process.name} not ready after {timeout:.0f}s ({last}):\n{process.tail()}")

    def _server_version(self) -> str:
        with urllib.request.urlopen(f"{self.url}/version", context=self.ssl_context(), timeout=5) as resp:
            return str(yaml.safe_load(resp.read()).get("gitVersion", ""))

    # -- clients ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def user(self, name: str, groups: Iterable[str] = ()) -> KeyPair:
        """A client certificate for `name` (and `groups`), signed by the CA the server trusts."""
        return self.ca.client(name, tuple(groups))

    def client_configuration(
        self, user: KeyPair | None = None, token: str | None = None
    ) -> k8s.Configuration:
        configuration = k8s.Configuration()
        configuration.host = self.url
        configuration.ssl_ca_cert = str(self.ca.cert_file)
        if token is not None:
            configuration.api_key = {"authorization": f"Bearer {token}"}
        else:
            pair = user or self.admin
            configuration.cert_file = str(pair.cert_file)
            configuration.key_file = str(pair.key_file)
        return configuration

    def api_client(self, user: KeyPair | None = None, token: str | None = None) -> k8s.ApiClient:
        return k8s.ApiClient(self.client_configuration(user, token))

    def kubeconfig_document(
        self, user: KeyPair | None = None, token: str | None = None, server: str | None = None
    ) -> dict[str, Any]:
        credentials: dict[str, str]
        if token is not None:
            credentials = {"token": token}
        else:
            pair = user or self.admin
            credentials = {"client-certificate": str(pair.cert_file), "client-key": str(pair.key_file)}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "foundry-local",
                    "cluster": {
                        "server": server or self.url,
                        "certificate-authority": str(self.ca.cert_file),
                    },
                }
            ],
            "users": [{"name": "user", "user": credentials}],
            "contexts": [{"name": "foundry-local", "context": {"cluster": "foundry-local", "user": "user"}}],
            "current-context": "foundry-local",
        }

    def write_kubeconfig(
        self, path: Path, user: KeyPair | None = None, token: str | None = None, server: str | None = None
    ) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.kubeconfig_document(user, token, server)))
        path.chmod(0o600)
        return path

    def service_account_token(self, namespace: str, name: str, seconds: int = 3600) -> str:
        """A token for a ServiceAccount (created if missing), issued by the server (TokenRequest)."""
        core: Any = k8s.CoreV1Api(self.api_client())  # Any: the client's generated types are loose
        _create_or_ignore(
            lambda: core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace)))
        )
        _create_or_ignore(
            lambda: core.create_namespaced_service_account(
                namespace, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name=name))
            )
        )
        request = k8s.AuthenticationV1TokenRequest(
            spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
        )
        issued = core.create_namespaced_service_account_token(name, namespace, request)
        return str(issued.status.token)

    # -- CRDs ---------------------------------------------------------------------------------------

    def install_crds(self, documents: Iterable[dict[str, Any]], timeout: float = 30.0) -> None:
        """Create or replace the CRDs, then wait until each is Established (served)."""
        api: Any = k8s.ApiextensionsV1Api(self.api_client())  # plain dicts as bodies, as kubectl sends
        names = []
        documents_list = list(documents)
        for document in documents_list:
            name = document["metadata"]["name"]
            names.append(name)
            try:
                existing = api.read_custom_resource_definition(name)
            except k8s.exceptions.ApiException as exc:
                if exc.status != 404:
                    raise
                api.create_custom_resource_definition(document)
            else:
                body = dict(document)
                body["metadata"] = {
                    **document["metadata"],
                    "resourceVersion": existing.metadata.resource_version,
                }
                api.replace_custom_resource_definition(name, body)
        deadline = time.monotonic() + timeout
        for name in names:
            while True:
                crd = api.read_custom_resource_definition(name)
                conditions = {c.type: c.status for c in (crd.status.conditions or [])} if crd.status else {}
                if conditions.get("Established") == "True":
                    break
                if time.monotonic() > deadline:
                    raise ControlPlaneError(f"CRD {name} not Established after {timeout:.0f}s: {conditions}")
                time.sleep(0.1)
        # Established is not yet served: until the storage for the new resource is initialized the
        # server answers 429 "storage is (re)initializing", which a client started at once meets.
        custom: Any = k8s.CustomObjectsApi(self.api_client())
        for document in documents_list:
            spec = document["spec"]
            version = next(v["name"] for v in spec["versions"] if v.get("served", True))
            while True:
                try:
                    custom.list_cluster_custom_object(
                        spec["group"], version, spec["names"]["plural"], limit=1
                    )
                    break
                except k8s.exceptions.ApiException as exc:
                    if exc.status != 429 or time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)


def _create_or_ignore(create: Any) -> None:
    try:
        create()
    except k8s.exceptions.ApiException as exc:
        if exc.status != 409:
            raise
