"""`check` and the operator agree on every manifest of examples/: before anything is deployed,
and again once the operator has deployed them (its own deployments are not a Conflict)."""

from __future__ import annotations

import copy
from pathlib import Path

from foundry_emulator.sandbox import Sandbox
from tests.integration.check_agreement import check_verdicts, disagreements, live_check, operator_verdicts
from tests.integration.conftest import NAMESPACE, deployment, examples


async def test_check_and_the_operator_agree_on_the_examples(box: Sandbox, tmp_path: Path) -> None:
    documents = examples()
    names = [doc["metadata"]["name"] for doc in documents if doc["kind"] == "FoundryDeployment"]
    before = check_verdicts(await live_check(box, documents, NAMESPACE, tmp_path))
    assert all(v.ok for v in before.values()), before

    await box.start_operator()
    await box.apply(documents, NAMESPACE)
    operator = await operator_verdicts(box, NAMESPACE, names)
    problems = disagreements(before, operator)
    assert not problems, "\n".join(problems)
    after = check_verdicts(await live_check(box, documents, NAMESPACE, tmp_path))
    problems = disagreements(after, operator)
    assert not problems, "\n".join(problems)

    # The ADR's model swap, a model change of the operator's own deployment: check passes it (the
    # operator creates Kimi-K2.6 under its new name before the old one goes), as the operator does.
    changed = copy.deepcopy(documents)
    kimi = next(d for d in changed if d["metadata"]["name"] == "kimi-k2.6")
    kimi["spec"]["model"] = {"name": "DeepSeek-V3.2", "format": "DeepSeek"}
    kimi["spec"]["deploymentName"] = "generation-deepseek"
    # A fixed-name model change is refused by both, with the same words.
    codex = next(d for d in changed if d["metadata"]["name"] == "gpt-5.1-codex")
    codex["spec"]["deploymentName"] = "gpt-5.4"
    refused = deployment("late-key", "gpt-5-nano", accounts=["aucert-ai"], keys=["DECISION"])
    changed.append(refused)
    checked = check_verdicts(await live_check(box, changed, NAMESPACE, tmp_path))
    for doc in changed[:-1]:
        spec = copy.deepcopy(doc["spec"])
        if doc is kimi:
            spec["model"]["version"] = None  # a merge patch keeps fields it does not name
        await box.patch_spec(doc["kind"], NAMESPACE, doc["metadata"]["name"], spec)
    await box.apply([refused], NAMESPACE)
    operator = await operator_verdicts(box, NAMESPACE, [*names, "late-key"])
    assert checked["kimi-k2.6"].ok and operator["kimi-k2.6"].ok
    assert checked["late-key"].reason == "KeyConflict"
    problems = disagreements(checked, operator)
    assert not problems, "\n".join(problems)
