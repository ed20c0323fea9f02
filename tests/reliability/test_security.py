"""Security: secrets never leak, namespaces cannot use each other's accounts unless allowed, the
chart's RBAC is enough and no more, and the process runs with a read-only root.

One world for the module: the chart's rendered ClusterRole and ClusterRoleBinding are applied to
the real kube-apiserver, and the operator runs as its own process with a token of the chart's
ServiceAccount (TokenRequest), so the server's RBAC authorizer enforces the chart's rules (403 for
anything else). What it asked for, and was granted or refused, is read from the server's audit
log. Its requests pass through a recording proxy that forwards its token unchanged (the audit log
at Metadata level holds no bodies), so every body it sent can be scanned for secrets. Debug
logging is on, under an audit hook that stands in for the read-only root filesystem. It serves the
ADR examples, a shared account in a platform namespace, per-account service principals (one of
them with a wrong secret), an update and a deletion. The Secret values are canaries.
"""

from __future__ import annotations

import asyncio
import re
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from kubernetes import client as k8s

from foundry_emulator.controlplane import ControlPlane
from foundry_emulator.controlplane.audit import AuditEntry
from foundry_emulator.controlplane.proxy import FaultProxy
from foundry_emulator.sandbox import OperatorProcess, Sandbox, fast_settings
from tests.chart.chart_support import REPO_ROOT, iter_rules, objects, one, operator_container, render
from tests.controlplane_fixture import apply_chart_rbac
from tests.integration.conftest import arm_requests, azure_deployments, deployment, examples
from tests.reliability.conftest import (
    CI_CLIENT_ID,
    CI_CLIENT_SECRET,
    LEDGER,
    WRONG_SECRET,
    account_docs,
    converged,
    gone,
    leaks,
    principal_secret,
    put_secret,
    world,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

OPERATOR_USER = "system:serviceaccount:foundry-system:foundry-operator"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


METRICS_PORT = _free_port()
SETTINGS = fast_settings(transient_retry_seconds=0.5, log_level="debug", metrics_port=METRICS_PORT)
ADR = ["gpt-5.4", "reasoning-pro", "gpt-5.3-codex", "gpt-5.1-codex", "deepseek-v3.2", "kimi-k2.6"]

Rule = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)

# Namespaces whose FoundryAccounts name a credentials Secret: the chart binds Secret `get` there only.
SECRET_NAMESPACES = ["platform", "aucert"]
CHART_VALUES: dict[str, Any] = {"rbac": {"secretNamespaces": SECRET_NAMESPACES}}

# Granted by the chart, never exercised by this operator in these runs, and why they stay. Every
# other grant was used by an audited request (grants seen unused were removed from the chart).
GRANTED_NOT_USED: dict[Rule, str] = {}


class Rbac:
    """The chart's rules, and what the operator's user asked the server for (from the audit log)."""

    def __init__(self, rules: set[Rule], entries: list[AuditEntry]) -> None:
        self.rules = rules
        self.entries = [e for e in entries if e.user == OPERATOR_USER and e.resource]
        self.used: Counter[Rule] = Counter()
        self.denied: list[tuple[Rule, str | None, str | None]] = []
        for entry in self.entries:
            rule = _rule(entry)
            if entry.status == 403:
                self.denied.append((rule, entry.namespace, entry.name))
            else:
                self.used[rule] += 1


def _rule(entry: AuditEntry) -> Rule:
    resource = f"{entry.resource}/{entry.subresource}" if entry.subresource else str(entry.resource)
    return (entry.group or "", resource, entry.verb)


def install_chart_rbac(box: Sandbox) -> str:
    """The chart's RBAC with its Secret Roles in SECRET_NAMESPACES; a token of its ServiceAccount."""
    return apply_chart_rbac(box, CHART_VALUES)


def chart_rules() -> set[Rule]:
    docs = render(CHART_VALUES)  # cluster mode: one ClusterRole, plus the Secret Roles
    roles = [one(docs, "ClusterRole"), *objects(docs, "Role")]
    return {
        (group, resource, verb)
        for role in roles
        for group, resource, verbs in iter_rules(role)
        for verb in verbs
    }


async def start_readonly_operator(box: Sandbox, kubeconfig: Path) -> OperatorProcess:
    """`python -m foundry_operator run -A --standalone`, as the chart's ServiceAccount, read-only root."""
    writable = box.state_dir / "tmp"
    writable.mkdir(exist_ok=True)
    env = box.operator_environment(SETTINGS, kubeconfig)
    env.update(TMPDIR=str(writable), HOME=str(writable), PYTHONDONTWRITEBYTECODE="1")
    log_path = box.state_dir / "operator-readonly.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).with_name("readonly_root.py")),
            "run",
            "-A",
            "--standalone",
            env=env,
            cwd=str(writable),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    handle = OperatorProcess(process, log_path)
    box.processes.append(handle)
    LEDGER.counts["operator_starts"] += 1
    return handle


class World:
    def __init__(self, box: Sandbox, proxy: FaultProxy, proc: OperatorProcess, token: str, mark: int) -> None:
        self.box = box
        self.proxy = proxy
        self.proc = proc
        self.token = token
        self.mark = mark  # where the audit log stood before the chart's RBAC was applied

    def rbac(self) -> Rbac:
        return Rbac(chart_rules(), self.box.kube.audit.since(self.mark))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secured(
    tmp_path_factory: pytest.TempPathFactory, control_plane: ControlPlane
) -> AsyncIterator[World]:
    async with world(tmp_path_factory.mktemp("security"), control_plane) as box:
        mark = box.kube.audit.mark()
        token = await asyncio.to_thread(install_chart_rbac, box)
        # The operator logs in with the ServiceAccount's token (kopf and its client read
        # KUBECONFIG), through a proxy that passes the token on and records the bodies; the
        # tests keep the sandbox's admin client.
        proxy = await FaultProxy(box.kube, None, record=True).start()
        box.proxies.append(proxy)
        kubeconfig = box.operator_kubeconfig("operator-sa", token=token, server=proxy.url)
        tenant = box.azure.tenant_id
        await put_secret(
            box, "platform", "platform-sp", principal_secret(tenant, CI_CLIENT_ID, CI_CLIENT_SECRET)
        )
        await put_secret(
            box,
            "aucert",
            "operator-sp",
            principal_secret(tenant, box.azure.client_id, box.azure.client_secret),
        )
        await put_secret(
            box, "aucert", "wrong-sp", principal_secret(tenant, box.azure.client_id, WRONG_SECRET)
        )
        proc = await start_readonly_operator(box, kubeconfig)

        shared = account_docs(allowed=["team-a"], secret="platform-sp")[:1]
        shared[0]["metadata"]["name"] = "shared"
        await box.apply(shared, "platform")
        borrowed = account_docs(secret="platform-sp")[:1]  # a Secret that exists only in platform
        borrowed[0]["metadata"]["name"] = "borrowed"
        wrong = account_docs(secret="wrong-sp")[1:]
        wrong[0]["metadata"]["name"] = "wrong-secret"
        own_sp = account_docs(secret="operator-sp")[1:]
        own_sp[0]["metadata"]["name"] = "east-sp"
        await box.apply([*examples(), *wrong, *own_sp], "aucert")
        await box.apply(
            [deployment("codex", "gpt-5.1-codex", accounts=["east-sp"], deploymentName="codex-sp")], "aucert"
        )
        await box.apply(
            [deployment("gpt", "gpt-5.4", accounts=["platform/shared"], deploymentName="team-a-gpt")],
            "team-a",
        )
        await box.apply(
            [
                *borrowed,
                deployment("gpt", "gpt-5.4", accounts=["platform/shared"], deploymentName="team-b-gpt"),
                deployment("own", "gpt-5.4", accounts=["borrowed"], deploymentName="team-b-own"),
            ],
            "team-b",
        )
        try:
            for name in [*ADR, "codex"]:
                await box.wait_for(lambda n=name: converged(box, "aucert", n), 60, what=f"{name} Ready")
            await box.wait_for(lambda: converged(box, "team-a", "gpt"), 30, what="team-a/gpt Ready")
            # An update and a deletion, through the same RBAC.
            await box.patch_spec("FoundryDeployment", "aucert", "gpt-5.4", {"sku": {"capacity": 120}})
            await box.wait_for(lambda: converged(box, "aucert", "gpt-5.4", capacity=120), 30, what="update")
            await box.delete("FoundryDeployment", "aucert", "deepseek-v3.2")
            await box.wait_for(lambda: gone(box, "aucert", "deepseek-v3.2"), 30, what="deletion")
        except (TimeoutError, AssertionError) as exc:
            raise AssertionError(f"{exc}\n{proc.log_path.read_text()[-6000:]}") from exc
        yield World(box, proxy, proc, token, mark)


async def test_chart_rbac_is_sufficient_and_every_grant_is_accounted_for(secured: World) -> None:
    rbac = secured.rbac()
    # Sufficient: not one request of the operator was refused, but for the Secret in team-b, which
    # the chart deliberately does not grant (test_cross_namespace_use_is_refused_unless_allowed).
    assert [d for d in rbac.denied if d != (("", "secrets", "get"), "team-b", "platform-sp")] == [], (
        rbac.denied
    )
    assert rbac.used, "the audit log holds no request of the operator's ServiceAccount"
    assert set(rbac.used) <= rbac.rules, set(rbac.used) - rbac.rules  # granted by the chart alone
    unused = rbac.rules - set(rbac.used)
    # Minimal: each grant was used, or is listed with the reason it is not exercised here.
    assert unused == set(GRANTED_NOT_USED), {
        "granted, unused, unexplained": sorted(unused - set(GRANTED_NOT_USED)),
        "explained but used (remove from the list)": sorted(set(GRANTED_NOT_USED) - unused),
    }
    LEDGER.counts["rbac_rules_granted"] = len(rbac.rules)
    LEDGER.counts["rbac_rules_used"] = len(rbac.rules) - len(unused)
    LEDGER.counts["rbac_requests_checked"] += sum(rbac.used.values())
    # The server does enforce: the same token asking for something outside the rules is refused.
    as_operator = k8s.CoreV1Api(k8s.ApiClient(secured.box.kube.client_configuration(token=secured.token)))
    with pytest.raises(k8s.exceptions.ApiException) as refused:
        await asyncio.to_thread(as_operator.list_namespaced_secret, "aucert")
    assert refused.value.status == 403
    assert (("", "secrets", "list"), "aucert", None) in secured.rbac().denied
    # The operator never writes to a Secret, never deletes a Kubernetes object, never lists Secrets.
    assert not [rule for rule in rbac.used if rule[1] == "secrets" and rule[2] != "get"]
    assert not [rule for rule in rbac.used if rule[2] in ("delete", "deletecollection")]


async def test_cross_namespace_use_is_refused_unless_allowed(secured: World) -> None:
    box = secured.box
    # Allowed: team-a uses platform/shared, with the platform's service principal.
    team_a = (await box.get("FoundryDeployment", "team-a", "gpt"))["status"]
    assert team_a["accountNamespace"] == "platform" and team_a["account"] == "shared"
    # Not allowed: team-b is refused, and nothing is written to Azure for it.
    refused = await box.wait_condition(
        "FoundryDeployment", "team-b", "gpt", status="False", reason="NoUsableAccount"
    )
    assert "does not allow namespace team-b" in refused["message"]
    assert "add it to that account's spec.allowedNamespaces" in refused["message"]
    # A namespace cannot borrow another namespace's Secret: the name is looked up in its own, where
    # the chart grants no Secret access (team-b is not in rbac.secretNamespaces): the real
    # authorizer refuses the read, and the condition says which chart value to set.
    borrowed = await box.wait_condition(
        "FoundryAccount", "team-b", "borrowed", status="False", reason="CredentialsUnavailable"
    )
    assert "add team-b to the chart's rbac.secretNamespaces" in borrowed["message"]
    refused_reads = [
        e
        for e in box.kube.audit.since(secured.mark)
        if e.user == OPERATOR_USER and e.resource == "secrets" and e.status == 403 and e.name
    ]  # (by name: the RBAC test's negative control lists Secrets with the same token)
    assert refused_reads and {(e.namespace, e.name) for e in refused_reads} == {("team-b", "platform-sp")}
    names = set(azure_deployments(box, "aucert-ai"))
    assert "team-a-gpt" in names and "team-b-gpt" not in names and "team-b-own" not in names
    assert not [e for e in arm_requests(box) if "/deployments/team-b-" in e["path"]]
    # The operator read Secrets only in the namespace of the account that names them.
    reads = box.kube.audit.since(secured.mark)
    assert {
        (e.namespace, e.name)
        for e in reads
        if e.user == OPERATOR_USER and e.resource == "secrets" and e.verb == "get" and e.status == 200
    } <= {
        ("platform", "platform-sp"),
        ("aucert", "operator-sp"),
        ("aucert", "wrong-sp"),
    }
    team_b = await box.config_map("team-b")
    assert team_b is None or not any(key.startswith("FOUNDRY_DEPLOYMENT_") for key in team_b)


def _scan(where: str, text: str, found: list[tuple[str, str]]) -> None:
    LEDGER.counts["secret_scan_bytes"] += len(text)
    found.extend((where, canary[:12] + "...") for canary in leaks(text))


def _every_object(box: Sandbox) -> list[tuple[str, dict[str, Any]]]:
    """ConfigMaps, both kinds (status included) and Events of both APIs, in every namespace."""
    api = box.api
    custom: Any = box.custom
    found: list[tuple[str, dict[str, Any]]] = []
    listed: list[tuple[str, list[Any]]] = [
        ("configmaps", k8s.CoreV1Api(api).list_config_map_for_all_namespaces().items),
        ("events", k8s.CoreV1Api(api).list_event_for_all_namespaces().items),
        ("events.events.k8s.io", k8s.EventsV1Api(api).list_event_for_all_namespaces().items),
    ]
    for resource, items in listed:
        for item in items:
            obj = api.sanitize_for_serialization(item)
            found.append((f"{resource} {obj['metadata'].get('namespace')}/{obj['metadata']['name']}", obj))
    for plural in ("foundrydeployments", "foundryaccounts"):
        for obj in custom.list_cluster_custom_object("foundry.llmops.io", "v1alpha1", plural)["items"]:
            found.append((f"{plural} {obj['metadata']['namespace']}/{obj['metadata']['name']}", obj))
    return found


async def test_no_secret_in_configmaps_statuses_events_or_logs(secured: World) -> None:
    box = secured.box
    found: list[tuple[str, str]] = []
    # The wrong secret was really used (Entra ID refused it), so its error paths were exercised.
    wrong = await box.wait_condition(
        "FoundryAccount", "aucert", "wrong-secret", status="False", reason="AzureAuthenticationFailed"
    )
    assert "AADSTS7000215" in wrong["message"]
    for where, obj in await asyncio.to_thread(_every_object, box):
        _scan(where, yaml.safe_dump(obj), found)
    # Every body the operator sent to the Kubernetes API, and every answer it read (watch streams
    # aside): the answers to its Secret reads hold the canaries, which shows the scan finds them
    # where they are; nothing else may.
    seeds: list[tuple[str, str]] = []
    exchanges = secured.proxy.exchanges
    assert exchanges and [x for x in exchanges if x.request_body]
    for exchange in exchanges:
        _scan(f"request {exchange.info.method} {exchange.path}", exchange.request_body.decode(), found)
        answer = exchange.response_body.decode(errors="replace")
        if exchange.info.resource == "secrets" and exchange.info.verb == "get":
            seeds.extend((exchange.path, canary) for canary in leaks(answer))
            continue
        _scan(f"answer to {exchange.info.method} {exchange.path}", answer, found)
    assert len({canary for _, canary in seeds}) >= 3, seeds
    # Azure's request log: no secret in a URL or query (the client secret goes in the token body only).
    for entry in box.azure.log.since(0):
        _scan(f"azure {entry['method']} {entry['path']}", repr(entry), found)
    # The operator's whole log, at debug level, and any file it wrote under its TMPDIR.
    log = secured.proc.log_path.read_text()
    assert "kopf" in log and "DEBUG" in log  # the log is the real, verbose one
    _scan("operator log", log, found)
    for path in (box.state_dir / "tmp").rglob("*"):
        if path.is_file():
            _scan(f"file {path}", path.read_text(errors="replace"), found)
    assert found == [], found


async def test_read_only_root_and_non_root(secured: World) -> None:
    log = secured.proc.log_path.read_text()
    violations = [line for line in log.splitlines() if "READ-ONLY-ROOT VIOLATION" in line]
    assert violations == [], violations
    assert secured.proc.process.returncode is None  # alive and well after the whole run
    # The chart: non-root, read-only root filesystem, no privilege escalation, no capabilities,
    # and /tmp the only writable mount (an emptyDir).
    docs = render()
    container = operator_container(docs)
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False and context["capabilities"]["drop"] == ["ALL"]
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    writable = [m for m in container["volumeMounts"] if not m.get("readOnly")]
    assert [m["mountPath"] for m in writable] == ["/tmp"]
    tmp = next(v for v in pod["volumes"] if v["name"] == writable[0]["name"])
    assert "emptyDir" in tmp
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert not [name for name in env if "SECRET" in name and env[name]]  # secrets only by reference
    # The image: a numeric non-root USER last, no bytecode writes, HOME under /tmp.
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    assert "PYTHONDONTWRITEBYTECODE=1" in dockerfile and "HOME=/tmp" in dockerfile


async def test_metrics_hold_no_secret(secured: World) -> None:
    """The operator's Prometheus endpoint (labels name principals by fingerprint, never by secret)."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{METRICS_PORT}/metrics") as response:
            text = await response.text()
    assert "foundry_arm_requests_total" in text
    found: list[tuple[str, str]] = []
    _scan("metrics", text, found)
    assert found == []
