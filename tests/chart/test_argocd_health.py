"""The Argo CD health checks in docs/argocd/, run in Lua 5.1 the way Argo CD runs them.

Argo CD executes health scripts in gopher-lua, a Lua 5.1 implementation, with the live object as the
global `obj` (JSON decoded into tables; absent fields are nil) and takes the returned table's
`status` and `message`. lupa's lua51 runtime gives the same language level, so a script that uses
a newer Lua feature fails here too.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import REPO_ROOT
from lupa import lua51

ARGOCD = REPO_ROOT / "docs" / "argocd"
SCRIPTS = {
    "FoundryDeployment": ARGOCD / "health-foundrydeployment.lua",
    "FoundryAccount": ARGOCD / "health-foundryaccount.lua",
}

HealthCheck = Callable[[dict[str, Any]], tuple[str, str]]


def _to_lua(runtime: Any, value: Any) -> Any:
    # JSON -> Lua as Argo CD does it: objects and arrays become tables, arrays 1-indexed.
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def load_check(path: Path) -> HealthCheck:
    def check(obj: dict[str, Any]) -> tuple[str, str]:
        runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
        assert runtime.eval("_VERSION") == "Lua 5.1"
        runtime.globals().obj = _to_lua(runtime, obj)
        # Argo CD runs the script as a chunk; `return hs` ends it.
        result = runtime.execute(path.read_text())
        return str(result["status"]), str(result["message"] or "")

    return check


def condition(
    kind: str, status: str, reason: str = "", message: str = "", generation: int = 2
) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason or kind,
        "message": message,
        "lastTransitionTime": "2026-05-03T10:00:00Z",
        "observedGeneration": generation,
    }


def resource(
    kind: str, conditions: list[dict[str, Any]] | None, generation: int = 2, observed: int | None = 2
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "foundry.llmops.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "reasoning-pro", "namespace": "aucert", "generation": generation},
    }
    if conditions is not None:
        obj["status"] = {"conditions": conditions}
        if observed is not None:
            obj["status"]["observedGeneration"] = observed
    return obj


READY = condition(
    "Ready", "True", "Published", "gpt-5.4-pro placed on aucert-ai-east (eastus2) and published"
)
PLACED = condition("Placed", "True", "Placed", "aucert-ai-east (eastus2)")
NOT_RECONCILING = condition("Reconciling", "False", "Idle")

CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("no status yet", resource("FoundryDeployment", None), "Progressing", "Waiting for the operator"),
    (
        "spec changed, not observed yet",
        resource("FoundryDeployment", [READY, NOT_RECONCILING], generation=3, observed=2),
        "Progressing",
        "observe generation 3",
    ),
    (
        "status without observedGeneration",
        resource("FoundryDeployment", [READY], observed=None),
        "Progressing",
        "observe generation 2",
    ),
    ("ready", resource("FoundryDeployment", [READY, PLACED, NOT_RECONCILING]), "Healthy", READY["message"]),
    (
        "ready, retiring soon: still healthy, with the warning",
        resource(
            "FoundryDeployment",
            [
                READY,
                condition(
                    "RetirementSoon",
                    "True",
                    "RetirementAnnounced",
                    "gpt-4o-mini retires on 2026-09-30; replacement gpt-5.4-mini",
                ),
            ],
        ),
        "Healthy",
        READY["message"] + " (warning: gpt-4o-mini retires on 2026-09-30; replacement gpt-5.4-mini)",
    ),
    (
        "retirement warning False is ignored",
        resource("FoundryDeployment", [READY, condition("RetirementSoon", "False")]),
        "Healthy",
        READY["message"],
    ),
    (
        "stalled: needs a spec change",
        resource(
            "FoundryDeployment",
            [
                condition("Ready", "False", "NoEligibleAccount", "not placed"),
                condition(
                    "Stalled",
                    "True",
                    "NoEligibleAccount",
                    "gpt-5.4-pro (2026-03-05, GlobalStandard) is not offered in westus (account aucert-ai); offered in eastus2, southcentralus",
                ),
            ],
        ),
        "Degraded",
        "is not offered in westus (account aucert-ai); offered in eastus2, southcentralus",
    ),
    (
        "stalled wins over a stale Ready=True",
        resource(
            "FoundryDeployment",
            [READY, condition("Stalled", "True", "Conflict", "deployment owned by aucert/other")],
        ),
        "Degraded",
        "deployment owned by aucert/other",
    ),
    (
        "stalled without message falls back to Ready's",
        resource(
            "FoundryDeployment",
            [
                condition("Ready", "False", "Conflict", "owned by another object"),
                condition("Stalled", "True"),
            ],
        ),
        "Degraded",
        "owned by another object",
    ),
    (
        "reconciling: Azure deployment being created",
        resource(
            "FoundryDeployment",
            [
                condition("Ready", "False", "Deploying", "waiting"),
                condition("Reconciling", "True", "Deploying", "provisioningState Creating"),
            ],
        ),
        "Progressing",
        "provisioningState Creating",
    ),
    (
        "not ready, not reconciling, not stalled",
        resource(
            "FoundryDeployment",
            [condition("Ready", "False", "AzureUnavailable", "ARM returned 503"), NOT_RECONCILING],
        ),
        "Degraded",
        "ARM returned 503",
    ),
    (
        "no Ready condition yet",
        resource("FoundryDeployment", [PLACED]),
        "Progressing",
        "Waiting for the Ready condition",
    ),
    (
        "Ready Unknown",
        resource("FoundryDeployment", [condition("Ready", "Unknown", "Starting", "checking the catalog")]),
        "Progressing",
        "checking the catalog",
    ),
]


@pytest.fixture(scope="module")
def deployment_health() -> HealthCheck:
    return load_check(SCRIPTS["FoundryDeployment"])


@pytest.fixture(scope="module")
def account_health() -> HealthCheck:
    return load_check(SCRIPTS["FoundryAccount"])


@pytest.mark.parametrize(("what", "obj", "status", "message"), CASES, ids=[c[0] for c in CASES])
def test_foundrydeployment_health(
    deployment_health: HealthCheck, what: str, obj: dict[str, Any], status: str, message: str
) -> None:
    got_status, got_message = deployment_health(obj)
    assert got_status == status, f"{what}: {got_status} ({got_message})"
    if status == "Healthy":
        assert got_message == message
    else:
        assert message in got_message


@pytest.mark.parametrize(("what", "obj", "status", "message"), CASES, ids=[c[0] for c in CASES])
def test_foundryaccount_health_follows_the_same_rules(
    account_health: HealthCheck, what: str, obj: dict[str, Any], status: str, message: str
) -> None:
    account = copy.deepcopy(obj)
    account["kind"] = "FoundryAccount"
    got_status, got_message = account_health(account)
    assert got_status == status, f"{what}: {got_status} ({got_message})"
    # Accounts have no RetirementSoon condition: a Ready account reports Ready's message only.
    if status == "Healthy":
        assert got_message == READY["message"]
    else:
        assert message in got_message


@pytest.mark.parametrize("kind", sorted(SCRIPTS))
def test_being_deleted_is_progressing(kind: str) -> None:
    obj = resource(kind, [READY, condition("Stalled", "True", "Conflict", "x")])
    obj["metadata"]["deletionTimestamp"] = "2026-05-03T10:00:00Z"
    obj["metadata"]["finalizers"] = ["kopf.zalando.org/KopfFinalizerMarker"]
    status, message = load_check(SCRIPTS[kind])(obj)
    assert status == "Progressing"
    assert "Being deleted" in message


def test_argocd_cm_snippet_carries_the_scripts_verbatim() -> None:
    cm = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "argocd-cm"
    # Argo CD's key format: resource.customizations.health.<group>_<kind>.
    assert cm["data"] == {
        f"resource.customizations.health.foundry.llmops.io_{kind}": path.read_text()
        for kind, path in SCRIPTS.items()
    }


def test_sample_application_orders_operator_before_models() -> None:
    apps = [d for d in yaml.safe_load_all((ARGOCD / "application.yaml").read_text()) if d]
    by_name = {a["metadata"]["name"]: a for a in apps}
    operator, models = by_name["foundry-operator"], by_name["llm-models"]
    assert all(a["apiVersion"] == "argoproj.io/v1alpha1" and a["kind"] == "Application" for a in apps)
    assert int(operator["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) < int(
        models["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
    )
    assert operator["spec"]["source"]["path"] == "charts/foundry-operator"
    assert "ServerSideApply=true" in operator["spec"]["syncPolicy"]["syncOptions"]


def test_examples_sync_accounts_before_deployments() -> None:
    """The sync waves docs/gitops.md relies on: accounts in wave -1, deployments in wave 0."""
    waves: dict[str, set[int]] = {}
    for path in sorted((REPO_ROOT / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("apiVersion", "").startswith("foundry.llmops.io/"):
                waves.setdefault(doc["kind"], set()).add(
                    int(doc["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
                )
    assert waves == {"FoundryAccount": {-1}, "FoundryDeployment": {0}}
