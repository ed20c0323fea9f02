"""SIGKILL at each step of a create, an update and a delete; restart; the end state is right.

One operator process at a time (`python -m foundry_operator run`), killed with SIGKILL as a pod
would be, then started again. Each round holds three operations at the same step at once, one
per Azure account (writes to one account are serialized, so three accounts let three writes be
in flight together):

- `created`: a new FoundryDeployment on aucert-ai;
- `updated`: a Ready one whose capacity changes, on aucert-ai-east;
- `deleted`: a Ready one being deleted, on aucert-ai-west2.

The steps are driven, not slept into:

- before-write: the operator has decided to write and is reading the deployment first (an
  Azure fault delays that GET); the PUT/DELETE was never sent;
- write-in-flight: the PUT/DELETE reached Azure but its answer had not come back (a delay fault
  on the write itself; Azure applies it after the process is gone);
- lro-running: Azure accepted the write and the long-running operation is still running;
- azure-done: Azure finished, but neither the status nor the ConfigMap was written: the
  operator runs as its own user ("foundry-operator", a client certificate), whose ClusterRole
  lacks ConfigMap writes and the FoundryDeployment status; a RoleBinding grants those in each
  namespace. The test deletes the round's RoleBinding, so the real RBAC authorizer answers 403,
  and recreates it after the kill.

After each restart: the objects are Ready for their generation (or gone), Azure holds exactly
one deployment per object, created once, with the new capacity; the deleted one is gone from
Azure, from the ConfigMap, and from Kubernetes (no dangling finalizer); a foreign key and every
earlier round's keys are still in llm-config.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from foundry_emulator.sandbox import TEST_LABEL, OperatorProcess, Sandbox, fast_settings
from tests.chart.chart_support import one, render
from tests.integration.conftest import arm_requests, azure_deployments, deployment
from tests.reliability.conftest import (
    THIRD_ACCOUNT,
    account_docs,
    converged,
    gone,
    inject,
    kill,
    put_configmap,
    start_process,
)

pytestmark = pytest.mark.slow

STEPS = ["before-write", "write-in-flight", "lro-running", "azure-done"]
SETTINGS = fast_settings(transient_retry_seconds=0.5, lro_poll_seconds=0.1)
FOREIGN = {"TEAM_OWNED_SETTING": "keep-me"}
OPERATOR = "foundry-operator"
WRITES_ROLE = "foundry-crash-namespace-writes"
LABELS = dict([TEST_LABEL.split("=")])


def _is_namespace_write(group: str, resource: str) -> bool:
    return (group, resource) in (("", "configmaps"), ("foundry.llmops.io", "foundrydeployments/status"))


def _install_rbac(box: Sandbox) -> Path:
    """The chart's ClusterRole without ConfigMap writes and FoundryDeployment status, bound to
    the operator's user; those writes in a ClusterRole granted per namespace (`_grant`)."""
    rbac = k8s.RbacAuthorizationV1Api(box.api)
    base: list[k8s.V1PolicyRule] = []
    for rule in one(render(), "ClusterRole")["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                verbs = rule["verbs"]
                if (group, resource) == ("", "configmaps"):
                    verbs = [v for v in verbs if v in ("get", "list", "watch")]
                elif _is_namespace_write(group, resource):
                    continue
                base.append(k8s.V1PolicyRule(api_groups=[group], resources=[resource], verbs=verbs))
    writes = [
        k8s.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["create", "update", "patch"]),
        k8s.V1PolicyRule(
            api_groups=["foundry.llmops.io"], resources=["foundrydeployments/status"], verbs=["get", "patch"]
        ),
    ]
    for name, rules in (("foundry-crash-operator", base), (WRITES_ROLE, writes)):
        rbac.create_cluster_role(
            k8s.V1ClusterRole(metadata=k8s.V1ObjectMeta(name=name, labels=LABELS), rules=rules)
        )
    rbac.create_cluster_role_binding(
        k8s.V1ClusterRoleBinding(
            metadata=k8s.V1ObjectMeta(name="foundry-crash-operator", labels=LABELS),
            role_ref=k8s.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="foundry-crash-operator"
            ),
            subjects=[k8s.RbacV1Subject(kind="User", name=OPERATOR, api_group="rbac.authorization.k8s.io")],
        )
    )
    return box.operator_kubeconfig(OPERATOR, identity=box.kube.user(OPERATOR))


def _may_write_configmaps(box: Sandbox, namespace: str) -> bool:
    review = k8s.V1SubjectAccessReview(
        spec=k8s.V1SubjectAccessReviewSpec(
            user=OPERATOR,
            resource_attributes=k8s.V1ResourceAttributes(
                namespace=namespace, verb="update", resource="configmaps"
            ),
        )
    )
    result = k8s.AuthorizationV1Api(box.api).create_subject_access_review(review)
    return bool(result.status and result.status.allowed)


async def _grant(box: Sandbox, namespace: str, granted: bool) -> None:
    """Create or delete the namespace's RoleBinding, and wait until the authorizer agrees."""
    rbac = k8s.RbacAuthorizationV1Api(box.api)
    if granted:
        binding = k8s.V1RoleBinding(
            metadata=k8s.V1ObjectMeta(name="foundry-operator-writes"),
            role_ref=k8s.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=WRITES_ROLE
            ),
            subjects=[k8s.RbacV1Subject(kind="User", name=OPERATOR, api_group="rbac.authorization.k8s.io")],
        )
        await asyncio.to_thread(rbac.create_namespaced_role_binding, namespace, binding)
    else:
        await asyncio.to_thread(rbac.delete_namespaced_role_binding, "foundry-operator-writes", namespace)

    async def agreed() -> bool:
        return await asyncio.to_thread(_may_write_configmaps, box, namespace) == granted

    await box.wait_for(agreed, 10, what=f"RBAC in {namespace} granted={granted}")


def _names(round_: int) -> dict[str, str]:
    return {role: f"r{round_}-{role}" for role in ("created", "updated", "deleted")}


def _docs(round_: int, role: str, capacity: int) -> dict[str, Any]:
    account = {"created": "west", "updated": "east", "deleted": "west2"}[role]
    return deployment(
        role,
        "gpt-5.4",
        accounts=[account],
        deploymentName=_names(round_)[role],
        sku={"capacity": capacity},
    )


def _writes(box: Sandbox, name: str, method: str, status: int | None = None) -> list[dict[str, Any]]:
    return [
        entry
        for entry in arm_requests(box, method, "deployment", status)
        if entry["path"].rsplit("/", 1)[-1] == name
    ]


def _azure(box: Sandbox) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for account in ("aucert-ai", "aucert-ai-east", THIRD_ACCOUNT):
        found.update(azure_deployments(box, account))
    return found


def _settled(box: Sandbox, name: str, capacity: int | None) -> bool:
    record = _azure(box).get(name)
    if capacity is None:
        return record is None
    return record is not None and record.capacity == capacity and record.operation is None


async def _prepare(box: Sandbox, round_: int) -> str:
    """A namespace with accounts, a foreign ConfigMap key, and `updated` + `deleted` Ready."""
    namespace = f"crash-{round_}"
    await put_configmap(box, namespace, dict(FOREIGN))
    await _grant(box, namespace, True)
    await box.apply(
        [*account_docs(third=True), _docs(round_, "updated", 10), _docs(round_, "deleted", 10)], namespace
    )
    for role in ("updated", "deleted"):
        await box.wait_for(lambda r=role: converged(box, namespace, r), 30, what=f"{namespace}/{role} Ready")
    return namespace


async def _trigger(box: Sandbox, namespace: str, round_: int) -> None:
    await box.apply([_docs(round_, "created", 10)], namespace)
    await box.patch_spec("FoundryDeployment", namespace, "updated", {"sku": {"capacity": 20}})
    await box.delete("FoundryDeployment", namespace, "deleted")


async def _hold(box: Sandbox, step: str, namespace: str, round_: int) -> None:
    """Start the three operations and return when all three stand at `step`."""
    names = _names(round_)
    if step == "before-write":
        faults = [
            inject(box, method="GET", path=f"/deployments/{names[role]}$", delaySeconds=1.0, count=1)
            for role in ("created", "updated", "deleted")
        ]
        await _trigger(box, namespace, round_)
        await box.wait_for(lambda: all(f.hits for f in faults), 30, what="the reads before the writes")
        assert not _writes(box, names["created"], "PUT") and not _writes(box, names["deleted"], "DELETE")
    elif step == "write-in-flight":
        faults = [
            inject(box, method="PUT", path=f"/deployments/{names['created']}$", delaySeconds=1.0, count=1),
            inject(box, method="PUT", path=f"/deployments/{names['updated']}$", delaySeconds=1.0, count=1),
            inject(box, method="DELETE", path=f"/deployments/{names['deleted']}$", delaySeconds=1.0, count=1),
        ]
        await _trigger(box, namespace, round_)
        await box.wait_for(lambda: all(f.hits for f in faults), 30, what="the three writes in flight")
    elif step == "lro-running":
        box.azure.state.scenario.timing.lroSeconds = 3.0
        await _trigger(box, namespace, round_)
        await box.wait_for(
            lambda: (
                _writes(box, names["created"], "PUT", 201)
                and [w for w in _writes(box, names["updated"], "PUT", 200)]
                and _writes(box, names["deleted"], "DELETE", 202)
            ),
            30,
            what="the three writes accepted",
        )
        box.azure.state.scenario.timing.lroSeconds = 0.3  # the running operations keep their 3 s
        assert all(_azure(box)[names[role]].operation is not None for role in names)
    else:  # azure-done: Azure finished; the status and the ConfigMap cannot be written yet
        await _grant(box, namespace, False)
        mark = box.kube.audit.mark()
        await _trigger(box, namespace, round_)
        await box.wait_for(
            lambda: (
                _settled(box, names["created"], 10)
                and _settled(box, names["updated"], 20)
                and _settled(box, names["deleted"], None)
            ),
            30,
            what="Azure done",
        )

        def refused() -> list[Any]:
            return [
                e
                for e in box.kube.audit.since(mark)
                if e.user == OPERATOR and e.namespace == namespace and e.status == 403
            ]

        await box.wait_for(
            lambda: [e for e in refused() if e.resource == "configmaps"], 10, what="a refused ConfigMap write"
        )
        assert {(e.resource, e.subresource) for e in refused()} <= {
            ("configmaps", None),
            ("foundrydeployments", "status"),
        }, refused()


async def _verify(box: Sandbox, namespace: str, round_: int, step: str) -> None:
    names = _names(round_)
    await box.wait_for(lambda: converged(box, namespace, "created", capacity=10), 45, what="created Ready")
    await box.wait_for(lambda: converged(box, namespace, "updated", capacity=20), 45, what="updated Ready")
    await box.wait_for(lambda: gone(box, namespace, "deleted"), 45, what="deleted gone")
    await box.wait_for(lambda: _settled(box, names["deleted"], None), 30, what="deleted gone from Azure")

    azure = _azure(box)
    assert azure[names["created"]].capacity == 10 and azure[names["updated"]].capacity == 20
    # Created exactly once: one PUT answered 201 for the new deployment, none for the updated one.
    assert len(_writes(box, names["created"], "PUT", 201)) == 1, step
    assert len(_writes(box, names["updated"], "PUT", 201)) == 1, step  # its creation in _prepare
    assert not _writes(box, names["created"], "DELETE") and not _writes(box, names["updated"], "DELETE")
    if step != "write-in-flight":
        # The dead process's write never collides with the new process's: it is waited out.
        own = [names[r] for r in names]
        conflicts = [e for e in arm_requests(box, status=409) if e["path"].rsplit("/", 1)[-1] in own]
        assert conflicts == [], step
        assert len(_writes(box, names["created"], "PUT")) == 1, step
        assert len(_writes(box, names["updated"], "PUT")) == 2, step  # create + the one update
        assert len([e for e in _writes(box, names["deleted"], "DELETE") if e["status"] != 409]) <= 2, step

    for role in ("created", "updated"):
        obj = await box.get("FoundryDeployment", namespace, role)
        assert obj["metadata"].get("finalizers") == ["foundry.llmops.io/finalizer"]
        assert obj["status"]["deploymentName"] == names[role]


async def _configmaps_intact(box: Sandbox, rounds: int) -> None:
    for round_ in range(rounds):
        namespace = f"crash-{round_}"
        names = _names(round_)

        async def complete(ns: str = namespace, n: dict[str, str] = names) -> dict[str, str] | None:
            data = await box.config_map(ns)
            wanted = {
                "FOUNDRY_DEPLOYMENT_CREATED": n["created"],
                "FOUNDRY_DEPLOYMENT_UPDATED": n["updated"],
                **FOREIGN,
            }
            if data and all(data.get(k) == v for k, v in wanted.items()):
                return data
            return None

        data = await box.wait_for(complete, 20, what=f"llm-config of {namespace}")
        assert not any(key.endswith("_DELETED") for key in data), data
        assert data["FOUNDRY_ENDPOINT"] == "https://aucert-ai.openai.azure.com/"
        assert data["FOUNDRY_ENDPOINT_UPDATED"] == "https://aucert-ai-east.openai.azure.com/"


async def test_sigkill_at_each_step_of_create_update_delete(box: Sandbox) -> None:
    kubeconfig = await asyncio.to_thread(_install_rbac, box)
    proc: OperatorProcess = await start_process(box, SETTINGS, kubeconfig=kubeconfig)
    for round_, step in enumerate(STEPS):
        namespace = await _prepare(box, round_)
        await _hold(box, step, namespace, round_)
        await kill(proc)
        if step == "azure-done":
            await _grant(box, namespace, True)
        proc = await start_process(box, SETTINGS, restart=True, kubeconfig=kubeconfig)
        try:
            await _verify(box, namespace, round_, step)
        except (AssertionError, TimeoutError) as exc:
            raise AssertionError(
                f"after a SIGKILL at {step}: {exc}\n{proc.log_path.read_text()[-4000:]}"
            ) from exc
        await _configmaps_intact(box, round_ + 1)
    # Nothing left half-deleted anywhere.
    for round_ in range(len(STEPS)):
        for obj in await box.list("FoundryDeployment", f"crash-{round_}"):
            assert "deletionTimestamp" not in obj["metadata"]
