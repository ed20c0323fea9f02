"""The CRDs are generated from the API models, structural, and enforce the documented rules."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from foundry_operator.api import crdgen, models
from foundry_operator.api.validation import validate_object

ROOT = Path(__file__).resolve().parents[2]


def _walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for name, child in node.get("properties", {}).items():
        found += _walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += _walk(node["additionalProperties"], f"{path}{{}}")
    return found


@pytest.mark.parametrize("folder", ["crds", "charts/foundry-operator/crds"])
def test_checked_in_crds_match_the_models(folder: str) -> None:
    rendered = crdgen.render_crds()
    on_disk = {path.name: path.read_text() for path in (ROOT / folder).glob("*.yaml")}
    assert set(on_disk) == set(rendered), (
        f"{folder} holds other files than the generator writes: run `make crds`"
    )
    for name, text in rendered.items():
        assert on_disk[name] == text, f"{folder}/{name} drifted from the models: run `make crds`"


@pytest.mark.parametrize("info", crdgen.KINDS, ids=lambda info: info.kind)
def test_crd_is_structural_and_complete(info: crdgen.KindInfo) -> None:
    crd = crdgen.build_crd(info)
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["shortNames"] == list(info.short_names)
    assert crd["spec"]["names"]["categories"] == ["foundry"]
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = [column["name"] for column in version["additionalPrinterColumns"]]
    assert columns[0] == "Ready" and columns[-1] == "Age"
    schema = version["schema"]["openAPIV3Schema"]
    forbidden = {"$ref", "anyOf", "oneOf", "allOf", "const", "title", "$defs"}
    for path, node in _walk(schema):
        assert "type" in node, f"{info.kind}{path} has no type (not structural)"
        assert not forbidden & set(node), f"{info.kind}{path} uses {forbidden & set(node)}"
        if node["type"] == "object" and path not in ("", ".metadata"):
            assert node.get("properties") or node.get("additionalProperties"), (
                f"{info.kind}{path} is an untyped object"
            )
        if node["type"] == "array":
            assert "maxItems" in node or path.startswith(".status"), (
                f"{info.kind}{path}: CEL cost needs maxItems"
            )
        for rule in node.get("x-kubernetes-validations", []):
            celpy.Environment().compile(rule["rule"])  # every rule compiles
            assert rule["message"]


def test_fdep_printer_columns_match_the_user_surface() -> None:
    crd = crdgen.build_crd(crdgen.KINDS[1])
    columns = {c["name"]: c["jsonPath"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert list(columns) == ["Ready", "Account", "Region", "Model", "Version", "Age"]
    assert columns["Model"] == ".spec.model.name" and columns["Version"] == ".status.modelVersion"


def _examples() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def test_examples_are_the_adr_world_and_validate() -> None:
    docs = _examples()
    accounts = [d for d in docs if d["kind"] == "FoundryAccount"]
    deployments = [d for d in docs if d["kind"] == "FoundryDeployment"]
    assert {a["spec"]["accountName"] for a in accounts} == {"aucert-ai", "aucert-ai-east"}
    assert {d["spec"]["model"]["name"] for d in deployments} == {
        "gpt-5.4",
        "gpt-5.4-pro",
        "gpt-5.3-codex",
        "gpt-5.1-codex",
        "DeepSeek-V3.2",
        "Kimi-K2.6",
    }
    for doc in docs:
        defaulted, errors = validate_object(doc)
        assert errors == [], f"{doc['metadata']['name']}: {errors}"
        spec_model = (
            models.FoundryAccountSpec if doc["kind"] == "FoundryAccount" else models.FoundryDeploymentSpec
        )
        spec_model.model_validate(defaulted["spec"])  # the operator's parser agrees with the schema


def test_defaults_are_applied_like_the_api_server() -> None:
    doc = next(d for d in _examples() if d["metadata"]["name"] == "reasoning-pro")
    defaulted, _ = validate_object(doc)
    spec = defaulted["spec"]
    assert spec["sku"] == {"name": "GlobalStandard"}
    assert spec["configMapName"] == "llm-config"
    assert spec["deletionPolicy"] == "Delete"
    assert spec["model"]["format"] == "OpenAI"
    parsed = models.FoundryDeploymentSpec.model_validate(spec)
    assert parsed.effective_deployment_name() == "gpt-5.4-pro"
    assert models.effective_keys(parsed, "reasoning-pro") == ["REASONING_PRO"]


_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "foundry.llmops.io/v1alpha1",
    "kind": "FoundryDeployment",
    "metadata": {"name": "ok"},
    "spec": {"model": {"name": "gpt-5.4"}, "accounts": ["aucert-ai"]},
}
_ACCOUNT: dict[str, Any] = {
    "apiVersion": "foundry.llmops.io/v1alpha1",
    "kind": "FoundryAccount",
    "metadata": {"name": "ok"},
    "spec": {
        "subscriptionId": "3c2b1a09-8f7e-4d6c-9b5a-1e2d3c4b5a69",
        "resourceGroup": "rg",
        "accountName": "acct",
    },
}


def _with(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    *parents, leaf = path.split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
    if value is _DELETE:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return doc


_DELETE = object()

# (case id, manifest, the field the error must name)
BAD_MANIFESTS: list[tuple[str, dict[str, Any], str]] = [
    ("accounts-empty", _with(_DEPLOYMENT, "spec.accounts", []), "spec.accounts"),
    ("accounts-duplicate", _with(_DEPLOYMENT, "spec.accounts", ["a", "a"]), "spec.accounts"),
    ("accounts-missing", _with(_DEPLOYMENT, "spec.accounts", _DELETE), "spec.accounts"),
    ("accounts-not-a-list", _with(_DEPLOYMENT, "spec.accounts", "aucert-ai"), "spec.accounts"),
    ("account-ref-bad", _with(_DEPLOYMENT, "spec.accounts", ["Aucert_AI"]), "spec.accounts[0]"),
    ("model-missing", _with(_DEPLOYMENT, "spec.model", _DELETE), "spec.model"),
    ("model-name-missing", _with(_DEPLOYMENT, "spec.model", {"version": "1"}), "spec.model.name"),
    ("model-name-wrong-type", _with(_DEPLOYMENT, "spec.model", {"name": 5}), "spec.model.name"),
    ("capacity-negative", _with(_DEPLOYMENT, "spec.sku", {"capacity": -10}), "spec.sku.capacity"),
    ("capacity-zero", _with(_DEPLOYMENT, "spec.sku", {"capacity": 0}), "spec.sku.capacity"),
    ("capacity-string", _with(_DEPLOYMENT, "spec.sku", {"capacity": "10"}), "spec.sku.capacity"),
    ("sku-unknown", _with(_DEPLOYMENT, "spec.sku", {"name": "Premium"}), "spec.sku.name"),
    ("deployment-name-short", _with(_DEPLOYMENT, "spec.deploymentName", "x"), "spec.deploymentName"),
    ("deployment-name-long", _with(_DEPLOYMENT, "spec.deploymentName", "x" * 65), "spec.deploymentName"),
    ("deployment-name-chars", _with(_DEPLOYMENT, "spec.deploymentName", "gpt 5/4"), "spec.deploymentName"),
    ("key-not-env-name", _with(_DEPLOYMENT, "spec.keys", ["reasoning-pro"]), "spec.keys[0]"),
    ("key-duplicate", _with(_DEPLOYMENT, "spec.keys", ["A", "A"]), "spec.keys"),
    ("deletion-policy-unknown", _with(_DEPLOYMENT, "spec.deletionPolicy", "Keep"), "spec.deletionPolicy"),
    (
        "upgrade-option-unknown",
        _with(_DEPLOYMENT, "spec.versionUpgradeOption", "Always"),
        "spec.versionUpgradeOption",
    ),
    ("unknown-field", _with(_DEPLOYMENT, "spec.region", "westus"), "spec.region"),
    ("configmap-name-bad", _with(_DEPLOYMENT, "spec.configMapName", "LLM_Config"), "spec.configMapName"),
    ("account-subscription-bad", _with(_ACCOUNT, "spec.subscriptionId", "not-a-guid"), "spec.subscriptionId"),
    ("account-management-unknown", _with(_ACCOUNT, "spec.management", "Import"), "spec.management"),
    ("account-managed-no-location", _with(_ACCOUNT, "spec.management", "Managed"), "spec.location"),
    ("account-kind-unknown", _with(_ACCOUNT, "spec.kind", "CognitiveServices"), "spec.kind"),
    (
        "account-secret-without-ref",
        _with(_ACCOUNT, "spec.credentials", {"source": "Secret"}),
        "spec.credentials.secretRef",
    ),
    ("account-delete-adopted", _with(_ACCOUNT, "spec.deletionPolicy", "Delete"), "spec.deletionPolicy"),
    ("account-name-missing", _with(_ACCOUNT, "spec.accountName", _DELETE), "spec.accountName"),
    (
        "account-allowed-ns-bad",
        _with(_ACCOUNT, "spec.allowedNamespaces", ["Team_A"]),
        "spec.allowedNamespaces[0]",
    ),
    ("account-primary-string", _with(_ACCOUNT, "spec.primary", "yes"), "spec.primary"),
]


@pytest.mark.parametrize(
    ("case", "manifest", "field"), BAD_MANIFESTS, ids=[case[0] for case in BAD_MANIFESTS]
)
def test_bad_manifest_is_refused_naming_the_field(case: str, manifest: dict[str, Any], field: str) -> None:
    _, errors = validate_object(manifest)
    assert errors, f"{case} was accepted"
    assert field in [error.field for error in errors], (
        f"{case}: errors name {[str(e) for e in errors]}, not {field}"
    )


def test_immutable_account_coordinates_are_transition_rules() -> None:
    changed = _with(_ACCOUNT, "spec.accountName", "other")
    _, errors = validate_object(changed, old=_ACCOUNT)
    assert [e.field for e in errors] == ["spec.accountName"]
    assert "immutable" in errors[0].message
    _, errors = validate_object(_ACCOUNT, old=_ACCOUNT)
    assert errors == []


def test_default_key_is_upper_snake() -> None:
    assert models.default_key("reasoning-pro") == "REASONING_PRO"
    assert models.default_key("kimi-k2.6") == "KIMI_K2_6"
    assert models.default_key("5th-model") == "K_5TH_MODEL"
    assert models.split_account_ref("shared/aucert-ai", "team") == ("shared", "aucert-ai")
    assert models.split_account_ref("aucert-ai", "team") == ("team", "aucert-ai")
