"""Which resources the Kubernetes API emulator serves, and how CRDs become resources.

Part of :mod:`foundry_emulator.kube`. Real behaviours this stands for:

* Discovery of the built-ins an operator touches: core ``v1`` namespaces (cluster-scoped),
  configmaps, secrets, events, serviceaccounts; ``events.k8s.io/v1`` events;
  ``apiextensions.k8s.io/v1`` customresourcedefinitions (cluster-scoped);
  ``coordination.k8s.io/v1`` leases. kopf will not start watching before it sees
  customresourcedefinitions, namespaces and events in discovery.
* A CRD object turning into served resources -- what the apiextensions-apiserver does once a
  CRD is ``Established``: every served version of ``spec.group``/``spec.names.plural`` appears
  in discovery with its kind, singular, shortNames, categories, scope, verbs and the ``status``
  (and ``scale``) subresources it declares. All versions share one storage (the ``storage: true``
  version), with ``conversion: None`` semantics: only ``apiVersion`` is rewritten on the way out.
* kopf's own peering CRDs (``kopf.dev/v1`` kopfpeerings / clusterkopfpeerings) are pre-installed,
  as ``kubectl apply -f peering.yaml`` would do, so kopf peering can be used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from foundry_emulator import kube_errors
from foundry_emulator.kube_patches import DEFAULT_FIELDS

ALL_VERBS: tuple[str, ...] = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)
SUBRESOURCE_VERBS: dict[str, tuple[str, ...]] = {
    "status": ("get", "patch", "update"),
    "scale": ("get", "patch", "update"),
    "finalize": ("update",),
}


@dataclass(frozen=True)
class ResourceSpec:
    """One served group/version/plural and everything the emulator needs to know about it."""

    group: str
    version: str
    plural: str
    kind: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()
    # Served from a CRD: admission/defaulting hooks apply, PUT needs a resourceVersion,
    # strategic merge patch is refused (all as on a real server).
    custom: bool = False
    # Whether metadata.generation is maintained (CRs and CRDs; not ConfigMaps/Secrets/Events/...).
    tracks_generation: bool = False
    # The version objects are stored in (all served versions of a CRD share one storage).
    storage_version: str = ""
    # Fields usable in fieldSelector beyond metadata.name/metadata.namespace.
    extra_fields: tuple[str, ...] = ()
    list_kind: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_api_version(self) -> str:
        version = self.storage_version or self.version
        return f"{self.group}/{version}" if self.group else version

    @property
    def storage_key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def field_selectors(self) -> tuple[str, ...]:
        return DEFAULT_FIELDS + self.extra_fields

    @property
    def qualified(self) -> str:
        return kube_errors.qualified(self.group, self.plural)


_EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)

BUILTIN_RESOURCES: tuple[ResourceSpec, ...] = (
    ResourceSpec(
        "",
        "v1",
        "namespaces",
        "Namespace",
        "namespace",
        namespaced=False,
        short_names=("ns",),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        subresources=("finalize", "status"),
        extra_fields=("status.phase",),
    ),
    ResourceSpec("", "v1", "configmaps", "ConfigMap", "configmap", namespaced=True, short_names=("cm",)),
    ResourceSpec("", "v1", "secrets", "Secret", "secret", namespaced=True, extra_fields=("type",)),
    ResourceSpec(
        "", "v1", "serviceaccounts", "ServiceAccount", "serviceaccount", namespaced=True, short_names=("sa",)
    ),
    ResourceSpec(
        "", "v1", "events", "Event", "event", namespaced=True, short_names=("ev",), extra_fields=_EVENT_FIELDS
    ),
    ResourceSpec(
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        "event",
        namespaced=True,
        short_names=("ev",),
        extra_fields=(
            "reason",
            "type",
            "regarding.kind",
            "regarding.name",
            "regarding.namespace",
            "regarding.uid",
        ),
    ),
    ResourceSpec("coordination.k8s.io", "v1", "leases", "Lease", "lease", namespaced=True),
    ResourceSpec(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        "customresourcedefinition",
        namespaced=False,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        subresources=("status",),
        tracks_generation=True,
    ),
)


def _peering_crd(kind: str, plural: str, scope: str) -> dict[str, Any]:
    # kopf's peering.yaml (https://kopf.readthedocs.io/en/stable/peering/), verbatim in substance.
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev"},
        "spec": {
            "scope": scope,
            "group": "kopf.dev",
            "names": {"kind": kind, "plural": plural, "singular": plural[:-1]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                            },
                        }
                    },
                }
            ],
        },
    }


KOPF_PEERING_CRDS: tuple[dict[str, Any], ...] = (
    _peering_crd("ClusterKopfPeering", "clusterkopfpeerings", "Cluster"),
    _peering_crd("KopfPeering", "kopfpeerings", "Namespaced"),
)

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key for kube-aware version priority (v1 > v1beta2 > v1beta1 > v1alpha1 > foo)."""
    m = _VERSION_RE.match(version)
    if not m:
        return (3, 0, 0, version)
    major = int(m[1])
    if m[2] is None:
        return (0, -major, 0, version)
    return (1 if m[2] == "beta" else 2, -major, -int(m[3]), version)


def specs_from_crd(crd: Mapping[str, Any]) -> list[ResourceSpec]:
    """The served resources of a CRD object; 422 ``Invalid`` like a real server if malformed."""
    name = str((crd.get("metadata") or {}).get("name") or "")
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = str(spec.get("group") or "")
    plural = str(names.get("plural") or "")
    kind = str(names.get("kind") or "")
    scope = spec.get("scope")
    versions = [v for v in spec.get("versions") or [] if isinstance(v, Mapping)]
    causes: list[dict[str, str]] = []
    if not group:
        causes.append(kube_errors.field_error("spec.group", "FieldValueRequired"))
    if not plural:
        causes.append(kube_errors.field_error("spec.names.plural", "FieldValueRequired"))
    if not kind:
        causes.append(kube_errors.field_error("spec.names.kind", "FieldValueRequired"))
    if scope not in ("Namespaced", "Cluster"):
        causes.append(
            kube_errors.field_error(
                "spec.scope",
                "FieldValueNotSupported",
                value=scope,
                detail='supported values: "Cluster", "Namespaced"',
            )
        )
    storage = [str(v.get("name")) for v in versions if v.get("storage")]
    if not versions:
        causes.append(kube_errors.field_error("spec.versions", "FieldValueRequired"))
    elif len(storage) != 1:
        causes.append(
            kube_errors.field_error(
                "spec.versions",
                value=[v.get("name") for v in versions],
                detail="must have exactly one version marked as storage version",
            )
        )
    if group and plural and name != f"{plural}.{group}":
        causes.append(
            kube_errors.field_error(
                "metadata.name", value=name, detail='must be spec.names.plural+"."+spec.group'
            )
        )
    if causes:
        raise kube_errors.invalid("apiextensions.k8s.io", "CustomResourceDefinition", name, causes)

    result = []
    for version in versions:
        if not version.get("served", True):
            continue
        subresources = sorted(k for k in (version.get("subresources") or {}) if k in ("status", "scale"))
        selectable = tuple(
            str(f.get("jsonPath", "")).lstrip(".")
            for f in version.get("selectableFields") or []
            if isinstance(f, Mapping)
        )
        result.append(
            ResourceSpec(
                group=group,
                version=str(version["name"]),
                plural=plural,
                kind=kind,
                singular=str(names.get("singular") or kind.lower()),
                namespaced=scope == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=tuple(subresources),
                custom=True,
                tracks_generation=True,
                storage_version=storage[0],
                extra_fields=selectable,
                list_kind=str(names.get("listKind") or f"{kind}List"),
            )
        )
    return result


@dataclass
class ResourceRegistry:
    """All served resources, keyed by (group, version, plural)."""

    _specs: dict[tuple[str, str, str], ResourceSpec] = field(default_factory=dict)

    def add(self, spec: ResourceSpec) -> None:
        self._specs[(spec.group, spec.version, spec.plural)] = spec

    def remove(self, group: str, plural: str) -> None:
        for key in [k for k in self._specs if k[0] == group and k[2] == plural]:
            del self._specs[key]

    def replace_crd(self, group: str, plural: str, specs: Iterable[ResourceSpec]) -> None:
        self.remove(group, plural)
        for spec in specs:
            self.add(spec)

    def all(self) -> list[ResourceSpec]:
        return list(self._specs.values())

    def served(self, group: str, version: str, plural: str) -> ResourceSpec | None:
        return self._specs.get((group, version, plural))

    def storage_spec(self, group: str, plural: str) -> ResourceSpec | None:
        """The spec of the storage version (the one objects are kept in)."""
        candidates = [s for s in self._specs.values() if s.group == group and s.plural == plural]
        for spec in candidates:
            if not spec.storage_version or spec.storage_version == spec.version:
                return spec
        return candidates[0] if candidates else None

    def versions(self) -> dict[str, list[str]]:
        """group -> versions, preferred (highest priority) first."""
        groups: dict[str, set[str]] = {}
        for group, version, _ in self._specs:
            groups.setdefault(group, set()).add(version)
        return {group: sorted(versions, key=version_priority) for group, versions in groups.items()}

    def by_kind(self, api_version: str, kind: str) -> ResourceSpec | None:
        group, _, version = api_version.rpartition("/")
        for spec in self._specs.values():
            if spec.group == group and spec.version == version and spec.kind == kind:
                return spec
        return None

    def resolve(self, ref: str | tuple[str, str] | ResourceSpec) -> ResourceSpec:
        """Find a resource the way kubectl does: plural, singular, kind, short name, optionally qualified.

        Accepted: a ResourceSpec; ``(apiVersion, kind)``; ``"configmaps"``, ``"ConfigMap"``,
        ``"cm"``, ``"v1/configmaps"``, ``"foundrydeployments.foundry.llmops.io"``,
        ``"fdep"``, ``"foundry.llmops.io/v1alpha1/foundrydeployments"``,
        ``"foundrydeployments.v1alpha1.foundry.llmops.io"``. Ties go to the preferred version.
        """
        if isinstance(ref, ResourceSpec):
            return ref
        if isinstance(ref, tuple):
            spec = self.by_kind(*ref)
            if spec is None:
                raise LookupError(f"no resource for apiVersion={ref[0]!r} kind={ref[1]!r}")
            return spec
        group: str | None = None
        version: str | None = None
        name = ref
        if "/" in ref:
            parts = ref.split("/")
            if len(parts) == 2 and _VERSION_RE.match(parts[0]):  # v1/configmaps
                group, version, name = "", parts[0], parts[1]
            elif len(parts) == 2:  # foundry.llmops.io/foundrydeployments
                group, name = parts
            elif len(parts) == 3:  # group/version/plural
                group, version, name = parts
            else:
                raise LookupError(f"cannot parse resource reference {ref!r}")
        elif "." in ref:
            head, _, rest = ref.partition(".")
            maybe_version, _, maybe_group = rest.partition(".")
            if _VERSION_RE.match(maybe_version):
                name, version, group = head, maybe_version, maybe_group
            else:
                name, group = head, rest
        candidates = [
            spec
            for spec in self._specs.values()
            if (group is None or spec.group == group)
            and (version is None or spec.version == version)
            and name in (spec.plural, spec.singular, spec.kind, *spec.short_names)
        ]
        if not candidates:
            raise LookupError(f"no resource matches {ref!r}")
        # Prefer the core group (kubectl does: "events" is v1 events), then the preferred version.
        candidates.sort(key=lambda s: (s.group != "", s.group, version_priority(s.version)))
        return candidates[0]
