"""The bad-input corpus: every case is refused with a message that names the field and the fix,
and none disturbs the healthy objects around it.

- SCHEMA: manifests the real kube-apiserver refuses (the CRDs' structural schema and CEL rules):
  422 Invalid, with a cause naming the field; an unknown field is refused (400, "strict decoding
  error") as kubectl asks by default (fieldValidation=Strict), and otherwise pruned with a warning.
  The project's own validator (`validate_object`, used by `foundry-operator check`) must refuse each
  case with exactly the server's fields and messages.
- AZURE: valid manifests that Azure would refuse, or that point at accounts that cannot be used.
  The operator refuses them before writing (or reports Azure's refusal), in a condition that names
  the field and says what to change.

One sandbox and one operator serve the module; the corpus objects live beside two healthy
FoundryDeployments whose status, Azure deployments and llm-config keys must not change.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from kubernetes import client as k8s

from foundry_emulator.controlplane import ControlPlane
from foundry_emulator.sandbox import Sandbox, fast_settings
from foundry_operator.api.validation import FieldError, validate_object
from tests.integration.check_agreement import check_verdicts, disagreements, live_check, operator_verdicts
from tests.integration.conftest import arm_requests, azure_deployments, deployment
from tests.reliability.conftest import (
    LEDGER,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    WRONG_SECRET,
    account_docs,
    converged,
    principal_secret,
    put_secret,
    world,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

NS = "corpus"
SETTINGS = fast_settings(transient_retry_seconds=1.0)
SANDBOX_APP = ("7a6b5c4d-3e2f-4a1b-9c8d-0e1f2a3b4c5d", "emulator-sandbox-secret-not-a-real-secret")


# -- the schema corpus ------------------------------------------------------------------------------


def _fdep(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "foundry.llmops.io/v1alpha1", "kind": "FoundryDeployment", "spec": spec}


def _fa(**spec: Any) -> dict[str, Any]:
    base = {"subscriptionId": SUBSCRIPTION, "resourceGroup": RESOURCE_GROUP, "accountName": "aucert-ai"}
    base.update(spec)
    return {"apiVersion": "foundry.llmops.io/v1alpha1", "kind": "FoundryAccount", "spec": base}


def _ok(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"model": {"name": "gpt-5.4"}, "accounts": ["west"]}
    base.update(spec)
    return _fdep(base)


# (case id, manifest, field named in the refusal, words of the refusal that say what is allowed)
SCHEMA: list[tuple[str, dict[str, Any], str, str]] = [
    ("model-missing", _fdep({"accounts": ["west"]}), "spec.model", "Required value"),
    ("model-not-an-object", _ok(model="gpt-5.4"), "spec.model", "must be of type object"),
    ("model-name-empty", _ok(model={"name": ""}), "spec.model.name", "should match"),
    ("model-name-slash", _ok(model={"name": "openai/gpt-5.4"}), "spec.model.name", "should match"),
    (
        "model-version-space",
        _ok(model={"name": "gpt-5.4", "version": "2026 03 05"}),
        "spec.model.version",
        "should match",
    ),
    (
        "model-format-symbols",
        _ok(model={"name": "gpt-5.4", "format": "Open AI!"}),
        "spec.model.format",
        "should match",
    ),
    ("accounts-missing", _fdep({"model": {"name": "gpt-5.4"}}), "spec.accounts", "Required value"),
    ("accounts-empty", _ok(accounts=[]), "spec.accounts", "at least 1 items"),
    (
        "accounts-duplicate",
        _ok(accounts=["west", "west"]),
        "spec.accounts",
        "must not list the same entry twice",
    ),
    ("accounts-too-many", _ok(accounts=[f"a{i}" for i in range(17)]), "spec.accounts", "at most 16 items"),
    ("account-ref-uppercase", _ok(accounts=["West"]), "spec.accounts[0]", "should match"),
    ("account-ref-two-slashes", _ok(accounts=["a/b/c"]), "spec.accounts[0]", "should match"),
    ("key-lowercase", _ok(keys=["reasoning"]), "spec.keys[0]", "should match '^[A-Z][A-Z0-9_]"),
    ("key-leading-digit", _ok(keys=["1ST_CHOICE"]), "spec.keys[0]", "should match"),
    ("key-dash-not-env-var", _ok(keys=["REASONING-PRO"]), "spec.keys[0]", "should match"),
    ("key-dot-not-env-var", _ok(keys=["GPT.5"]), "spec.keys[0]", "should match"),
    ("key-too-long", _ok(keys=["K" * 64]), "spec.keys[0]", "may not be more than 63 bytes"),
    ("keys-duplicate", _ok(keys=["A", "A"]), "spec.keys", "must not list the same entry twice"),
    ("deployment-name-space", _ok(deploymentName="my model"), "spec.deploymentName", "should match"),
    ("deployment-name-one-char", _ok(deploymentName="x"), "spec.deploymentName", "at least 2 chars"),
    ("sku-name-unknown", _ok(sku={"name": "Premium"}), "spec.sku.name", 'supported values: "GlobalStandard"'),
    ("capacity-zero", _ok(sku={"capacity": 0}), "spec.sku.capacity", "greater than or equal to 1"),
    ("capacity-negative", _ok(sku={"capacity": -5}), "spec.sku.capacity", "greater than or equal to 1"),
    ("capacity-string", _ok(sku={"capacity": "ten"}), "spec.sku.capacity", "must be of type integer"),
    ("capacity-huge", _ok(sku={"capacity": 2_000_000}), "spec.sku.capacity", "less than or equal to 1000000"),
    ("unknown-field", _ok(replicas=3), "spec.replicas", 'unknown field "spec.replicas"'),
    (
        "upgrade-option-unknown",
        _ok(versionUpgradeOption="Sometimes"),
        "spec.versionUpgradeOption",
        "supported values",
    ),
    (
        "deletion-policy-unknown",
        _ok(deletionPolicy="Keep"),
        "spec.deletionPolicy",
        'supported values: "Delete", "Orphan"',
    ),
    ("configmap-name-invalid", _ok(configMapName="LLM_Config"), "spec.configMapName", "should match"),
    (
        "fa-subscription-not-guid",
        _fa(subscriptionId="my-subscription"),
        "spec.subscriptionId",
        "should match",
    ),
    ("fa-subscription-missing", _fa(subscriptionId=None), "spec.subscriptionId", "Required value"),
    ("fa-resource-group-invalid", _fa(resourceGroup="bad rg!"), "spec.resourceGroup", "should match"),
    ("fa-account-name-short", _fa(accountName="a"), "spec.accountName", "at least 2 chars"),
    ("fa-account-name-dashes", _fa(accountName="-aucert-"), "spec.accountName", "should match"),
    (
        "fa-management-unknown",
        _fa(management="Owned"),
        "spec.management",
        'supported values: "Adopt", "Managed"',
    ),
    (
        "fa-managed-without-location",
        _fa(management="Managed"),
        "spec.location",
        "location is required when management is Managed",
    ),
    (
        "fa-delete-adopted",
        _fa(deletionPolicy="Delete"),
        "spec.deletionPolicy",
        "only allowed for Managed accounts",
    ),
    (
        "fa-secret-without-ref",
        _fa(credentials={"source": "Secret"}),
        "spec.credentials.secretRef",
        "secretRef is required when credentials.source is Secret",
    ),
    (
        "fa-ref-without-secret",
        _fa(credentials={"secretRef": {"name": "sp"}}),
        "spec.credentials.secretRef",
        "only used when credentials.source is Secret",
    ),
    (
        "fa-allowed-namespace-invalid",
        _fa(allowedNamespaces=["Team_A"]),
        "spec.allowedNamespaces[0]",
        "should match",
    ),
    (
        "fa-location-display-name",
        _fa(management="Managed", location="West US"),
        "spec.location",
        "should match",
    ),
    ("fa-kind-unknown", _fa(kind="ChatGPT"), "spec.kind", 'supported values: "AIServices", "OpenAI"'),
    ("fa-sku-unknown", _fa(sku="F0"), "spec.sku", 'supported values: "S0"'),
]
# Changes the API server refuses on update (CEL transition rules): (case id, patch, field, words).
IMMUTABLE: list[tuple[str, dict[str, Any], str, str]] = [
    ("fa-rename-account", {"accountName": "aucert-ai-east"}, "spec.accountName", "accountName is immutable"),
    (
        "fa-move-resource-group",
        {"resourceGroup": "team-sandbox-rg"},
        "spec.resourceGroup",
        "resourceGroup is immutable",
    ),
    (
        "fa-move-subscription",
        {"subscriptionId": "00000000-0000-4000-8000-000000000000"},
        "spec.subscriptionId",
        "subscriptionId is immutable",
    ),
]


def _causes(exc: k8s.exceptions.ApiException) -> tuple[str, list[dict[str, str]]]:
    body = json.loads(exc.body or "{}")
    return str(body.get("message", "")), list(body.get("details", {}).get("causes", []))


def _drop_none(spec: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in spec.items() if value is not None}


def _agree(errors: list[FieldError], status: int, message: str, causes: list[dict[str, str]]) -> None:
    """The validator refuses exactly as the server does: the same fields, the same words."""
    LEDGER.counts["validator_cases_compared"] += 1
    ours = sorted((error.field, error.message) for error in errors)
    if status == 400:  # strict decoding: one message, no causes
        assert ours and all(f"strict decoding error: {text}" in message for _, text in ours), (ours, message)
        return
    assert ours == sorted((c.get("field", ""), c.get("message", "")) for c in causes), (ours, causes)


def _create(box: Sandbox, plural: str, body: dict[str, Any], **options: Any) -> Any:
    return box.custom.create_namespaced_custom_object_with_http_info(
        "foundry.llmops.io", "v1alpha1", NS, plural, body, **options
    )


@pytest.mark.parametrize(("case", "manifest", "field_path", "words"), SCHEMA, ids=[c[0] for c in SCHEMA])
async def test_schema_refuses_invalid_manifests(
    box: Sandbox, case: str, manifest: dict[str, Any], field_path: str, words: str
) -> None:
    body = {**manifest, "metadata": {"name": f"bad-{case}"}, "spec": _drop_none(manifest["spec"])}
    plural = "foundrydeployments" if body["kind"] == "FoundryDeployment" else "foundryaccounts"
    mark = box.kube.audit.mark()
    # As kubectl sends it (fieldValidation=Strict: an unknown field is an error, not pruned).
    with pytest.raises(k8s.exceptions.ApiException) as refused:
        await asyncio.to_thread(_create, box, plural, body, field_validation="Strict")
    LEDGER.counts["bad_input_cases"] += 1
    status = refused.value.status
    message, causes = _causes(refused.value)
    if case == "unknown-field":
        assert status == 400 and causes == []
        assert f'strict decoding error: unknown field "{field_path}"' in message
        # Without Strict the server prunes the field and says so in a warning (dry run: not stored).
        stored, _, headers = await asyncio.to_thread(_create, box, plural, body, dry_run="All")
        warning = headers.get("Warning", "")
        assert "replicas" not in stored["spec"] and "unknown field" in warning and field_path in warning
    else:
        assert status == 422
        named = [c for c in causes if c.get("field") == field_path]
        assert named, (field_path, causes)
        assert any(words in c.get("message", "") for c in named), (words, causes)
        assert field_path in message  # kubectl prints this line: it names the field too
    _, errors = validate_object(copy.deepcopy(body))
    _agree(errors, status, message, causes)
    with pytest.raises(k8s.exceptions.ApiException) as missing:  # nothing was stored
        await box.get(body["kind"], NS, body["metadata"]["name"])
    assert missing.value.status == 404
    # The server's own record: every create of this kind since the case began was refused (or a
    # dry run, which stores nothing).
    creates = [
        e
        for e in box.kube.audit.since(mark)
        if e.resource == plural and e.verb == "create" and "dryRun=" not in e.uri
    ]
    assert creates and all((e.status or 0) >= 400 for e in creates), creates


@pytest.mark.parametrize(("case", "patch", "field_path", "words"), IMMUTABLE, ids=[c[0] for c in IMMUTABLE])
async def test_schema_refuses_changes_to_immutable_fields(
    box: Sandbox, case: str, patch: dict[str, Any], field_path: str, words: str
) -> None:
    old = await box.get("FoundryAccount", NS, "west")
    with pytest.raises(k8s.exceptions.ApiException) as refused:
        await box.patch_spec("FoundryAccount", NS, "west", patch)
    LEDGER.counts["bad_input_cases"] += 1
    assert refused.value.status == 422
    message, causes = _causes(refused.value)
    assert any(c.get("field") == field_path and words in c.get("message", "") for c in causes), causes
    assert "create a new object instead" in message
    changed = copy.deepcopy(old)
    changed["spec"].update(patch)
    _, errors = validate_object(changed, old)
    _agree(errors, 422, message, causes)
    account = await box.get("FoundryAccount", NS, "west")
    assert account["metadata"]["resourceVersion"] == old["metadata"]["resourceVersion"]
    assert (
        account["spec"]["accountName"] == "aucert-ai" and account["spec"]["resourceGroup"] == RESOURCE_GROUP
    )


# -- the operator corpus ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A valid manifest the operator must refuse: the condition's reason and the words it must hold."""

    id: str
    kind: str  # FoundryDeployment or FoundryAccount
    name: str
    reason: str
    words: tuple[str, ...]
    docs: tuple[dict[str, Any], ...] = field(default=())
    namespace: str = NS


def _acct(name: str, account: str, **spec: Any) -> dict[str, Any]:
    return {**_fa(accountName=account, **spec), "metadata": {"name": name}}


def _dep(name: str, model_name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("accounts", ["west"])
    spec.setdefault("deploymentName", f"corpus-{name}")
    return deployment(name, model_name, **spec)


CASES: list[Case] = [
    Case(
        "unknown-model",
        "FoundryDeployment",
        "unknown-model",
        "ModelNotOffered",
        (
            "gpt-9-ultra",
            "is not offered in westus",
            "fix: check spec.model.name (gpt-9-ultra)",
        ),
        (_dep("unknown-model", "gpt-9-ultra"),),
    ),
    Case(
        "wrong-format",
        "FoundryDeployment",
        "wrong-format",
        "ModelNotOffered",
        ("Kimi-K2.6", "has format MoonshotAI", "fix: set spec.model.format to MoonshotAI"),
        (_dep("wrong-format", "Kimi-K2.6"),),
    ),
    Case(
        "unknown-version",
        "FoundryDeployment",
        "unknown-version",
        "VersionNotOffered",
        ("version 2025-12-20 is not offered in westus", "fix: set spec.model.version to one of: 2026-02-24"),
        (_dep("unknown-version", "gpt-5.3-codex", model={"name": "gpt-5.3-codex", "version": "2025-12-20"}),),
    ),
    Case(
        "unknown-partner-version",
        "FoundryDeployment",
        "unknown-partner-version",
        "VersionNotOffered",
        ("DeepSeek-V3.2 version 2 is not offered", "fix: set spec.model.version to one of: 1"),
        (
            _dep(
                "unknown-partner-version",
                "DeepSeek-V3.2",
                model={"name": "DeepSeek-V3.2", "format": "DeepSeek", "version": "2"},
            ),
        ),
    ),
    Case(
        "sku-not-offered",
        "FoundryDeployment",
        "sku-not-offered",
        "SkuNotOffered",
        (
            "Standard",
            "SKUs offered there: GlobalStandard",
            "fix: set spec.sku.name to one of: GlobalStandard",
        ),
        (_dep("sku-not-offered", "gpt-5.4", sku={"name": "Standard"}),),
    ),
    Case(
        "capacity-above-max",
        "FoundryDeployment",
        "capacity-above-max",
        "CapacityOutOfRange",
        (
            "capacity 20000 is outside GlobalStandard's range 1-10000",
            "fix: set spec.sku.capacity within 1-10000",
        ),
        (_dep("capacity-above-max", "gpt-5.4", sku={"capacity": 20000}),),
    ),
    Case(
        "capacity-below-min",
        "FoundryDeployment",
        "capacity-below-min",
        "CapacityOutOfRange",
        ("capacity 5 is outside", "fix: set spec.sku.capacity within 10-30000 (step 10)"),
        (_dep("capacity-below-min", "gpt-5-nano", sku={"capacity": 5}),),
    ),
    Case(
        "capacity-off-step",
        "FoundryDeployment",
        "capacity-off-step",
        "CapacityOutOfRange",
        ("capacity 15 is outside", "(step 10)", "fix: set spec.sku.capacity within 10-30000 (step 10)"),
        (_dep("capacity-off-step", "gpt-5-nano", sku={"capacity": 15}),),
    ),
    Case(
        "quota-exceeded",
        "FoundryDeployment",
        "quota-exceeded",
        "InsufficientQuota",
        ("2500 more requested", "fix: lower spec.sku.capacity to 2000 or less"),
        (_dep("quota-exceeded", "gpt-5.4-mini", sku={"capacity": 2500}),),
    ),
    Case(
        "retired-model",
        "FoundryDeployment",
        "retired-model",
        "ModelRetired",
        ("was retired on 2026-09-30", "fix: move to gpt-5.4-mini 2026-03-17"),
        (_dep("retired-model", "gpt-4o-mini"),),
    ),
    Case(
        "deprecating-model",
        "FoundryDeployment",
        "deprecating-model",
        "ServiceModelDeprecating",
        (
            "cannot be used for new deployments",
            "fix: change spec.model to the catalog's replacement, Kimi-K2.6",
        ),
        (_dep("deprecating-model", "Kimi-K2.5", model={"name": "Kimi-K2.5", "format": "MoonshotAI"}),),
    ),
    Case(
        "not-in-this-region",
        "FoundryDeployment",
        "not-in-this-region",
        "ModelNotOffered",
        (
            "gpt-5.4-pro",
            "not offered in westus",
            "gpt-5.4-pro is offered in eastus2, southcentralus",
            "fix: add east (eastus2) to spec.accounts; or add a FoundryAccount in southcentralus to spec.accounts",
        ),
        (_dep("not-in-this-region", "gpt-5.4-pro"),),
    ),
    Case(
        "account-missing",
        "FoundryDeployment",
        "account-missing",
        "NoUsableAccount",
        (
            "FoundryAccount corpus/nowhere (spec.accounts[0]) does not exist",
            "create it, or correct spec.accounts[0]",
        ),
        (_dep("account-missing", "gpt-5.4", accounts=["nowhere"]),),
    ),
    Case(
        "account-missing-elsewhere",
        "FoundryDeployment",
        "account-missing-elsewhere",
        "NoUsableAccount",
        ("FoundryAccount elsewhere/west (spec.accounts[1]) does not exist",),
        (_dep("account-missing-elsewhere", "gpt-5.4", accounts=["nowhere", "elsewhere/west"]),),
    ),
    Case(
        "account-not-allowed",
        "FoundryDeployment",
        "account-not-allowed",
        "NoUsableAccount",
        (
            "FoundryAccount platform/shared (spec.accounts[0]) does not allow namespace corpus",
            "add it to that account's spec.allowedNamespaces",
        ),
        (_dep("account-not-allowed", "gpt-5.4", accounts=["platform/shared"]),),
    ),
    Case(
        "duplicate-key",
        "FoundryDeployment",
        "dup-b",
        "KeyConflict",
        (
            "key SHARED_KEY in ConfigMap corpus/llm-config is already published by FoundryDeployment corpus/dup-a",
            "fix: choose another key than SHARED_KEY in spec.keys",
        ),
        (_dep("dup-b", "gpt-5.1-codex", keys=["SHARED_KEY"]),),
    ),
    Case(
        "deployment-name-of-another-model",
        "FoundryDeployment",
        "foreign-name",
        "Conflict",
        (
            "already exists on account aucert-ai with model OpenAI gpt-5.1-codex",
            "fix: set spec.deploymentName to another name",
        ),
        (_dep("foreign-name", "gpt-5.4", deploymentName="foreign-codex"),),
    ),
    Case(
        "deployment-owned-by-another-object",
        "FoundryDeployment",
        "claim-b",
        "Conflict",
        (
            "is also claimed by FoundryDeployment corpus/claim-a",
            "fix: set spec.deploymentName to another name",
        ),
        (_dep("claim-b", "gpt-5.4", deploymentName="corpus-claim-a"),),
    ),
    Case(
        "adopt-account-not-in-azure",
        "FoundryAccount",
        "ghost",
        "AccountNotFound",
        (
            "aucert-ghost not found",
            "check spec.accountName, spec.resourceGroup and spec.subscriptionId",
            "spec.management: Managed",
        ),
        (_acct("ghost", "aucert-ghost"),),
    ),
    Case(
        "deployment-on-account-not-in-azure",
        "FoundryDeployment",
        "on-ghost",
        "NoUsableAccount",
        ("FoundryAccount corpus/ghost is not Ready", "check spec.accountName"),
        (_dep("on-ghost", "gpt-5.4", accounts=["ghost"]),),
    ),
    Case(
        "resource-group-missing",
        "FoundryAccount",
        "no-rg",
        "AccountNotFound",
        ("resource group no-such-rg", "check spec.accountName, spec.resourceGroup"),
        (_acct("no-rg", "aucert-ai", resourceGroup="no-such-rg"),),
    ),
    Case(
        "subscription-unknown",
        "FoundryAccount",
        "no-sub",
        "AccountNotFound",
        ("subscription 00000000-0000-4000-8000-000000000000", "spec.subscriptionId"),
        (_acct("no-sub", "aucert-ai", subscriptionId="00000000-0000-4000-8000-000000000000"),),
    ),
    Case(
        "secret-missing",
        "FoundryAccount",
        "no-secret",
        "CredentialsUnavailable",
        ("Secret corpus/nope (spec.credentials.secretRef.name) does not exist",),
        (_acct("no-secret", "aucert-ai", credentials={"source": "Secret", "secretRef": {"name": "nope"}}),),
    ),
    Case(
        "secret-incomplete",
        "FoundryAccount",
        "partial-secret",
        "CredentialsUnavailable",
        ("lacks AZURE_CLIENT_ID, AZURE_CLIENT_SECRET", "(spec.credentials.secretRef)"),
        (
            _acct(
                "partial-secret",
                "aucert-ai",
                credentials={"source": "Secret", "secretRef": {"name": "partial"}},
            ),
        ),
    ),
    Case(
        "deployment-on-unreadable-credentials",
        "FoundryDeployment",
        "on-no-secret",
        "NoUsableAccount",
        ("spec.credentials.secretRef.name",),
        (_dep("on-no-secret", "gpt-5.4", accounts=["no-secret"]),),
    ),
    Case(
        "identity-without-role",
        "FoundryAccount",
        "no-rights",
        "AuthorizationFailed",
        (
            "does not have authorization",
            "fix: give the service principal in Secret corpus/sandbox-sp (spec.credentials.secretRef) a role",
        ),
        (
            _acct(
                "no-rights",
                "aucert-ai",
                credentials={"source": "Secret", "secretRef": {"name": "sandbox-sp"}},
            ),
        ),
    ),
    Case(
        "wrong-client-secret",
        "FoundryAccount",
        "bad-secret",
        "AzureAuthenticationFailed",
        ("AADSTS7000215", "fix: check the service principal in Secret corpus/wrong-secret"),
        (
            _acct(
                "bad-secret",
                "aucert-ai",
                credentials={"source": "Secret", "secretRef": {"name": "wrong-secret"}},
            ),
        ),
    ),
    Case(
        "managed-unknown-location",
        "FoundryAccount",
        "mars",
        "LocationNotAvailableForResourceType",
        ("'marsnorth' is not available", "fix: set spec.location to one of the regions Azure lists"),
        (_acct("mars", "aucert-mars", management="Managed", location="marsnorth"),),
    ),
    Case(
        "managed-subdomain-taken",
        "FoundryAccount",
        "taken",
        "CustomDomainInUse",
        ("'aucert-ai' is not available", "fix: set spec.customSubDomainName"),
        (
            _acct(
                "taken",
                "aucert-taken",
                management="Managed",
                location="westus",
                customSubDomainName="aucert-ai",
            ),
        ),
    ),
]
HEALTHY = {
    "good": "corpus-good",
    "good-east": "corpus-good-east",
    "dup-a": "corpus-dup-a",
    "claim-a": "corpus-claim-a",
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def box(
    tmp_path_factory: pytest.TempPathFactory, control_plane: ControlPlane
) -> AsyncIterator[Sandbox]:
    async with world(tmp_path_factory.mktemp("bad-input"), control_plane) as shared:
        await shared.start_operator(SETTINGS)
        await put_secret(shared, NS, "partial", {"AZURE_TENANT_ID": shared.azure.tenant_id})
        await put_secret(shared, NS, "sandbox-sp", principal_secret(shared.azure.tenant_id, *SANDBOX_APP))
        wrong = principal_secret(shared.azure.tenant_id, shared.azure.client_id, WRONG_SECRET)
        await put_secret(shared, NS, "wrong-secret", wrong)
        shared.azure.state.drift_create(
            RESOURCE_GROUP,
            "aucert-ai",
            "foreign-codex",
            "OpenAI",
            "gpt-5.1-codex",
            "2025-11-13",
            "GlobalStandard",
            10,
        )
        await shared.apply([_acct("shared", "aucert-ai", allowedNamespaces=["team-x"])], "platform")
        await shared.apply(
            [
                *account_docs(),
                _dep("good", "gpt-5.4", keys=["GOOD"]),
                _dep("good-east", "gpt-5.1-codex", accounts=["east"], keys=["GOOD_EAST"]),
                _dep("dup-a", "gpt-5.1-codex", keys=["SHARED_KEY"]),
                _dep("claim-a", "gpt-5.4", sku={"capacity": 5}),
            ],
            NS,
        )
        for name in HEALTHY:
            await shared.wait_for(lambda n=name: converged(shared, NS, n), 30, what=f"{name} Ready")
        await shared.apply([doc for case in CASES for doc in case.docs], NS)
        yield shared


async def _ready(box: Sandbox, case: Case) -> dict[str, Any]:
    """The refusal, once it says everything (a deployment waiting on an account repeats the
    account's message once that account has been reconciled)."""

    async def matches() -> dict[str, Any] | None:
        found = await box.condition(case.kind, case.namespace, case.name)
        if found and found["status"] == "False" and found["reason"] == case.reason:
            if all(words in found["message"] for words in case.words):
                return found
        return None

    try:
        result: dict[str, Any] = await box.wait_for(matches, 30, what=f"{case.id}: Ready=False {case.reason}")
    except TimeoutError:
        found = await box.condition(case.kind, case.namespace, case.name)
        raise AssertionError(f"{case.id}: expected {case.reason} with {case.words}, got {found}") from None
    return result


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_operator_refuses_with_the_field_and_the_fix(box: Sandbox, case: Case) -> None:
    await _ready(box, case)
    LEDGER.counts["bad_input_cases"] += 1
    if case.kind == "FoundryDeployment":
        obj = await box.get(case.kind, case.namespace, case.name)
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
        # Nothing is published for a refused object.
        assert not obj["status"].get("publishedKeys")


async def test_the_corpus_disturbs_nothing_else(box: Sandbox) -> None:
    for case in CASES:
        await _ready(box, case)
    for name in HEALTHY:
        assert await converged(box, NS, name), name
    data = await box.config_map(NS)
    assert data is not None
    assert (
        data["FOUNDRY_DEPLOYMENT_GOOD"] == "corpus-good"
        and data["FOUNDRY_DEPLOYMENT_GOOD_EAST"] == "corpus-good-east"
    )
    assert data["FOUNDRY_DEPLOYMENT_SHARED_KEY"] == "corpus-dup-a"  # the older object keeps the key
    assert data["FOUNDRY_DEPLOYMENT_CLAIM_A"] == "corpus-claim-a"
    assert not any(
        key.startswith("FOUNDRY_DEPLOYMENT_")
        and key[19:] not in {"GOOD", "GOOD_EAST", "SHARED_KEY", "CLAIM_A"}
        for key in data
    )
    # Azure: only the healthy deployments (and the foreign one) exist, and only they were written:
    # a deprecating model is refused from the catalog before any write, as `check` refuses it.
    names = set(azure_deployments(box, "aucert-ai")) | set(azure_deployments(box, "aucert-ai-east"))
    assert names == {*HEALTHY.values(), "foreign-codex"}
    puts = [e["path"].rsplit("/", 1)[-1] for e in arm_requests(box, "PUT", "deployment")]
    assert sorted(puts) == sorted(HEALTHY.values()), puts
    assert azure_deployments(box, "aucert-ai")["corpus-claim-a"].capacity == 5  # claim-b changed nothing
    assert arm_requests(box, "DELETE") == []


async def test_refused_objects_do_not_spin(box: Sandbox) -> None:
    """Once refused, an object costs no Azure writes, and its retries back off exponentially."""
    for case in CASES:
        await _ready(box, case)
    window = 4.0
    arm_before = len(arm_requests(box))
    kube_mark = box.kube.audit.mark()
    await asyncio.sleep(window)
    arm_during = arm_requests(box)[arm_before:]
    kube_during = [e for e in box.kube.audit.since(kube_mark) if e.is_write and e.namespace == NS]
    LEDGER.counts["spin_window_arm_requests"] += len(arm_during)
    LEDGER.counts["spin_window_kube_writes"] += len(kube_during)
    assert [e for e in arm_during if e["method"] != "GET" and "/oauth2/" not in e["path"]] == []
    # Accounts that failed for a passing reason (403, 401) are retried after 4 x
    # transient_retry_seconds, doubling: at most one attempt each in the window.
    accounts = sum(1 for case in CASES if case.kind == "FoundryAccount")
    assert len(arm_during) <= accounts, [(e["method"], e["path"]) for e in arm_during]
    # Objects that wait (on an account, on Entra ID) look again with exponential backoff: at most
    # one retry per object in the window (kopf's two annotation patches, and the status when the
    # message changed), where it started at one per second; and one Event per retry at most.
    per_object = Counter(e.name for e in kube_during if e.resource != "events")
    assert max(per_object.values(), default=0) <= 3, per_object
    events = [e for e in kube_during if e.resource == "events"]
    assert len(events) <= len(per_object), (len(events), per_object)


# Deployments whose verdict rests on what only the cluster holds: `check` reads Azure with its own
# identity and never the cluster's Secrets, so an account the operator cannot use for want of its
# Secret is one `check` reads fine.
CLUSTER_ONLY = {"on-no-secret"}


async def test_check_agrees_with_the_operator_on_the_corpus(
    box: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The same manifests through `check` (live, this Azure): the same verdict for every
    FoundryDeployment, and the same words for the planner's refusals."""
    for case in CASES:
        await _ready(box, case)
    shared = {
        **_acct("shared", "aucert-ai", allowedNamespaces=["team-x"]),
        "metadata": {"name": "shared", "namespace": "platform"},
    }
    documents = [
        shared,
        *account_docs(),
        # In the order the operator honours claims in: creationTimestamp, then uid (check: manifest order).
        *sorted(
            await box.list("FoundryDeployment", NS),
            key=lambda d: (d["metadata"]["creationTimestamp"], d["metadata"]["uid"]),
        ),
        *(doc for case in CASES if case.kind == "FoundryAccount" for doc in case.docs),
    ]
    manifests = [
        {
            "apiVersion": d["apiVersion"],
            "kind": d["kind"],
            "metadata": {
                "name": d["metadata"]["name"],
                **({"namespace": d["metadata"]["namespace"]} if d["metadata"].get("namespace") else {}),
            },
            "spec": d["spec"],
        }
        for d in documents
    ]
    deployments = sorted(
        {d["metadata"]["name"] for d in manifests if d["kind"] == "FoundryDeployment"} - CLUSTER_ONLY
    )
    report = await live_check(box, manifests, NS, tmp_path_factory.mktemp("check"))
    operator = await operator_verdicts(box, NS, deployments)
    problems = disagreements(check_verdicts(report), operator)
    assert not problems, "\n".join(problems)
