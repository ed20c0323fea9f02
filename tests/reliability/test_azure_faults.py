"""Azure misbehaving, through the emulator's fault injection: the operator converges, retries a
bounded number of times with backoff, says what is wrong while it is wrong, and never spins.

Every test counts the requests Azure saw (the emulator's request log) and checks them against a
bound computed from the retry settings.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime
from typing import Any

from foundry_emulator.azure.state import Caller
from foundry_emulator.sandbox import Sandbox, fast_settings
from foundry_operator.settings import OperatorSettings
from tests.integration.conftest import NAMESPACE, accounts, arm_requests, azure_deployments, deployment
from tests.reliability.conftest import LEDGER, converged, inject

# azure-core: 1 + arm_retry_total attempts per call, backoff capped at arm_retry_backoff_max_seconds;
# then kopf retries the handler after transient_retry_seconds.
SETTINGS = fast_settings(arm_retry_total=2, arm_retry_backoff_max_seconds=0.5, transient_retry_seconds=1.0)


def _stamp(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["timestamp"])


def _gaps(entries: list[dict[str, Any]]) -> list[float]:
    return [(_stamp(b) - _stamp(a)).total_seconds() for a, b in itertools.pairwise(entries)]


async def _ready_world(box: Sandbox, settings: OperatorSettings = SETTINGS) -> None:
    await box.start_operator(settings)
    await box.apply(accounts(), NAMESPACE)
    for name in ("aucert-ai", "aucert-ai-east"):
        await box.wait_condition("FoundryAccount", NAMESPACE, name, timeout=20)


async def _degraded(box: Sandbox, name: str, reason: str) -> dict[str, Any]:
    """Ready=False with `reason`, Reconciling=True, Stalled=False: retrying, not given up."""
    ready = await box.wait_condition("FoundryDeployment", NAMESPACE, name, status="False", reason=reason)
    reconciling = await box.condition("FoundryDeployment", NAMESPACE, name, "Reconciling")
    stalled = await box.condition("FoundryDeployment", NAMESPACE, name, "Stalled")
    assert reconciling is not None and reconciling["status"] == "True", reconciling
    assert stalled is not None and stalled["status"] == "False", stalled
    return ready


async def test_burst_of_429_honours_retry_after(box: Sandbox) -> None:
    await _ready_world(box)
    burst = inject(
        box,
        path="/deployments/gpt-5.4$",
        status=429,
        code="TooManyRequests",
        message="The request is being throttled as the limit has been reached for operation type - Write.",
        retryAfter=1,
        count=3,
    )
    await box.apply([deployment("gpt", "gpt-5.4", accounts=["aucert-ai"])], NAMESPACE)
    await box.wait_for(lambda: converged(box, NAMESPACE, "gpt"), 30, what="gpt Ready")
    assert burst.hits == 3
    touched = [e for e in arm_requests(box) if e["path"].endswith("/deployments/gpt-5.4")]
    throttled = [i for i, e in enumerate(touched) if e["status"] == 429]
    # After every 429 the next request waited the Retry-After (1 s), client-side, not hammering.
    for index in throttled:
        assert (_stamp(touched[index + 1]) - _stamp(touched[index])).total_seconds() >= 0.9
    assert len(touched) <= 3 + 2 + 1  # the three 429s, the GET that finally passed, the PUT (+1 slack)
    assert len(azure_deployments(box, "aucert-ai")) == 1


async def test_500_503_and_dropped_connections_on_every_step_converge(box: Sandbox) -> None:
    await _ready_world(box)
    faults = [
        inject(box, method="GET", path="/locations/westus/models$", status=503, count=1),
        inject(box, method="GET", path="/locations/westus/usages$", status=500, count=1),
        inject(box, method="GET", path="/deployments/gpt-5.4$", drop=True, count=1),
        inject(box, method="PUT", path="/deployments/gpt-5.4$", status=503, count=1),
        inject(box, method="PUT", path="/deployments/gpt-5.4$", drop=True, count=1),
        inject(box, method="GET", path="/operationStatuses/", drop=True, count=1),
        inject(box, method="GET", path="/operationStatuses/", status=500, count=1),
    ]
    await box.apply([deployment("gpt", "gpt-5.4", accounts=["aucert-ai"])], NAMESPACE)
    await box.wait_for(lambda: converged(box, NAMESPACE, "gpt"), 40, what="gpt Ready")
    assert all(f.hits == 1 for f in faults), [f.describe() for f in faults]
    # A dropped PUT never reached the resource provider; the retried one created it once.
    puts = arm_requests(box, "PUT", "deployment")
    assert [e["status"] for e in puts] == [503, None, 201]
    assert list(azure_deployments(box, "aucert-ai")) == ["gpt-5.4"]
    data = await box.config_map(NAMESPACE)
    assert data is not None and data["FOUNDRY_DEPLOYMENT_GPT"] == "gpt-5.4"


async def test_persistent_outage_is_reported_honestly_and_retried_without_a_hot_loop(box: Sandbox) -> None:
    await _ready_world(box)
    outage = inject(
        box,
        method="PUT",
        path="/deployments/",
        status=503,
        code="ServiceUnavailable",
        message="The service is temporarily unavailable.",
    )
    await box.apply(
        [
            deployment("gpt", "gpt-5.4", accounts=["aucert-ai"]),
            deployment("codex", "gpt-5.1-codex", accounts=["aucert-ai-east"]),
        ],
        NAMESPACE,
    )
    ready = await _degraded(box, "gpt", "ServiceUnavailable")
    assert "The service is temporarily unavailable" in ready["message"]
    window = 5.0
    before = len(arm_requests(box, "PUT"))
    await asyncio.sleep(window)
    during = len(arm_requests(box, "PUT")) - before
    attempts = 1 + SETTINGS.arm_retry_total
    # Two objects, each at most one handler run per transient_retry_seconds, each run at most
    # `attempts` PUTs: a bound, not a loop.
    bound = 2 * attempts * (window / SETTINGS.transient_retry_seconds + 1)
    assert 0 < during <= bound, (during, bound)
    # Consecutive PUTs of one object are never closer than its azure-core backoff allows, except
    # azure-core's first retry, which is immediate.
    gpt_puts = [e for e in arm_requests(box, "PUT") if e["path"].endswith("/gpt-5.4")]
    assert sum(1 for gap in _gaps(gpt_puts) if gap < 0.3) <= len(gpt_puts) // attempts + 1
    # Reads are not hammered either: one GET of the deployment per handler run.
    gets = [e for e in arm_requests(box, "GET", "deployment") if e["path"].endswith("/gpt-5.4")]
    assert len(gets) <= len(gpt_puts) // attempts + 2
    box.azure.faults.clear()
    await box.wait_for(lambda: converged(box, NAMESPACE, "gpt"), 30, what="gpt Ready after the outage")
    await box.wait_for(lambda: converged(box, NAMESPACE, "codex"), 30, what="codex Ready after the outage")
    assert outage.hits >= 2 * attempts
    assert set(azure_deployments(box, "aucert-ai")) == {"gpt-5.4"}
    assert set(azure_deployments(box, "aucert-ai-east")) == {"gpt-5.1-codex"}


async def test_slow_azure_converges_and_does_not_hold_other_accounts(box: Sandbox) -> None:
    await _ready_world(box)
    slow = inject(box, path="/accounts/aucert-ai/deployments/", delaySeconds=1.5, count=4)
    await box.apply(
        [
            deployment("gpt", "gpt-5.4", accounts=["aucert-ai"]),
            deployment("codex", "gpt-5.1-codex", accounts=["aucert-ai-east"]),
        ],
        NAMESPACE,
    )
    # The other account's deployment does not wait for the slow one.
    await box.wait_for(lambda: converged(box, NAMESPACE, "codex"), 20, what="codex Ready")
    gpt = await box.condition("FoundryDeployment", NAMESPACE, "gpt")
    assert gpt is None or gpt["status"] != "True"
    await box.wait_for(lambda: converged(box, NAMESPACE, "gpt"), 30, what="gpt Ready")
    assert slow.hits == 4
    assert len(arm_requests(box, "PUT", "deployment")) == 2


def _foreign_put(box: Sandbox, name: str, seconds: float) -> None:
    """Another tool (Terraform, the portal) writes to the same account: a real operation, in flight."""
    timing = box.azure.state.scenario.timing
    previous, timing.lroSeconds = timing.lroSeconds, seconds
    try:
        box.azure.state.put_deployment(
            "aucert-foundation-rg",
            "aucert-ai",
            name,
            {
                "sku": {"name": "GlobalStandard", "capacity": 1},
                "properties": {"model": {"name": "gpt-5.4-mini"}},
            },
            Caller(client_id="terraform", object_id="terraform"),
            None,
        )
    finally:
        timing.lroSeconds = previous
    LEDGER.counts["azure_foreign_writes"] += 1


async def test_request_conflict_from_another_writer_backs_off_then_reports_busy(box: Sandbox) -> None:
    settings = fast_settings(
        conflict_retry_seconds=0.2, conflict_retry_attempts=3, transient_retry_seconds=1.0, arm_retry_total=2
    )
    await _ready_world(box, settings)
    _foreign_put(box, "terraform-mini", 1.2)  # the account is busy for 1.2 s
    await box.apply([deployment("gpt", "gpt-5.4", accounts=["aucert-ai"])], NAMESPACE)
    await box.wait_for(lambda: converged(box, NAMESPACE, "gpt"), 30, what="gpt Ready after a foreign write")
    puts = arm_requests(box, "PUT", "deployment")
    conflicts = [e for e in puts if e["status"] == 409]
    assert conflicts and len(puts) <= 1 + 2 * settings.conflict_retry_attempts
    gaps = _gaps(puts)
    assert all(gap >= 0.15 for gap in gaps), gaps  # backoff between attempts, never back to back

    # A writer that keeps the account busy beyond every attempt: an honest condition, then recovery.
    stop = asyncio.Event()

    async def busy_account() -> None:
        while not stop.is_set():
            record = box.azure.state.get_account("aucert-foundation-rg", "aucert-ai")
            if record.operation is None:
                _foreign_put(box, "terraform-mini", 0.8)
            await asyncio.sleep(0.05)

    writer = asyncio.create_task(busy_account())
    try:
        await box.patch_spec("FoundryDeployment", NAMESPACE, "gpt", {"sku": {"capacity": 40}})
        ready = await _degraded(box, "gpt", "AccountBusy")
        assert "aucert-ai" in ready["message"] and "Another operation is being performed" in ready["message"]
        before = len(arm_requests(box, "PUT"))
        await asyncio.sleep(3.0)
        during = len(arm_requests(box, "PUT")) - before
        assert during <= settings.conflict_retry_attempts * (3.0 / settings.transient_retry_seconds + 1)
    finally:
        stop.set()
        await writer
    await box.wait_for(lambda: converged(box, NAMESPACE, "gpt", capacity=40), 30, what="gpt updated")
    assert set(azure_deployments(box, "aucert-ai")) == {"gpt-5.4", "terraform-mini"}


async def test_token_endpoint_burst_is_retried(box: Sandbox) -> None:
    burst = inject(box, method="POST", path="/oauth2/v2.0/token$", status=503, count=2)
    await _ready_world(box)
    await box.apply([deployment("gpt", "gpt-5.4", accounts=["aucert-ai"])], NAMESPACE)
    await box.wait_for(lambda: converged(box, NAMESPACE, "gpt"), 30, what="gpt Ready")
    assert burst.hits == 2


async def test_token_endpoint_outage_is_reported_and_retried_slowly(box: Sandbox) -> None:
    outage = inject(
        box,
        method="POST",
        path="/oauth2/v2.0/token$",
        status=400,
        code="invalid_client",
        message="AADSTS7000222: The provided client secret keys for app are expired.",
    )
    await box.start_operator(SETTINGS)
    await box.apply([*accounts(), deployment("gpt", "gpt-5.4", accounts=["aucert-ai"])], NAMESPACE)

    async def account_reason() -> str | None:
        found = await box.condition("FoundryAccount", NAMESPACE, "aucert-ai")
        return str(found["reason"]) if found and found["status"] == "False" else None

    reason = await box.wait_for(account_reason, 30, what="account not Ready")
    assert reason == "AzureAuthenticationFailed"
    account_ready = await box.condition("FoundryAccount", NAMESPACE, "aucert-ai")
    assert account_ready is not None and "AADSTS7000222" in account_ready["message"], account_ready
    before = outage.hits
    await asyncio.sleep(4.0)
    # Two accounts, retried after transient_retry_seconds * 4 on an authentication failure.
    assert outage.hits - before <= 2 * 2 * (1 + SETTINGS.arm_retry_total), outage.hits - before
    gpt = await box.condition("FoundryDeployment", NAMESPACE, "gpt")
    assert gpt is not None and gpt["status"] == "False" and "aucert-ai" in gpt["message"], gpt
    assert arm_requests(box, "PUT") == []
    box.azure.faults.clear()
    await box.wait_for(lambda: converged(box, NAMESPACE, "gpt"), 40, what="gpt Ready after Entra recovers")
