"""Reading manifests: files, folders, stdin, multi-document, Kustomize output; bad input named precisely."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from foundry_operator.preflight.manifests import InputError, load_manifests
from tests.preflight.support import EXAMPLES, account, adr_accounts, deployment, write_manifests

SUB = "3c2b1a09-8f7e-4d6c-9b5a-1e2d3c4b5a69"
NO_STDIN = io.StringIO("")


def test_examples_folder_reads_every_object_in_order() -> None:
    manifests = load_manifests([str(EXAMPLES)], NO_STDIN)
    assert [a.name for a in manifests.accounts] == ["aucert-ai", "aucert-ai-east"]
    assert [d.name for d in manifests.deployments][:2] == ["gpt-5.4", "reasoning-pro"]
    kimi = next(d for d in manifests.deployments if d.name == "kimi-k2.6")
    assert kimi.keys == ["GENERATION", "REPORTING"]
    assert kimi.origin.file.endswith("deployments.yaml") and kimi.origin.document == 6
    # Defaults come from the CRD schema, as the API server applies them.
    assert kimi.spec.config_map_name == "llm-config" and kimi.spec.sku.name.value == "GlobalStandard"
    assert all(d.namespace == "default" for d in manifests.deployments)


def test_kustomize_output_on_stdin_skips_other_kinds_and_keeps_namespaces() -> None:
    text = """\
apiVersion: v1
kind: Namespace
metadata: {name: llm}
---
apiVersion: foundry.llmops.io/v1alpha1
kind: FoundryAccount
metadata: {name: aucert-ai, namespace: llm}
spec: {subscriptionId: SUBSCRIPTION, resourceGroup: rg, accountName: aucert-ai}
---
# a comment-only document
---
apiVersion: v1
kind: List
items:
- apiVersion: foundry.llmops.io/v1alpha1
  kind: FoundryDeployment
  metadata: {name: coding, namespace: llm}
  spec:
    model: {name: gpt-5.3-codex, version: 2026-02-24}
    accounts: [aucert-ai]
""".replace("SUBSCRIPTION", SUB)
    manifests = load_manifests(["-"], io.StringIO(text), default_namespace="ignored")
    assert manifests.skipped == 1
    assert [(a.namespace, a.name) for a in manifests.accounts] == [("llm", "aucert-ai")]
    (coding,) = manifests.deployments
    assert coding.origin.file == "<stdin>" and coding.origin.document == 4
    # An unquoted date stays the string kubectl would send (YAML 1.1 timestamps are not resolved).
    assert coding.spec.model.version == "2026-02-24"


def test_default_namespace_applies_to_objects_without_one(tmp_path: Path) -> None:
    path = write_manifests(tmp_path / "m.yaml", [account("a1", SUB), deployment("d", "gpt-5.4", ["a1"])])
    manifests = load_manifests([str(path)], NO_STDIN, default_namespace="team-a")
    assert manifests.deployments[0].ref == "team-a/d" and manifests.account("team-a", "a1") is not None


def test_schema_and_cel_errors_name_file_document_and_field(tmp_path: Path) -> None:
    bad = deployment("reasoning-pro", "gpt-5.4-pro", ["aucert-ai"], sku={"capacity": 0})
    duplicate_accounts = deployment("twice", "gpt-5.4", ["aucert-ai", "aucert-ai"])
    path = write_manifests(tmp_path / "bad.yaml", [*adr_accounts(SUB), bad, duplicate_accounts])
    with pytest.raises(InputError) as caught:
        load_manifests([str(path)], NO_STDIN)
    first, second = caught.value.problems
    assert (first.file, first.document, first.field) == (str(path), 3, "spec.sku.capacity")
    assert "greater than or equal to 1" in first.message
    assert first.object == "FoundryDeployment default/reasoning-pro"
    # The CEL rule of the CRD, with its own message and field path.
    assert (second.document, second.field) == (4, "spec.accounts")
    assert "must not list the same entry twice" in second.message
    assert str(first).startswith(f"{path}: document 3 (line ")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: [\n")
    typo = write_manifests(
        tmp_path / "typo.yaml", [{**account("acct-a", SUB), "kind": "FoundryAcount"}, account("acct-b", SUB)]
    )
    with pytest.raises(InputError) as caught:
        load_manifests([str(broken), str(typo), str(tmp_path / "missing.yaml")], NO_STDIN)
    problems = {p.file: p for p in caught.value.problems}
    assert "invalid YAML" in problems[str(broken)].message and problems[str(broken)].line == 3
    assert problems[str(typo)].field == "apiVersion/kind" and problems[str(typo)].document == 1
    assert problems[str(tmp_path / "missing.yaml")].message == "no such file or directory"


def test_an_object_defined_twice_is_an_input_error(tmp_path: Path) -> None:
    one = write_manifests(tmp_path / "one.yaml", [account("acct-a", SUB)])
    two = write_manifests(tmp_path / "two.yaml", [account("acct-a", SUB)])
    with pytest.raises(InputError, match=r"defined twice: also in .*one.yaml: document 1"):
        load_manifests([str(one), str(two)], NO_STDIN)


def test_no_foundry_objects_at_all_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    with pytest.raises(InputError, match="no FoundryAccount or FoundryDeployment found"):
        load_manifests([str(tmp_path)], NO_STDIN)
