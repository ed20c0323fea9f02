"""SIGKILL in the middle of a make-before-break model swap, then a restart.

Kimi-K2.5 -> Kimi-K2.6 with the default deploymentName (the model name), so the swap makes a new
Azure deployment. The operator process (`python -m foundry_operator run`) is killed with SIGKILL
after the new deployment is Succeeded, the key switched to it and the old one recorded in
status.retiring, but before the old one's drain ends (no DELETE sent yet). A new process finishes
the work: it keeps the recorded drain end (notBefore), deletes the old deployment once, after
the drain, and never creates the new one again. llm-config is sampled every ~20 ms the whole time
(kill and restart included): the key is never missing and never names a deployment that is not
Succeeded in Azure at that moment.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from foundry_emulator.sandbox import OperatorProcess, Sandbox, fast_settings
from tests.integration.conftest import arm_requests, deployment
from tests.integration.sampling_support import KeySampler, deployment_state, sampling
from tests.reliability.conftest import account_docs, converged, kill, start_process, status_of

pytestmark = pytest.mark.slow

NAMESPACE = "swap-crash"
SETTINGS = fast_settings(transient_retry_seconds=0.5, lro_poll_seconds=0.1, resync_interval_seconds=1.0)
DRAIN = 6  # seconds: long enough to kill inside it, short enough to wait out
OLD, NEW = "Kimi-K2.5", "Kimi-K2.6"


@dataclass
class SwapSampler(KeySampler):
    """The key, and the object's status.retiring: the drain end recorded for the old deployment
    must never change, and the record must not go while the old deployment is still in Azure."""

    not_before: set[str] = field(default_factory=set)

    async def run(self) -> None:
        while True:
            status = await status_of(self.box, NAMESPACE, "kimi")
            retiring = [r for r in status.get("retiring") or [] if r.get("deploymentName") == OLD]
            self.not_before.update(r["notBefore"] for r in retiring)
            # Read after the status: a record dropped before the delete would show the old one still here.
            if self.not_before and not retiring and deployment_state(self.box, "aucert-ai", OLD) != "gone":
                self.violations.append(f"status.retiring dropped {OLD} while it is still in Azure")
            self.check(await self.box.config_map(NAMESPACE) or {})
            await asyncio.sleep(self.interval)


def _writes(box: Sandbox, method: str, name: str) -> list[dict[str, Any]]:
    return [
        e for e in arm_requests(box, method, "deployment") if str(e["path"]).endswith(f"/deployments/{name}")
    ]


def _started(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["timestamp"]) - timedelta(milliseconds=entry["durationMs"])


async def test_sigkill_between_the_key_switch_and_the_old_deployments_deletion(box: Sandbox) -> None:
    # Kimi-K2.5 is Deprecating in the default catalog (no new deployment); it was GA when deployed.
    box.azure.state.catalog.models[OLD.lower()].lifecycleStatus = "GenerallyAvailable"
    proc: OperatorProcess = await start_process(box, SETTINGS)
    body = deployment(
        "kimi",
        OLD,
        accounts=["west"],
        model={"name": OLD, "format": "MoonshotAI"},
        keys=["KIMI"],
        drainSeconds=DRAIN,
    )
    await box.apply([*account_docs(), body], NAMESPACE)
    await box.wait_for(lambda: converged(box, NAMESPACE, "kimi", deploymentName=OLD), 60, what="kimi Ready")

    sampler = SwapSampler(box, NAMESPACE, "KIMI")
    try:
        async with sampling(sampler):
            box.azure.state.scenario.timing.lroSeconds = 1.0  # a create long enough to be sampled
            await box.patch_spec("FoundryDeployment", NAMESPACE, "kimi", {"model": {"name": NEW}})

            async def switched() -> bool:
                return sampler.seen[-1:] == [("aucert-ai", NEW)] and bool(sampler.not_before)

            await box.wait_for(switched, 60, interval=0.02, what="the key switched and the old one retiring")
            await kill(proc)

            # What the dead process left: the new deployment serving, the old one draining, recorded.
            assert _writes(box, "DELETE", OLD) == [], "deleted before the kill: the drain was not held"
            assert deployment_state(box, "aucert-ai", OLD) == "Succeeded"
            status = await status_of(box, NAMESPACE, "kimi")
            assert status["deploymentName"] == NEW and status["resourceId"].endswith(f"/deployments/{NEW}")
            [retiring] = status["retiring"]
            assert retiring["deploymentName"] == OLD and retiring["resourceId"].endswith(
                f"/deployments/{OLD}"
            )
            not_before = datetime.fromisoformat(retiring["notBefore"].replace("Z", "+00:00"))
            assert (await box.config_map(NAMESPACE) or {})["FOUNDRY_DEPLOYMENT_KIMI"] == NEW

            proc = await start_process(box, SETTINGS, restart=True)
            await box.wait_for(
                lambda: deployment_state(box, "aucert-ai", OLD) == "gone",
                DRAIN + 60,
                what=f"{OLD} deleted after its drain",
            )
            await box.wait_for(
                lambda: converged(box, NAMESPACE, "kimi", deploymentName=NEW, retiring=[]),
                30,
                what="status.retiring emptied",
            )
            floor = sampler.samples + 10
            await box.wait_for(lambda: sampler.samples >= floor, 30, what="samples after the retirement")
    except (AssertionError, TimeoutError) as exc:
        raise AssertionError(f"{exc}\n{proc.log_path.read_text(errors='replace')[-4000:]}") from exc

    assert sampler.violations == [], sampler.violations[:20]
    assert sampler.seen == [("aucert-ai", OLD), ("aucert-ai", NEW)]
    assert sampler.not_before == {retiring["notBefore"]}, "the drain end was not kept across the restart"
    # One DELETE of the old deployment, sent after its drain ended; the new one created once.
    deletes = _writes(box, "DELETE", OLD)
    assert len(deletes) == 1, deletes
    assert _started(deletes[0]) >= not_before, (deletes[0]["timestamp"], retiring["notBefore"])
    assert [e["status"] for e in _writes(box, "PUT", NEW)] == [201]
    assert _writes(box, "DELETE", NEW) == [] and len(_writes(box, "PUT", OLD)) == 1
    assert deployment_state(box, "aucert-ai", NEW) == "Succeeded"
    data = await box.config_map(NAMESPACE) or {}
    assert (data["FOUNDRY_DEPLOYMENT_KIMI"], data["FOUNDRY_MODEL_KIMI"]) == (NEW, NEW)
