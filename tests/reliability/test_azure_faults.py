"""Azure misbehaving, through the emulator's fault injection: the operator converges, retries a
bounded number of times with backoff, says what is wrong while it is wrong, and never spins.

One sandbox and one operator serve the whole module (faults are matched on each test's own
deployment names and cleared after each test); every test counts the requests Azure saw (the
emulator's request log) and checks them against a bound computed from the retry settings.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from foundry_emulator.azure.state import Caller
from foundry_emulator.controlplane import ControlPlane
from foundry_emulator.sandbox import Sandbox, fast_settings
from tests.integration.conftest import arm_requests, azure_deployments, deployment
from tests.reliability.conftest import (
    CI_CLIENT_ID,
    CI_CLIENT_SECRET,
    LEDGER,
    account_docs,
    converged,
    inject,
    principal_secret,
    put_secret,
    world,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

# azure-core: 1 + arm_retry_total attempts per call, backoff capped at arm_retry_backoff_max_seconds;
# RequestConflict: conflict_retry_attempts in the account's write slot, backoff doubling from
# conflict_retry_seconds; then kopf retries the handler after transient_retry_seconds.
SETTINGS = fast_settings(
    arm_retry_total=2,
    arm_retry_backoff_max_seconds=0.2,
    transient_retry_seconds=0.5,
    conflict_retry_seconds=0.2,
    conflict_retry_attempts=3,
)
ATTEMPTS = 1 + SETTINGS.arm_retry_total


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def box(
    tmp_path_factory: pytest.TempPathFactory, control_plane: ControlPlane
) -> AsyncIterator[Sandbox]:
    state_dir: Path = tmp_path_factory.mktemp("azure-faults")
    async with world(state_dir, control_plane) as shared:
        await shared.start_operator(SETTINGS)
        yield shared


@pytest.fixture(autouse=True)
def _clear_faults(box: Sandbox) -> Iterator[None]:
    yield
    box.azure.faults.clear()


def _stamp(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["timestamp"])


def _gaps(entries: list[dict[str, Any]]) -> list[float]:
    return [(_stamp(b) - _stamp(a)).total_seconds() for a, b in itertools.pairwise(entries)]


def _runs(entries: list[dict[str, Any]], apart: float = 0.35) -> list[list[dict[str, Any]]]:
    """Requests grouped into handler runs: a run's retries are less than `apart` seconds apart."""
    runs: list[list[dict[str, Any]]] = []
    for entry in entries:
        if runs and (_stamp(entry) - _stamp(runs[-1][-1])).total_seconds() < apart:
            runs[-1].append(entry)
        else:
            runs.append([entry])
    return runs


def _on(box: Sandbox, name: str, method: str | None = None) -> list[dict[str, Any]]:
    """ARM requests to one deployment (by its Azure name)."""
    return [e for e in arm_requests(box, method) if e["path"].endswith(f"/deployments/{name}")]


async def _namespace(box: Sandbox, namespace: str, **accounts: Any) -> None:
    await box.apply(account_docs(**accounts), namespace)
    for name in ("west", "east"):
        await box.wait_condition("FoundryAccount", namespace, name, timeout=20)


async def _degraded(box: Sandbox, namespace: str, name: str, reason: str) -> dict[str, Any]:
    """Ready=False with `reason` and Reconciling=True: retrying, not given up (no Stalled)."""
    ready = await box.wait_condition("FoundryDeployment", namespace, name, status="False", reason=reason)
    conditions = (await box.get("FoundryDeployment", namespace, name))["status"]["conditions"]
    by_type = {c["type"]: c for c in conditions}
    assert by_type.get("Reconciling", {}).get("status") == "True", conditions
    assert "Stalled" not in by_type, conditions  # kstatus: abnormal-true, absent while false
    return ready


async def test_burst_of_429_honours_retry_after(box: Sandbox) -> None:
    await _namespace(box, "az-throttle")
    burst = inject(
        box,
        path="/deployments/throttled$",
        status=429,
        code="TooManyRequests",
        message="The request is being throttled as the limit has been reached for operation type - Write.",
        retryAfter=1,
        count=3,
    )
    await box.apply(
        [deployment("gpt", "gpt-5.4", accounts=["west"], deploymentName="throttled")], "az-throttle"
    )
    await box.wait_for(lambda: converged(box, "az-throttle", "gpt"), 30, what="gpt Ready")
    assert burst.hits == 3
    touched = _on(box, "throttled")
    # After every 429 the next request waited the Retry-After (1 s): the client held back.
    for index, entry in enumerate(touched[:-1]):
        if entry["status"] == 429:
            assert (_stamp(touched[index + 1]) - _stamp(entry)).total_seconds() >= 0.9, touched
    # Besides the three 429s: the read that decides and, when that read is not fresh any more by
    # the time the account's write slot is ours, one re-read (arm.put_deployment); one PUT; the
    # poller's final GET. Nothing more.
    passed = [(e["method"], e["status"]) for e in touched if e["status"] != 429]
    reads = len(passed) - 2
    assert 1 <= reads <= 2 and passed == [("GET", 404)] * reads + [("PUT", 201), ("GET", 200)], touched
    assert "throttled" in azure_deployments(box, "aucert-ai")


async def test_500_503_and_dropped_connections_on_every_step_converge(box: Sandbox) -> None:
    await _namespace(box, "az-errors")
    faults = [
        inject(box, method="GET", path="/deployments/flaky$", drop=True, count=1),
        inject(box, method="GET", path="/deployments/flaky$", status=500, count=1),
        inject(box, method="PUT", path="/deployments/flaky$", status=503, count=1),
        inject(box, method="PUT", path="/deployments/flaky$", drop=True, count=1),
        inject(box, method="GET", path="/operationStatuses/", drop=True, count=1),
        inject(box, method="GET", path="/operationStatuses/", status=500, count=1),
    ]
    await box.apply([deployment("gpt", "gpt-5.4", accounts=["west"], deploymentName="flaky")], "az-errors")
    await box.wait_for(lambda: converged(box, "az-errors", "gpt"), 40, what="gpt Ready")
    assert all(f.hits == 1 for f in faults), [f.describe() for f in faults]
    # The dropped PUT never reached the resource provider; the one retried after it created it once.
    assert [e["status"] for e in _on(box, "flaky", "PUT")] == [503, None, 201]
    assert "flaky" in azure_deployments(box, "aucert-ai")
    data = await box.config_map("az-errors")
    assert data is not None and data["FOUNDRY_DEPLOYMENT_GPT"] == "flaky"


async def test_persistent_outage_is_reported_honestly_and_retried_without_a_hot_loop(box: Sandbox) -> None:
    namespace = "az-outage"
    await _namespace(box, namespace)
    outage = inject(
        box,
        method="PUT",
        path="/deployments/outage-(west|east)$",
        status=503,
        code="ServiceUnavailable",
        message="The service is temporarily unavailable.",
    )
    await box.apply(
        [
            deployment("gpt", "gpt-5.4", accounts=["west"], deploymentName="outage-west"),
            deployment("codex", "gpt-5.1-codex", accounts=["east"], deploymentName="outage-east"),
        ],
        namespace,
    )
    ready = await _degraded(box, namespace, "gpt", "ServiceUnavailable")
    assert "The service is temporarily unavailable" in ready["message"]
    # Each handler run makes ATTEMPTS PUTs (azure-core's retries, at most 0.2 s apart); kopf runs
    # the handler again after transient_retry_seconds, doubling each time: runs spread out.
    await box.wait_for(lambda: len(_runs(_on(box, "outage-west", "PUT"))) >= 4, 30, what="four attempts")
    for name in ("outage-west", "outage-east"):
        puts = _on(box, name, "PUT")
        runs = _runs(puts)
        assert all(len(run) <= ATTEMPTS for run in runs), [len(run) for run in runs]
        # The pause between the end of one run and the start of the next: kopf's retry delay.
        pauses = [(_stamp(b[0]) - _stamp(a[-1])).total_seconds() for a, b in itertools.pairwise(runs)]
        assert all(b >= a - 0.3 for a, b in itertools.pairwise(pauses)), pauses  # never shrinking
        if len(pauses) >= 3:
            assert pauses[2] >= 2 * pauses[0], pauses  # exponential (0.5, 1, 2 s...), not fixed
        # Reads are not hammered either: per handler run, the read that decides and the re-read
        # in the account's write slot, whatever the PUT's retries.
        assert len(_on(box, name, "GET")) <= 2 * len(runs) + 1
    box.azure.faults.clear()
    await box.wait_for(lambda: converged(box, namespace, "gpt"), 30, what="gpt Ready after the outage")
    await box.wait_for(lambda: converged(box, namespace, "codex"), 30, what="codex Ready after the outage")
    assert outage.hits >= 4 * ATTEMPTS
    assert "outage-west" in azure_deployments(box, "aucert-ai")
    assert "outage-east" in azure_deployments(box, "aucert-ai-east")


async def test_slow_azure_converges_and_does_not_hold_other_accounts(box: Sandbox) -> None:
    namespace = "az-slow"
    await _namespace(box, namespace)
    slow = inject(box, path="/deployments/slow-west$", delaySeconds=1.5)
    await box.apply(
        [
            deployment("gpt", "gpt-5.4", accounts=["west"], deploymentName="slow-west"),
            deployment("codex", "gpt-5.1-codex", accounts=["east"], deploymentName="quick-east"),
        ],
        namespace,
    )
    # The other account's deployment does not wait for the slow one.
    await box.wait_for(lambda: converged(box, namespace, "codex"), 20, what="codex Ready")
    assert not await converged(box, namespace, "gpt")
    await box.wait_for(lambda: converged(box, namespace, "gpt"), 30, what="gpt Ready")
    assert slow.hits >= 2  # every read and write of that deployment was slow
    assert len(_on(box, "slow-west", "PUT")) == 1


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
    namespace = "az-busy"
    await _namespace(box, namespace)
    _foreign_put(box, "terraform-mini", 1.2)  # the account is busy for 1.2 s
    await box.apply([deployment("gpt", "gpt-5.4", accounts=["west"], deploymentName="contended")], namespace)
    await box.wait_for(lambda: converged(box, namespace, "gpt"), 30, what="gpt Ready after a foreign write")
    puts = _on(box, "contended", "PUT")
    assert [e for e in puts if e["status"] == 409] and puts[-1]["status"] == 201
    assert len(puts) <= 2 * SETTINGS.conflict_retry_attempts
    assert all(gap >= 0.15 for gap in _gaps(puts)), _gaps(puts)  # backoff, never back to back

    # A writer that keeps the account busy beyond every attempt: an honest condition, then recovery.
    stop = asyncio.Event()

    async def busy_account() -> None:
        while not stop.is_set():
            if box.azure.state.get_account("aucert-foundation-rg", "aucert-ai").operation is None:
                _foreign_put(box, "terraform-mini", 0.8)
            await asyncio.sleep(0.05)

    writer = asyncio.create_task(busy_account())
    try:
        await box.patch_spec("FoundryDeployment", namespace, "gpt", {"sku": {"capacity": 40}})
        ready = await _degraded(box, namespace, "gpt", "AccountBusy")
        assert "aucert-ai" in ready["message"] and "Another operation is being performed" in ready["message"]
        before = len(_on(box, "contended", "PUT"))
        await asyncio.sleep(3.0)
        during = len(_on(box, "contended", "PUT")) - before
        assert during <= SETTINGS.conflict_retry_attempts * (3.0 / SETTINGS.transient_retry_seconds + 1)
    finally:
        stop.set()
        await writer
    await box.wait_for(lambda: converged(box, namespace, "gpt", capacity=40), 30, what="gpt updated")
    assert azure_deployments(box, "aucert-ai")["contended"].capacity == 40


async def test_token_endpoint_burst_is_retried(box: Sandbox) -> None:
    # Accounts with their own service principal (a Secret): a new credential, so a new token.
    namespace = "az-token-burst"
    await put_secret(
        box,
        namespace,
        "operator-sp",
        principal_secret(box.azure.tenant_id, box.azure.client_id, box.azure.client_secret),
    )
    burst = inject(box, method="POST", path="/oauth2/v2.0/token$", status=503, count=2)
    await _namespace(box, namespace, secret="operator-sp")
    await box.apply(
        [deployment("gpt", "gpt-5.4", accounts=["west"], deploymentName="token-burst")], namespace
    )
    await box.wait_for(lambda: converged(box, namespace, "gpt"), 30, what="gpt Ready")
    assert burst.hits == 2


async def test_token_endpoint_outage_is_reported_and_retried_slowly(box: Sandbox) -> None:
    namespace = "az-token-outage"
    await put_secret(
        box, namespace, "ci-sp", principal_secret(box.azure.tenant_id, CI_CLIENT_ID, CI_CLIENT_SECRET)
    )
    outage = inject(
        box,
        method="POST",
        path="/oauth2/v2.0/token$",
        status=400,
        code="invalid_client",
        message="AADSTS7000222: The provided client secret keys for app are expired.",
    )
    await box.apply(
        [
            *account_docs(secret="ci-sp"),
            deployment("gpt", "gpt-5.4", accounts=["west"], deploymentName="token-outage"),
        ],
        namespace,
    )

    async def account_reason() -> str | None:
        found = await box.condition("FoundryAccount", namespace, "west")
        return str(found["reason"]) if found and found["status"] == "False" else None

    assert await box.wait_for(account_reason, 30, what="account not Ready") == "AzureAuthenticationFailed"
    account_ready = await box.condition("FoundryAccount", namespace, "west")
    assert account_ready is not None and "AADSTS7000222" in account_ready["message"], account_ready
    before = outage.hits
    await asyncio.sleep(3.0)
    # Two accounts, each retried after transient_retry_seconds * 4 (doubling) on an authentication failure.
    assert outage.hits - before <= 2 * 2 * ATTEMPTS, outage.hits - before
    gpt = await box.condition("FoundryDeployment", namespace, "gpt")
    assert gpt is not None and gpt["status"] == "False" and "AADSTS7000222" in gpt["message"], gpt
    assert _on(box, "token-outage") == []
    box.azure.faults.clear()
    await box.wait_for(lambda: converged(box, namespace, "gpt"), 40, what="gpt Ready after Entra recovers")
