"""Admission/defaulting/authorizer hooks, fault injection, the request log, and the in-process API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes.client
import pytest
from kube_fixtures import GROUP, api_client, api_error, configmap, core, custom, in_thread, kube, widget

from foundry_emulator.kube import ApiError, KubeApiServer, field_error

__all__ = ["api_client", "core", "custom", "kube"]  # fixtures imported for pytest

REPO = Path(__file__).resolve().parents[2]
MERGE = "application/merge-patch+json"


async def test_admission_errors_are_the_real_422(
    kube: KubeApiServer, custom: kubernetes.client.CustomObjectsApi
) -> None:
    calls: list[tuple[str, str, bool]] = []

    async def admission(
        plural: str, group: str, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> list[Any]:
        calls.append((plural, group, old is not None))
        size = obj.get("spec", {}).get("size")
        errors: list[Any] = []
        if not isinstance(size, int) or size < 1:
            errors.append(field_error("spec.size", value=size, detail="should be greater than or equal to 1"))
        if "model" not in obj.get("spec", {}):
            errors.append(
                {"field": "spec.model", "message": "Required value", "reason": "FieldValueRequired"}
            )
        return errors

    kube.admission = admission
    args = (GROUP, "v1", "default", "widgets")
    code, body = await api_error(custom.create_namespaced_custom_object, *args, widget("w1", size=0))
    assert code == 422
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        f'Widget.{GROUP} "w1" is invalid: [spec.size: Invalid value: 0: should be greater than or equal to 1, '
        "spec.model: Required value]"
    )
    assert body["details"] == {
        "name": "w1",
        "group": GROUP,
        "kind": "Widget",
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": "Invalid value: 0: should be greater than or equal to 1",
                "field": "spec.size",
            },
            {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.model"},
        ],
    }
    await in_thread(custom.create_namespaced_custom_object, *args, widget("w1", size=1, model="gpt-5.1"))
    code, body = await api_error(custom.patch_namespaced_custom_object, *args, "w1", {"spec": {"size": -1}})
    assert code == 422 and body["message"] == (
        f'Widget.{GROUP} "w1" is invalid: spec.size: Invalid value: -1: should be greater than or equal to 1'
    )
    assert calls == [("widgets", GROUP, False), ("widgets", GROUP, False), ("widgets", GROUP, True)]
    # Built-in kinds never reach the hook (ConfigMaps have no CRD schema).
    await kube.create(configmap("cm"))
    assert len(calls) == 3


async def test_defaulter_fills_defaults(kube: KubeApiServer) -> None:
    def defaulter(plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {**obj, "spec": {"replicas": 1, **obj.get("spec", {})}}

    kube.defaulter = defaulter
    created = await kube.create(widget("w1", size=3))
    assert created["spec"] == {"replicas": 1, "size": 3}


async def test_authorizer_denies_with_the_real_403(kube: KubeApiServer, tmp_path: Path) -> None:
    user = "system:serviceaccount:foundry-system:foundry-operator"
    asked: list[tuple[Any, ...]] = []

    def authorizer(
        verb: str,
        group: str,
        resource: str,
        subresource: str | None,
        namespace: str | None,
        name: str | None,
        user: str,
    ) -> bool:
        asked.append((verb, group, resource, subresource, namespace, name, user))
        return not (resource == "configmaps" and verb in ("patch", "list"))

    kube.authorizer = authorizer
    await kube.create(configmap("llm-config"))  # in-process access is not subject to RBAC
    with kubernetes.client.ApiClient(kube.client_configuration(user=user)) as client:
        api = kubernetes.client.CoreV1Api(client)
        code, body = await api_error(
            api.patch_namespaced_config_map, "llm-config", "default", {"data": {}}, _content_type=MERGE
        )
        assert code == 403
        assert body["message"] == (
            f'configmaps "llm-config" is forbidden: User "{user}" cannot patch resource "configmaps" '
            'in API group "" in the namespace "default"'
        )
        assert body["details"] == {"name": "llm-config", "kind": "configmaps"}
        code, body = await api_error(api.list_config_map_for_all_namespaces)
        assert body["message"] == (
            f'configmaps is forbidden: User "{user}" cannot list resource "configmaps" in API group "" at the cluster scope'
        )
        await in_thread(api.read_namespaced_config_map, "llm-config", "default")
    assert ("get", "", "configmaps", None, "default", "llm-config", user) in asked


async def test_fault_injection_and_request_log(
    kube: KubeApiServer, core: kubernetes.client.CoreV1Api
) -> None:
    await kube.create(configmap("llm-config", a="1"))
    kube.conflict_next("configmaps", 2)
    for _ in range(2):
        code, body = await api_error(
            core.patch_namespaced_config_map,
            "llm-config",
            "default",
            {"data": {"a": "2"}},
            _content_type=MERGE,
        )
        assert (code, body["reason"]) == (409, "Conflict")
        assert body["message"].startswith('Operation cannot be fulfilled on configmaps "llm-config"')
    patched = await in_thread(
        core.patch_namespaced_config_map, "llm-config", "default", {"data": {"a": "3"}}, _content_type=MERGE
    )
    assert patched.data == {"a": "3"}

    kube.fail_next(1, code=500, verbs=["get"], resource="configmaps")
    code, body = await api_error(core.read_namespaced_config_map, "llm-config", "default")
    assert (code, body["reason"]) == (500, "InternalError")

    writes = kube.requests.writes(resource="configmaps", name="llm-config")
    assert [(w.verb, w.status, w.reason) for w in writes] == [
        ("patch", 409, "Conflict"),
        ("patch", 409, "Conflict"),
        ("patch", 200, None),
    ]
    assert kube.requests.count(verb="get", resource="configmaps") == 1
    entry = writes[-1]
    assert (entry.method, entry.path, entry.content_type) == (
        "PATCH",
        "/api/v1/namespaces/default/configmaps/llm-config",
        MERGE,
    )
    assert entry.body == {"data": {"a": "3"}} and entry.namespace == "default" and entry.group == ""
    assert entry.duration is not None and entry.user == "kubernetes-admin"


async def test_kmock_reactions_override_the_emulated_api(kube: KubeApiServer) -> None:
    kube.handler["get /version"] << {"gitVersion": "v9.9.9"}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{kube.url}/version") as rsp:
            assert (await rsp.json()) == {"gitVersion": "v9.9.9"}
        async with session.get(f"{kube.url}/api/v1/namespaces/default/configmaps") as rsp:
            assert rsp.status == 200 and (await rsp.json())["kind"] == "ConfigMapList"


async def test_in_process_api(kube: KubeApiServer) -> None:
    created = await kube.create(configmap("cm", a="1"))
    assert kube.get("cm", "default", "cm") == created  # short names resolve like kubectl
    assert kube.get(("v1", "ConfigMap"), "default", "cm") == created
    created["data"]["a"] = "mutated"  # results are copies
    assert kube.get("configmaps", "default", "cm")["data"] == {"a": "1"}
    with pytest.raises(ApiError) as exc:
        kube.get("configmaps", "default", "missing")
    assert exc.value.code == 404 and exc.value.reason == "NotFound"

    current = kube.get("configmaps", "default", "cm")
    replaced = await kube.replace(current | {"data": {"b": "2"}})
    assert replaced["data"] == {"b": "2"}
    with pytest.raises(ApiError) as exc:
        await kube.replace(current | {"data": {"c": "3"}})  # stale resourceVersion
    assert exc.value.reason == "Conflict"
    patched = await kube.patch(
        "configmaps", "default", "cm", [{"op": "add", "path": "/data/c", "value": "3"}], patch_type="json"
    )
    assert patched["data"] == {"b": "2", "c": "3"}
    assert [o["metadata"]["name"] for o in kube.list("configmaps", label_selector="!nothing")] == ["cm"]

    # kmock's ObjectsArray mirrors the store, with history.
    history = kube.objects["v1/configmaps", "default", "cm"].history
    assert [dict(v or {}).get("data") for v in history] == [{"a": "1"}, {"b": "2"}, {"b": "2", "c": "3"}]

    waiter = asyncio.create_task(kube.wait_for("configmaps", "default", "cm", lambda o: o is None, timeout=5))
    await asyncio.sleep(0)
    await kube.delete("configmaps", "default", "cm")
    assert await waiter is None


async def test_multi_version_crd_serves_every_version_from_one_storage(kube: KubeApiServer) -> None:
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    kube.register_crd(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"tools.{GROUP}"},
            "spec": {
                "group": GROUP,
                "scope": "Namespaced",
                "names": {"kind": "Tool", "plural": "tools"},
                "versions": [
                    {"name": "v1beta1", "served": True, "storage": False, "schema": schema},
                    {"name": "v1", "served": True, "storage": True, "schema": schema},
                ],
            },
        }
    )
    await kube.create(
        {"apiVersion": f"{GROUP}/v1beta1", "kind": "Tool", "metadata": {"name": "t", "namespace": "default"}}
    )
    assert kube.get(f"{GROUP}/v1/tools", "default", "t")["apiVersion"] == f"{GROUP}/v1"
    assert kube.get(f"{GROUP}/v1beta1/tools", "default", "t")["apiVersion"] == f"{GROUP}/v1beta1"
    async with aiohttp.ClientSession() as session, session.get(f"{kube.url}/apis/{GROUP}") as rsp:
        group = await rsp.json()
    assert group["preferredVersion"]["version"] == "v1"


async def test_the_projects_crds_load(kube: KubeApiServer) -> None:
    crds = sorted((REPO / "crds").glob("*.yaml"))
    if not crds:
        pytest.skip("no CRDs generated yet")
    specs = kube.register_crds(crds)
    assert {s.kind for s in specs} >= {"FoundryDeployment", "FoundryAccount"}
    fdep = kube.resource("fdep")
    assert fdep.group == "foundry.llmops.io" and fdep.has_status and fdep.namespaced
    assert kube.register_crds(crds) == specs  # re-applying is idempotent
