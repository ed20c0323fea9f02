"""Reliability fixtures: the integration world (tests/integration/conftest.py) on the session's
real kube-apiserver, a third Azure account, the fault proxy for the Kubernetes faults a real server
does not produce on demand, and a ledger of what the suite did (faults injected, kills, restarts)
for docs/reliability.md. The ledger is printed at the end of the run and written to
build/reliability-counts.json.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from foundry_emulator.azure.faults import Fault, FaultSpec
from foundry_emulator.azure.scenario import Account, CapacityRange, Principal, Scenario
from foundry_emulator.controlplane import ControlPlane
from foundry_emulator.controlplane.proxy import FaultProxy, Rule
from foundry_emulator.sandbox import OperatorProcess, Sandbox, sandbox
from foundry_operator.settings import OperatorSettings
from tests.integration.conftest import ROOT, quick_scenario

RESOURCE_GROUP = "aucert-foundation-rg"
SUBSCRIPTION = "3c2b1a09-8f7e-4d6c-9b5a-1e2d3c4b5a69"
# A third account (westus), so that three writes can be in flight at once (one per account).
THIRD_ACCOUNT = "aucert-ai-west2"
# A second identity with a role on the whole subscription, for per-account Secret credentials.
CI_CLIENT_ID = "5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c"
CI_CLIENT_SECRET = "canary-platform-ci-secret-0b7e9d"
# A client secret that is wrong (Entra ID refuses it): error paths must not echo it either.
WRONG_SECRET = "canary-wrong-client-secret-7c1d"


class Ledger:
    """Counts across the whole reliability run (faults are counted by the requests they hit)."""

    def __init__(self) -> None:
        self.azure_faults: list[Fault] = []
        self.kube_rules: list[Rule] = []
        self.counts: Counter[str] = Counter()

    def totals(self) -> dict[str, int]:
        totals = dict(self.counts)
        totals["azure_faults_hit"] = sum(fault.hits for fault in self.azure_faults)
        totals["azure_fault_rules"] = len(self.azure_faults)
        totals["kube_faults_hit"] = sum(rule.hits for rule in self.kube_rules)
        injected = ("azure_faults_hit", "azure_foreign_writes", "kube_faults_hit", "kube_forbidden_403")
        extra = (
            "kube_interleaved_writes",
            "kube_watches_broken",
            "kube_apiserver_restarts",
            "kube_configmaps_deleted_by_hand",
        )
        totals["faults_injected_total"] = sum(totals.get(key, 0) for key in (*injected, *extra))
        return dict(sorted(totals.items()))


LEDGER = Ledger()


def reliability_scenario() -> Scenario:
    scenario = quick_scenario()
    scenario.principals.append(
        Principal(displayName="platform-ci", clientId=CI_CLIENT_ID, clientSecret=CI_CLIENT_SECRET)
    )
    # A capacity step other than 1 (as provisioned SKUs have), for the bad-input corpus.
    nano = next(model for model in scenario.models if model.name == "gpt-5-nano")
    nano.skus[0].capacity = CapacityRange(minimum=10, maximum=30000, step=10, default=100)
    scenario.accounts.append(
        Account(
            resourceGroup=RESOURCE_GROUP,
            name=THIRD_ACCOUNT,
            location="westus",
            kind="AIServices",
            customSubDomainName=THIRD_ACCOUNT,
        )
    )
    return scenario


@asynccontextmanager
async def world(state_dir: Path, control_plane: ControlPlane) -> AsyncIterator[Sandbox]:
    """A sandbox on the session's API server; its 403s are counted from the server's audit log."""
    async with sandbox(state_dir, reliability_scenario(), control_plane) as box:
        mark = box.kube.audit.mark()
        try:
            yield box
        finally:
            tally_kube(box, mark)
        for process in box.processes:  # the operator processes' logs: no secret in any line
            await process.stop()
            text = process.log_path.read_text(errors="replace")
            LEDGER.counts["log_bytes_scanned"] += len(text)
            assert not leaks(text), f"secret values in {process.log_path}: {leaks(text)}"


@pytest.fixture
async def box(tmp_path: Path, control_plane: ControlPlane) -> AsyncIterator[Sandbox]:
    async with world(tmp_path, control_plane) as box:
        yield box


def canaries() -> list[str]:
    """Every secret value the reliability runs hand to the operator, raw and base64 (as in a Secret)."""
    values = [p.clientSecret for p in reliability_scenario().principals if p.clientSecret] + [WRONG_SECRET]
    return [*values, *(base64.b64encode(v.encode()).decode() for v in values)]


CANARIES = canaries()


def leaks(text: str) -> list[str]:
    return [canary for canary in CANARIES if canary in text]


@pytest.fixture(autouse=True)
def _no_secret_in_log_records(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every log record of every reliability test (the in-process operators') is scanned for secrets."""
    for name in ("kopf", "foundry_operator", "azure.identity", "azure.core"):
        caplog.set_level(logging.INFO, logger=name)
    yield
    records = [*caplog.get_records("setup"), *caplog.get_records("call")]
    LEDGER.counts["log_records_scanned"] += len(records)
    found = {(r.name, canary) for r in records for canary in leaks(r.getMessage())}
    assert not found, f"secret values in log records: {sorted(found)}"


def tally_kube(world: Sandbox, mark: int) -> None:
    """Kubernetes refusals a sandbox met: 403s from the real RBAC authorizer, per the audit log."""
    LEDGER.counts["kube_forbidden_403"] += sum(1 for e in world.kube.audit.since(mark) if e.status == 403)


def inject(box: Sandbox, **fault: Any) -> Fault:
    """An Azure fault (the fields of POST /_emulator/faults), counted in the ledger."""
    added = box.azure.faults.add(FaultSpec(**fault))
    LEDGER.azure_faults.append(added)
    return added


async def proxied_operator(box: Sandbox, settings: OperatorSettings) -> FaultProxy:
    """The in-process operator, logged in as admin through a fault proxy (which forwards as admin)."""
    proxy = await box.fault_proxy()
    await box.start_operator(settings, kubeconfig=box.operator_kubeconfig("proxied", server=proxy.url))
    return proxy


def kube_fail(proxy: FaultProxy, count: int, code: int = 500, **criteria: Any) -> Rule:
    """The next `count` matching requests answered `code` by the proxy (never reaching the server)."""
    rule = proxy.fail_next(count, code, **criteria)
    LEDGER.kube_rules.append(rule)
    return rule


def close_watches(proxy: FaultProxy) -> int:
    closed = proxy.close_watches()
    LEDGER.counts["kube_watches_broken"] += closed
    return closed


async def start_process(
    box: Sandbox, settings: OperatorSettings, *, restart: bool = False, kubeconfig: Path | None = None
) -> OperatorProcess:
    proc = await box.start_operator_process(settings, kubeconfig=kubeconfig)
    LEDGER.counts["operator_restarts" if restart else "operator_starts"] += 1
    return proc


async def kill(proc: OperatorProcess) -> None:
    await proc.kill()
    LEDGER.counts["operator_kills_sigkill"] += 1


def account_docs(
    *,
    third: bool = False,
    allowed: list[str] | None = None,
    secret: str | None = None,
) -> list[dict[str, Any]]:
    """FoundryAccounts west (aucert-ai, primary), east (aucert-ai-east) and optionally west2."""
    names = [("west", "aucert-ai", True), ("east", "aucert-ai-east", False)]
    if third:
        names.append(("west2", THIRD_ACCOUNT, False))
    docs = []
    for name, account, primary in names:
        spec: dict[str, Any] = {
            "subscriptionId": SUBSCRIPTION,
            "resourceGroup": RESOURCE_GROUP,
            "accountName": account,
            "primary": primary,
        }
        if allowed is not None:
            spec["allowedNamespaces"] = allowed
        if secret is not None:
            spec["credentials"] = {"source": "Secret", "secretRef": {"name": secret}}
        docs.append(
            {
                "apiVersion": "foundry.llmops.io/v1alpha1",
                "kind": "FoundryAccount",
                "metadata": {"name": name},
                "spec": spec,
            }
        )
    return docs


async def put_secret(box: Sandbox, namespace: str, name: str, data: dict[str, str]) -> None:
    await box.ensure_namespace(namespace)
    body = k8s.V1Secret(metadata=k8s.V1ObjectMeta(name=name), string_data=data)
    await asyncio.to_thread(box.core.create_namespaced_secret, namespace, body)


def principal_secret(tenant_id: str, client_id: str, client_secret: str) -> dict[str, str]:
    return {"AZURE_TENANT_ID": tenant_id, "AZURE_CLIENT_ID": client_id, "AZURE_CLIENT_SECRET": client_secret}


async def put_configmap(box: Sandbox, namespace: str, data: dict[str, str], name: str = "llm-config") -> None:
    await box.ensure_namespace(namespace)
    body = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=name), data=data)
    await asyncio.to_thread(box.core.create_namespaced_config_map, namespace, body)


async def status_of(
    box: Sandbox, namespace: str, name: str, kind: str = "FoundryDeployment"
) -> dict[str, Any]:
    obj = await box.get(kind, namespace, name)
    return dict(obj.get("status") or {})


async def converged(box: Sandbox, namespace: str, name: str, **expected: Any) -> bool:
    """Ready=True for the current generation, and the status fields given."""
    obj = await box.get("FoundryDeployment", namespace, name)
    status = obj.get("status") or {}
    ready = next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), None)
    return bool(
        ready
        and ready.get("status") == "True"
        and status.get("observedGeneration") == obj["metadata"].get("generation")
        and all(status.get(key) == value for key, value in expected.items())
    )


async def gone(box: Sandbox, namespace: str, name: str, kind: str = "FoundryDeployment") -> bool:
    return name not in {o["metadata"]["name"] for o in await box.list(kind, namespace)}


async def wait_true(box: Sandbox, check: Callable[[], Any], timeout: float, what: str) -> Any:
    return await box.wait_for(check, timeout, interval=0.1, what=what)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    passed = [r for r in terminalreporter.stats.get("passed", []) if "tests/reliability" in r.nodeid]
    if not passed:
        return
    totals = {"tests_passed": len(passed), **LEDGER.totals()}
    terminalreporter.write_sep("-", "reliability ledger")
    for key, value in totals.items():
        terminalreporter.write_line(f"{key}: {value}")
    target = ROOT / "build" / "reliability-counts.json"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(totals, indent=2) + "\n")
    except OSError:
        pass
