"""API discovery documents of the Kubernetes API emulator.

Part of :mod:`foundry_emulator.kube`. Stands for kube-apiserver's discovery endpoints, the way
kopf (``kopf._cogs.clients.scanning``), kubectl and the ``kubernetes`` client read them:
``/api`` (APIVersions), ``/api/v1`` and ``/apis/{group}/{version}`` (APIResourceList with kind,
singularName, namespaced, verbs, shortNames, categories, and ``plural/status`` entries for
subresources), ``/apis`` and ``/apis/{group}`` (APIGroupList/APIGroup with the preferred version
by kube version priority), ``/version`` and the root path list. Aggregated discovery
(``Accept: ...;as=APIGroupDiscoveryList``) is not offered; clients fall back to these documents.
"""

from __future__ import annotations

from typing import Any

from foundry_emulator import kube_errors
from foundry_emulator.kube_resources import SUBRESOURCE_VERBS, ResourceRegistry

JsonObj = dict[str, Any]

VERSION_INFO: JsonObj = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0+foundry-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def discovery(registry: ResourceRegistry, path: str, host: str) -> JsonObj:
    """The discovery document at ``path`` (404 Status if there is none)."""
    versions = registry.versions()
    if path == "/":
        paths = {"/api", "/api/v1", "/apis", "/version", "/healthz", "/livez", "/readyz"}
        for group, group_versions in versions.items():
            if group:
                paths.add(f"/apis/{group}")
                paths.update(f"/apis/{group}/{version}" for version in group_versions)
        return {"paths": sorted(paths)}
    if path == "/version":
        return dict(VERSION_INFO)
    if path == "/api":
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
        }
    if path == "/apis":
        groups = [_group_info(g, vs) for g, vs in sorted(versions.items()) if g]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "api":
        return _resource_list(registry, "", parts[1])
    if len(parts) == 2 and parts[0] == "apis" and parts[1] in versions:
        return {"kind": "APIGroup", "apiVersion": "v1", **_group_info(parts[1], versions[parts[1]])}
    if len(parts) == 3 and parts[0] == "apis":
        return _resource_list(registry, parts[1], parts[2])
    raise kube_errors.not_found_generic()


def _group_info(group: str, versions: list[str]) -> JsonObj:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def _resource_list(registry: ResourceRegistry, group: str, version: str) -> JsonObj:
    specs = sorted(
        (s for s in registry.all() if s.group == group and s.version == version),
        key=lambda s: s.plural,
    )
    if not specs:
        raise kube_errors.not_found_generic()
    resources: list[JsonObj] = []
    for spec in specs:
        entry: JsonObj = {
            "name": spec.plural,
            "singularName": spec.singular,
            "namespaced": spec.namespaced,
            "kind": spec.kind,
            "verbs": list(spec.verbs),
        }
        if spec.short_names:
            entry["shortNames"] = list(spec.short_names)
        if spec.categories:
            entry["categories"] = list(spec.categories)
        resources.append(entry)
        for sub in spec.subresources:
            sub_entry: JsonObj = {
                "name": f"{spec.plural}/{sub}",
                "singularName": "",
                "namespaced": spec.namespaced,
                "kind": spec.kind,
                "verbs": list(SUBRESOURCE_VERBS.get(sub, ("get",))),
            }
            if sub == "scale":
                sub_entry.update(group="autoscaling", version="v1", kind="Scale")
            resources.append(sub_entry)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
