"""`check` beside the running operator: the same manifests, the same Azure, the same verdicts.

Shared by the agreement tests (examples/ here, the bad-input corpus in tests/reliability).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from foundry_emulator.sandbox import Sandbox
from tests.preflight.support import azure_env

# Where the two must say the same words too (not only the same reason): the planner's refusals.
SAME_TEXT = {
    "Conflict",
    "KeyConflict",
    "ModelNotOffered",
    "VersionNotOffered",
    "SkuNotOffered",
    "CapacityOutOfRange",
    "InsufficientQuota",
    "ModelRetired",
    "ServiceModelDeprecating",
    "ServiceModelDeprecated",
}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str | None  # the operator's Ready reason; check's first error code
    message: str | None  # the operator's Ready message; check's message with its fixes


async def live_check(
    box: Sandbox, documents: list[dict[str, Any]], namespace: str, folder: Path
) -> dict[str, Any]:
    """`foundry-operator check -o json`, as a user runs it: its own process, the AZURE_* variables."""
    path = folder / "manifests.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    env = {**os.environ, **{k: v for k, v in azure_env(box.azure).items() if v is not None}}
    for name, value in azure_env(box.azure).items():
        if value is None:
            env.pop(name, None)
    command = [
        sys.executable,
        "-m",
        "foundry_operator",
        "check",
        "-f",
        str(path),
        "-n",
        namespace,
        "-o",
        "json",
    ]
    done = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode in (0, 1), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def check_verdicts(report: dict[str, Any]) -> dict[str, Verdict]:
    verdicts = {}
    for row in report["deployments"]:
        errors = row.get("errors") or []
        if not errors:
            verdicts[row["name"]] = Verdict(True, None, None)
            continue
        first = errors[0]
        fixes = first.get("fixes") or []
        message = first["message"] + (f" (fix: {'; '.join(fixes)})" if fixes else "")
        verdicts[row["name"]] = Verdict(False, first["code"], message)
    return verdicts


async def settled(box: Sandbox, namespace: str, name: str) -> Verdict | None:
    """The operator's verdict once it stops changing: Ready, or Stalled (not a transient wait)."""
    obj = await box.get("FoundryDeployment", namespace, name)
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"]["generation"]:
        return None
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    ready, stalled = conditions.get("Ready"), conditions.get("Stalled")
    if ready and ready["status"] == "True":
        return Verdict(True, None, None)
    if ready and stalled and stalled["status"] == "True":
        return Verdict(False, ready["reason"], ready["message"])
    return None


async def operator_verdicts(
    box: Sandbox, namespace: str, names: list[str], timeout: float = 90
) -> dict[str, Verdict]:
    verdicts = {}
    for name in names:
        verdicts[name] = await box.wait_for(
            lambda n=name: settled(box, namespace, n), timeout, what=f"{name} settled"
        )
    return verdicts


def disagreements(check: dict[str, Verdict], operator: dict[str, Verdict]) -> list[str]:
    found = []
    for name, said in operator.items():
        checked = check[name]
        if (checked.ok, checked.reason) != (said.ok, said.reason):
            found.append(f"{name}: check {checked} / operator {said}")
        elif said.reason in SAME_TEXT and checked.message != said.message:
            found.append(f"{name}: check says {checked.message!r}, the operator {said.message!r}")
    return found
