"""RBAC: least privilege, exactly the rules the operator's code needs, and docs/rbac.md in step."""

from __future__ import annotations

import re

import pytest
from chart_support import NAMESPACE, REPO_ROOT, VALUE_SETS, Manifest, iter_rules, objects, one, render

Rules = dict[tuple[str, str], frozenset[str]]

# What the operator's code touches in Kubernetes (the runtime contract), per (apiGroup, resource).
NAMESPACED: Rules = {
    ("foundry.llmops.io", "foundryaccounts"): frozenset({"list", "watch", "patch"}),
    ("foundry.llmops.io", "foundrydeployments"): frozenset({"list", "watch", "patch"}),
    ("foundry.llmops.io", "foundryaccounts/status"): frozenset({"patch"}),
    ("foundry.llmops.io", "foundrydeployments/status"): frozenset({"patch"}),
    ("", "configmaps"): frozenset({"get", "create", "update"}),
    ("", "events"): frozenset({"create"}),
}
CLUSTER_SCOPED: Rules = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): frozenset({"list", "watch"}),
}
SECRETS: Rules = {("", "secrets"): frozenset({"get"})}
CLUSTER_PEERING: Rules = {("kopf.dev", "clusterkopfpeerings"): frozenset({"list", "watch", "patch"})}
NAMESPACED_PEERING: Rules = {("kopf.dev", "kopfpeerings"): frozenset({"list", "watch", "patch"})}


def rules_of(role: Manifest) -> Rules:
    rules: dict[tuple[str, str], frozenset[str]] = {}
    for group, resource, verbs in iter_rules(role):
        key = (group, resource)
        # One rule per (group, resource): overlapping rules would make the grant harder to review.
        assert key not in rules, f"{role['metadata']['name']}: {key} granted twice"
        rules[key] = verbs
    return rules


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_no_wildcards_no_delete_no_extras(name: str) -> None:
    docs = render(VALUE_SETS[name])
    for role in objects(docs, "ClusterRole") + objects(docs, "Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], f"{role['metadata']['name']}: wildcard in {field}"
            assert "delete" not in rule["verbs"] and "deletecollection" not in rule["verbs"]
            # resourceNames would silently not apply to list/watch; nonResourceURLs are not needed.
            assert set(rule) == {"apiGroups", "resources", "verbs"}


def test_cluster_mode_rules() -> None:
    docs = render()
    assert rules_of(one(docs, "ClusterRole")) == NAMESPACED | CLUSTER_SCOPED
    assert not objects(docs, "Role") and not objects(docs, "RoleBinding")


def test_cluster_mode_with_peering_adds_only_cluster_peerings() -> None:
    assert (
        rules_of(one(render(VALUE_SETS["ha"]), "ClusterRole"))
        == NAMESPACED | CLUSTER_SCOPED | CLUSTER_PEERING
    )


def test_secrets_only_in_the_listed_namespaces() -> None:
    docs = render()
    assert not [r for r in objects(docs, "Role") if ("", "secrets") in rules_of(r)]  # default: none
    docs = render({"rbac": {"secretNamespaces": ["platform", "team-a"]}})
    assert ("", "secrets") not in rules_of(one(docs, "ClusterRole"))
    roles = [r for r in objects(docs, "Role") if r["metadata"]["name"].endswith("-secrets")]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["platform", "team-a"]
    assert all(rules_of(r) == SECRETS for r in roles)
    bindings = [b for b in objects(docs, "RoleBinding") if b["metadata"]["name"].endswith("-secrets")]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["platform", "team-a"]
    sa = one(docs, "ServiceAccount")["metadata"]
    for binding in bindings:
        assert binding["roleRef"]["name"] == roles[0]["metadata"]["name"]
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["name"], "namespace": NAMESPACE}]


@pytest.mark.parametrize(("name", "peering"), [("namespaced", {}), ("namespaced-ha", NAMESPACED_PEERING)])
def test_namespaced_mode_uses_roles_and_a_small_clusterrole(name: str, peering: Rules) -> None:
    docs = render(VALUE_SETS[name])
    cluster_role = one(docs, "ClusterRole")
    # Only the read-only cluster-scoped lookups remain cluster-wide.
    assert rules_of(cluster_role) == CLUSTER_SCOPED
    roles = objects(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert rules_of(role) == NAMESPACED | peering
    bindings = objects(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    sa = one(docs, "ServiceAccount")["metadata"]
    for binding in bindings:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": roles[0]["metadata"]["name"],
        }
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["name"], "namespace": NAMESPACE}]


@pytest.mark.parametrize("name", ["default", "namespaced"])
def test_cluster_role_binding_targets_the_operator_service_account(name: str) -> None:
    docs = render(VALUE_SETS[name])
    binding = one(docs, "ClusterRoleBinding")
    role = one(docs, "ClusterRole")
    sa = one(docs, "ServiceAccount")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}
    ]
    # Qualified by namespace: two namespaced installs (one per team) must not fight over one name.
    assert role["metadata"]["name"] == f"{NAMESPACE}-foundry-operator"
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa["metadata"]["name"]


def test_rbac_can_be_left_to_the_cluster_admin() -> None:
    docs = render({"rbac": {"create": False}})
    assert not [d for d in docs if d["apiVersion"].startswith("rbac.authorization.k8s.io")]


def documented_rules(section: str) -> Rules:
    """Parse the table that follows `<!-- rules: section -->` in docs/rbac.md."""
    text = (REPO_ROOT / "docs" / "rbac.md").read_text()
    marker = f"<!-- rules: {section} -->"
    assert marker in text, f"docs/rbac.md lacks the {marker} table"
    rules: dict[tuple[str, str], frozenset[str]] = {}
    for line in text.split(marker, 1)[1].strip().splitlines()[2:]:
        if not line.startswith("|"):
            break
        group_cell, resources_cell, verbs_cell, _why = (c.strip() for c in line.strip("|").split("|", 3))
        group = re.findall(r"`([^`]*)`", group_cell)[0].strip('"')
        verbs = frozenset(v.strip() for v in verbs_cell.split(","))
        for resource in re.findall(r"`([^`]*)`", resources_cell):
            rules[(group, resource)] = verbs
    return rules


def test_docs_rbac_lists_every_rendered_rule() -> None:
    # Rendered with peering on, so the documented peering rows are checked too.
    assert documented_rules("cluster") == rules_of(one(render(VALUE_SETS["ha"]), "ClusterRole"))
    docs = render(VALUE_SETS["namespaced-ha"])
    assert documented_rules("namespaced-clusterrole") == rules_of(one(docs, "ClusterRole"))
    assert documented_rules("namespaced-role") == rules_of(objects(docs, "Role")[0])
    secret_roles = objects(render({"rbac": {"secretNamespaces": ["team-a"]}}), "Role")
    assert documented_rules("secrets-role") == rules_of(secret_roles[0])
