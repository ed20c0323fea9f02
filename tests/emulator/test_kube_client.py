"""The real `kubernetes` client against the Kubernetes API emulator: CRUD, errors, selectors, subresources."""

from __future__ import annotations

from typing import Any

import kubernetes.client
import pytest
from kube_fixtures import GROUP, api_client, api_error, configmap, core, custom, in_thread, kube, widget

from foundry_emulator.kube import ApiError, KubeApiServer

__all__ = ["api_client", "core", "custom", "kube"]  # fixtures imported for pytest

CoreV1Api = kubernetes.client.CoreV1Api
CustomObjectsApi = kubernetes.client.CustomObjectsApi
MERGE = "application/merge-patch+json"


async def test_configmap_crud_with_system_metadata(kube: KubeApiServer, core: CoreV1Api) -> None:
    created = await in_thread(
        core.create_namespaced_config_map, "default", configmap("llm-config", a="1", b="2")
    )
    meta = created.metadata
    assert meta.namespace == "default"
    assert len(meta.uid) == 36 and meta.creation_timestamp is not None
    assert meta.resource_version.isdigit()
    assert meta.generation is None  # ConfigMaps have no generation on a real server either

    fetched = await in_thread(core.read_namespaced_config_map, "llm-config", "default")
    assert fetched.metadata.resource_version == meta.resource_version and fetched.data == {"a": "1", "b": "2"}

    # Merge patch: null deletes a key; resourceVersion moves forward.
    patched = await in_thread(
        core.patch_namespaced_config_map,
        "llm-config",
        "default",
        {"data": {"a": None, "c": "3"}},
        _content_type=MERGE,
    )
    assert patched.data == {"b": "2", "c": "3"}
    assert int(patched.metadata.resource_version) > int(meta.resource_version)
    assert patched.metadata.uid == meta.uid and patched.metadata.creation_timestamp == meta.creation_timestamp

    # JSON patch (the client's default content type for patches is json-patch).
    patched = await in_thread(
        core.patch_namespaced_config_map,
        "llm-config",
        "default",
        [{"op": "replace", "path": "/data/b", "value": "20"}],
    )
    assert patched.data == {"b": "20", "c": "3"}

    # Replace with the current resourceVersion works; the list reports the global resourceVersion.
    patched.data = {"only": "this"}
    replaced = await in_thread(core.replace_namespaced_config_map, "llm-config", "default", patched)
    assert replaced.data == {"only": "this"}
    listed = await in_thread(core.list_namespaced_config_map, "default")
    assert [item.metadata.name for item in listed.items] == ["llm-config"]
    assert listed.metadata.resource_version == str(kube.resource_version)

    status = await in_thread(core.delete_namespaced_config_map, "llm-config", "default")
    assert status["status"] == "Success" and status["details"]["name"] == "llm-config"  # v37 returns a dict
    assert kube.find("configmaps", "default", "llm-config") is None


async def test_no_op_writes_do_not_bump_resource_version(kube: KubeApiServer, core: CoreV1Api) -> None:
    created = await in_thread(core.create_namespaced_config_map, "default", configmap("same", a="1"))
    again = await in_thread(
        core.patch_namespaced_config_map, "same", "default", {"data": {"a": "1"}}, _content_type=MERGE
    )
    assert again.metadata.resource_version == created.metadata.resource_version


async def test_stale_replace_is_the_real_conflict(core: CoreV1Api) -> None:
    stale = await in_thread(core.create_namespaced_config_map, "default", configmap("llm-config", a="1"))
    await in_thread(
        core.patch_namespaced_config_map, "llm-config", "default", {"data": {"a": "2"}}, _content_type=MERGE
    )
    stale.data = {"a": "3"}
    code, body = await api_error(core.replace_namespaced_config_map, "llm-config", "default", stale)
    assert code == 409
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Operation cannot be fulfilled on configmaps "llm-config": the object has been modified; '
        "please apply your changes to the latest version and try again",
        "reason": "Conflict",
        "code": 409,
        "details": {"name": "llm-config", "kind": "configmaps"},
    }
    # A merge patch carrying a stale resourceVersion is a precondition too.
    code, body = await api_error(
        core.patch_namespaced_config_map,
        "llm-config",
        "default",
        {"metadata": {"resourceVersion": stale.metadata.resource_version}, "data": {"a": "4"}},
        _content_type=MERGE,
    )
    assert (code, body["reason"]) == (409, "Conflict")


async def test_not_found_and_already_exists_shapes(core: CoreV1Api, custom: CustomObjectsApi) -> None:
    code, body = await api_error(core.read_namespaced_config_map, "x", "default")
    assert code == 404
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'configmaps "x" not found',
        "reason": "NotFound",
        "code": 404,
        "details": {"name": "x", "kind": "configmaps"},
    }
    for call in (
        lambda: core.patch_namespaced_config_map("x", "default", {"data": {}}, _content_type=MERGE),
        lambda: core.replace_namespaced_config_map("x", "default", configmap("x")),
        lambda: core.delete_namespaced_config_map("x", "default"),
    ):
        assert (await api_error(call))[1]["reason"] == "NotFound"

    await in_thread(core.create_namespaced_config_map, "default", configmap("x"))
    code, body = await api_error(core.create_namespaced_config_map, "default", configmap("x"))
    assert code == 409
    assert body["reason"] == "AlreadyExists" and body["message"] == 'configmaps "x" already exists'
    assert body["details"] == {"name": "x", "kind": "configmaps"}

    # Group-qualified for custom resources, as the real server prints them.
    code, body = await api_error(
        custom.get_namespaced_custom_object, GROUP, "v1", "default", "widgets", "nope"
    )
    assert body["message"] == f'widgets.{GROUP} "nope" not found'
    assert body["details"] == {"name": "nope", "group": GROUP, "kind": "widgets"}


async def test_patch_content_types(kube: KubeApiServer, core: CoreV1Api, custom: CustomObjectsApi) -> None:
    await in_thread(core.create_namespaced_config_map, "default", configmap("cm", a="1"))
    patched = await in_thread(
        core.patch_namespaced_config_map,
        "cm",
        "default",
        {"data": {"b": "2"}},
        _content_type="application/strategic-merge-patch+json",
    )
    assert patched.data == {"a": "1", "b": "2"}
    code, body = await api_error(
        core.patch_namespaced_config_map,
        "cm",
        "default",
        {"data": {}},
        _content_type="application/apply-patch+yaml",
    )
    assert (code, body["reason"]) == (415, "UnsupportedMediaType")
    # The client sends dict bodies as strategic merge patches by default: fine for built-ins.
    patched = await in_thread(core.patch_namespaced_config_map, "cm", "default", {"data": {"c": "3"}})
    assert patched.data == {"a": "1", "b": "2", "c": "3"}
    assert kube.requests[-1].content_type == "application/strategic-merge-patch+json"
    # A failed JSON-patch `test` op is 422 (kopf relies on this for its resourceVersion precondition).
    code, body = await api_error(
        core.patch_namespaced_config_map,
        "cm",
        "default",
        [{"op": "test", "path": "/metadata/resourceVersion", "value": "1"}],
    )
    assert (code, body["reason"]) == (422, "Invalid")

    # Custom resources have no strategic merge patch on a real server (415). The v37 client's
    # CustomObjectsApi sends dict bodies as merge patches, so that just works.
    await kube.create(widget("w1"))
    code, body = await api_error(
        custom.patch_namespaced_custom_object,
        GROUP,
        "v1",
        "default",
        "widgets",
        "w1",
        {"spec": {}},
        _content_type="application/strategic-merge-patch+json",
    )
    assert (code, body["reason"]) == (415, "UnsupportedMediaType")
    assert body["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json"
    )
    patched_cr = await in_thread(
        custom.patch_namespaced_custom_object, GROUP, "v1", "default", "widgets", "w1", {"spec": {"size": 2}}
    )
    assert patched_cr["spec"] == {"size": 2}
    assert kube.requests[-1].content_type == MERGE


async def test_label_and_field_selectors(kube: KubeApiServer, core: CoreV1Api) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}
    await kube.create(ns)
    await kube.create(configmap("a", labels={"app": "llm", "tier": "front"}))
    await kube.create(configmap("b", labels={"app": "llm", "tier": "back"}))
    await kube.create(configmap("c", labels={"app": "db"}))
    await kube.create(configmap("d", namespace="other", labels={"app": "llm"}))

    async def names(namespace: str | None = "default", **kwargs: Any) -> list[str]:
        if namespace is None:
            result = await in_thread(core.list_config_map_for_all_namespaces, **kwargs)
        else:
            result = await in_thread(core.list_namespaced_config_map, namespace, **kwargs)
        return [item.metadata.name for item in result.items]

    assert await names(label_selector="app=llm") == ["a", "b"]
    assert await names(label_selector="app==llm,tier!=front") == ["b"]
    assert await names(label_selector="tier in (front, back)") == ["a", "b"]
    assert await names(label_selector="app notin (llm)") == ["c"]
    assert await names(label_selector="tier") == ["a", "b"]
    assert await names(label_selector="!tier") == ["c"]
    assert await names(None, label_selector="app=llm") == ["a", "b", "d"]  # ordered by namespace, name
    assert await names(field_selector="metadata.name=b") == ["b"]
    assert await names(None, field_selector="metadata.namespace!=default") == ["d"]
    assert await names(None, field_selector="metadata.namespace=other,metadata.name==d") == ["d"]
    code, body = await api_error(core.list_namespaced_config_map, "default", field_selector="data.x=1")
    assert (code, body["message"]) == (400, "field label not supported: data.x")


async def test_list_paging_with_limit_and_continue(kube: KubeApiServer, core: CoreV1Api) -> None:
    for name in ("a", "b", "c"):
        await kube.create(configmap(name))
    first = await in_thread(core.list_namespaced_config_map, "default", limit=2)
    assert [i.metadata.name for i in first.items] == ["a", "b"]
    assert first.metadata.remaining_item_count == 1 and first.metadata._continue
    rest = await in_thread(
        core.list_namespaced_config_map, "default", limit=2, _continue=first.metadata._continue
    )
    assert [i.metadata.name for i in rest.items] == ["c"] and not rest.metadata._continue
    assert rest.metadata.resource_version == first.metadata.resource_version


async def test_status_subresource_and_generation(custom: CustomObjectsApi) -> None:
    args = (GROUP, "v1", "default", "widgets")
    body = widget("w1", size=1) | {"status": {"phase": "ignored on create"}}
    created = await in_thread(custom.create_namespaced_custom_object, *args, body)
    assert "status" not in created and created["metadata"]["generation"] == 1

    # Main-resource writes ignore .status; spec changes bump generation.
    patched = await in_thread(
        custom.patch_namespaced_custom_object, *args, "w1", {"spec": {"size": 2}, "status": {"phase": "nope"}}
    )
    assert patched["spec"] == {"size": 2} and "status" not in patched
    assert patched["metadata"]["generation"] == 2

    # /status writes change only .status, and not the generation.
    patched = await in_thread(
        custom.patch_namespaced_custom_object_status,
        *args,
        "w1",
        {"status": {"phase": "Ready"}, "spec": {"size": 99}},
    )
    assert patched["status"] == {"phase": "Ready"} and patched["spec"] == {"size": 2}
    assert patched["metadata"]["generation"] == 2

    # Metadata-only changes do not bump the generation either.
    patched = await in_thread(
        custom.patch_namespaced_custom_object, *args, "w1", {"metadata": {"labels": {"x": "y"}}}
    )
    assert patched["metadata"]["generation"] == 2

    # PUT of /status with the current resourceVersion; a stale one conflicts.
    current = await in_thread(custom.get_namespaced_custom_object, *args, "w1")
    current["status"] = {"phase": "Replaced"}
    replaced = await in_thread(custom.replace_namespaced_custom_object_status, *args, "w1", current)
    assert replaced["status"] == {"phase": "Replaced"}
    code, body = await api_error(custom.replace_namespaced_custom_object_status, *args, "w1", current)
    assert code == 409
    assert body["message"].startswith(f'Operation cannot be fulfilled on widgets.{GROUP} "w1"')


async def test_put_of_a_custom_resource_needs_a_resource_version(custom: CustomObjectsApi) -> None:
    args = (GROUP, "v1", "default", "widgets")
    await in_thread(custom.create_namespaced_custom_object, *args, widget("w1"))
    code, body = await api_error(custom.replace_namespaced_custom_object, *args, "w1", widget("w1", size=5))
    assert code == 422
    assert body["message"] == (
        f'widgets.{GROUP} "w1" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update'
    )


async def test_generation_without_status_subresource(kube: KubeApiServer) -> None:
    gadget = {"apiVersion": f"{GROUP}/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"a": 1}}
    created = await kube.create(gadget | {"status": {"kept": True}})
    assert created["status"] == {"kept": True}  # no subresource: status is ordinary content
    patched = await kube.patch("gadgets", None, "g", {"status": {"kept": False}})
    assert patched["metadata"]["generation"] == 2
    with pytest.raises(ApiError) as exc:
        await kube.patch("gadgets", None, "g", {"status": {}}, subresource="status")
    assert exc.value.code == 404  # no such subresource


async def test_delete_collection_with_a_selector(kube: KubeApiServer, core: CoreV1Api) -> None:
    await kube.create(configmap("a", labels={"app": "llm"}))
    await kube.create(configmap("b", labels={"app": "db"}))
    await in_thread(core.delete_collection_namespaced_config_map, "default", label_selector="app=llm")
    assert [o["metadata"]["name"] for o in kube.list("configmaps", "default")] == ["b"]
    assert kube.requests.filter(verb="deletecollection", resource="configmaps")


async def test_validation_of_names_and_keys(core: CoreV1Api) -> None:
    code, body = await api_error(core.create_namespaced_config_map, "default", configmap("Kimi-K2.6"))
    assert code == 422
    assert body["message"].startswith(
        'ConfigMap "Kimi-K2.6" is invalid: metadata.name: Invalid value: "Kimi-K2.6": a lowercase RFC 1123 subdomain'
    )
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    code, body = await api_error(
        core.create_namespaced_config_map, "default", configmap("ok", **{"bad key": "x"})
    )
    assert code == 422 and body["details"]["causes"][0]["field"] == "data[bad key]"
    # Model names are fine as keys and label values.
    created = await in_thread(
        core.create_namespaced_config_map,
        "default",
        configmap("ok", labels={"model": "Kimi-K2.6"}, **{"Kimi-K2.6": "x"}),
    )
    assert created.data == {"Kimi-K2.6": "x"}


async def test_namespace_lifecycle(kube: KubeApiServer, core: CoreV1Api) -> None:
    code, body = await api_error(
        core.create_namespaced_config_map, "missing", configmap("x", namespace="missing")
    )
    assert (code, body["message"]) == (404, 'namespaces "missing" not found')

    await in_thread(core.create_namespace, {"metadata": {"name": "team"}})
    await in_thread(core.create_namespaced_config_map, "team", configmap("plain", namespace="team"))
    held = configmap("held", namespace="team")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    await in_thread(core.create_namespaced_config_map, "team", held)

    await in_thread(core.delete_namespace, "team")
    ns = await in_thread(core.read_namespace, "team")
    assert ns.status.phase == "Terminating" and ns.metadata.deletion_timestamp is not None
    assert kube.find("configmaps", "team", "plain") is None  # contents go first
    assert kube.get("configmaps", "team", "held")["metadata"]["deletionTimestamp"]
    code, body = await api_error(
        core.create_namespaced_config_map, "team", configmap("new", namespace="team")
    )
    assert code == 403 and "because it is being terminated" in body["message"]

    # Releasing the last finalizer lets the content, and then the namespace, go.
    await kube.patch("configmaps", "team", "held", {"metadata": {"finalizers": None}})
    assert kube.find("configmaps", "team", "held") is None
    assert kube.find("namespaces", None, "team") is None


async def test_finalizers_hold_deletion(kube: KubeApiServer, custom: CustomObjectsApi) -> None:
    args = (GROUP, "v1", "default", "widgets")
    body = widget("w1")
    body["metadata"]["finalizers"] = ["example.com/cleanup"]
    await in_thread(custom.create_namespaced_custom_object, *args, body)
    marked = await in_thread(
        custom.delete_namespaced_custom_object, *args, "w1", propagation_policy="Foreground"
    )
    assert marked["metadata"]["deletionTimestamp"] and marked["metadata"]["generation"] == 2
    again = await in_thread(custom.delete_namespaced_custom_object, *args, "w1")
    assert again["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]  # set once

    code, body = await api_error(
        custom.patch_namespaced_custom_object,
        *args,
        "w1",
        {"metadata": {"finalizers": ["example.com/cleanup", "example.com/new"]}},
        _content_type=MERGE,
    )
    assert code == 422 and "no new finalizers can be added if the object is being deleted" in body["message"]

    await in_thread(
        custom.patch_namespaced_custom_object,
        *args,
        "w1",
        {"metadata": {"finalizers": []}},
        _content_type=MERGE,
    )
    assert kube.find("widgets", "default", "w1") is None


async def test_discovery(kube: KubeApiServer, api_client: kubernetes.client.ApiClient) -> None:
    core_resources = await in_thread(kubernetes.client.CoreV1Api(api_client).get_api_resources)
    by_name = {r.name: r for r in core_resources.resources}
    assert by_name["namespaces"].namespaced is False and by_name["configmaps"].namespaced is True
    assert {"configmaps", "secrets", "events", "serviceaccounts", "namespaces/status"} <= set(by_name)

    groups = await in_thread(kubernetes.client.ApisApi(api_client).get_api_versions)
    names = {g.name for g in groups.groups}
    assert {"apiextensions.k8s.io", "events.k8s.io", "coordination.k8s.io", "kopf.dev", GROUP} <= names

    widgets = await in_thread(kubernetes.client.CustomObjectsApi(api_client).get_api_resources, GROUP, "v1")
    entries = {r.name: r for r in widgets.resources}
    assert entries["widgets"].kind == "Widget" and entries["widgets"].short_names == ["wg"]
    assert entries["widgets"].categories == ["toys"] and "watch" in entries["widgets"].verbs
    assert entries["widgets/status"].verbs == ["get", "patch", "update"]
    assert "gadgets/status" not in entries
    peering = await in_thread(
        kubernetes.client.CustomObjectsApi(api_client).get_api_resources, "kopf.dev", "v1"
    )
    assert {r.name for r in peering.resources} == {"kopfpeerings", "clusterkopfpeerings"}


async def test_crd_objects_register_and_unregister_resources(
    kube: KubeApiServer, api_client: kubernetes.client.ApiClient, custom: CustomObjectsApi
) -> None:
    extensions = kubernetes.client.ApiextensionsV1Api(api_client)
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"things.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": "Thing", "plural": "things"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        },
    }
    created = await in_thread(extensions.create_custom_resource_definition, crd)
    assert {c.type for c in created.status.conditions} == {"NamesAccepted", "Established"}
    thing = {"apiVersion": f"{GROUP}/v1", "kind": "Thing", "metadata": {"name": "t"}}
    await in_thread(custom.create_namespaced_custom_object, GROUP, "v1", "default", "things", thing)

    await in_thread(extensions.delete_custom_resource_definition, f"things.{GROUP}")
    code, body = await api_error(custom.list_namespaced_custom_object, GROUP, "v1", "default", "things")
    assert (code, body["message"]) == (404, "the server could not find the requested resource")
    assert kube.find("customresourcedefinitions", None, f"things.{GROUP}") is None


async def test_owner_references_are_garbage_collected(kube: KubeApiServer) -> None:
    owner = await kube.create(widget("owner"))
    child = configmap("child")
    child["metadata"]["ownerReferences"] = [
        {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "name": "owner", "uid": owner["metadata"]["uid"]}
    ]
    await kube.create(child)
    await kube.delete("widgets", "default", "owner")
    assert kube.find("configmaps", "default", "child") is None


async def test_secret_string_data_is_folded_into_data(core: CoreV1Api) -> None:
    body = {"metadata": {"name": "s"}, "stringData": {"token": "abc"}, "data": {"other": "eA=="}}
    created = await in_thread(core.create_namespaced_secret, "default", body)
    assert created.data == {"other": "eA==", "token": "YWJj"} and created.string_data is None


@pytest.mark.parametrize("dry_run", ["All"])
async def test_dry_run_does_not_persist(kube: KubeApiServer, core: CoreV1Api, dry_run: str) -> None:
    await in_thread(core.create_namespaced_config_map, "default", configmap("dry"), dry_run=dry_run)
    assert kube.find("configmaps", "default", "dry") is None
