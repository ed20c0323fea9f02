"""The figures: each builds its own world, measures one thing, and returns plain data."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import scenario as sc
from bench.baselines import run_baseline
from bench.stats import percentile
from bench.world import OperatorProcess, World, open_azure, open_world, summarize_arm, summarize_kube


@dataclass(frozen=True)
class Config:
    accounts: int = 3
    lro_seconds: float = 1.0
    resync_seconds: float = 10.0
    steady_rounds: int = 2
    reaction_samples: int = 20
    work_dir: Path = Path("bench/.work")

    def operator_settings(self) -> dict[str, str]:
        """The shipped defaults, except the clocks a steady-state round must fit in: the resync
        period and the catalog TTL (so a TTL expiry falls inside the measured window)."""
        return {
            "FOUNDRY_RESYNC_INTERVAL_SECONDS": f"{self.resync_seconds:g}",
            "FOUNDRY_CATALOG_TTL_SECONDS": f"{self.resync_seconds:g}",
            "FOUNDRY_LOG_LEVEL": "info",
        }


async def _start(world: World, config: Config, accounts: int) -> OperatorProcess:
    operator = await world.start_operator(config.operator_settings())
    await world.apply(sc.account_manifests(accounts))
    # Accounts Ready proves the operator is up and logged in to both APIs.
    await world.wait_ready_accounts(accounts, timeout=60)
    return operator


async def convergence(
    config: Config,
    n: int,
    run: int,
    with_steady: bool,
    with_reaction: bool,
    beside: Callable[[], Coroutine[Any, Any, Any]] | None = None,
) -> dict[str, Any]:
    """N new deployments over M accounts: time to all-Ready; then a steady-state window and the
    adoption reaction time in the same world.

    `beside` (the baselines) starts once the operator has converged and runs during the
    steady-state window, which counts requests and the operator's own CPU seconds, neither of
    which another process's work changes; the reaction time is measured after it has finished,
    so that no latency figure shares the machine. Its result is returned under "beside"."""
    planned = sc.plan(n, config.accounts)
    reaction_planned = sc.plan(
        config.reaction_samples if with_reaction else 0, config.accounts, prefix="adopt"
    )
    scenario = sc.build_scenario(
        config.accounts, config.lro_seconds, quota_per_model=(n + len(reaction_planned)) * sc.CAPACITY + 10
    )
    state = config.work_dir / f"convergence-{n}-{run}"
    async with open_world(state, scenario, sc.NAMESPACE) as world:
        operator = await _start(world, config, config.accounts)
        arm0, kube0 = world.azure.log.last_seq, world.kube_mark()
        cpu0 = operator.stats().cpu_seconds
        started = time.monotonic()
        await world.apply(sc.deployment_manifest(item) for item in planned)
        applied = time.monotonic() - started
        bound = sc.lower_bound(planned, config.accounts, config.lro_seconds)
        last = await world.wait_ready([p.object_name for p in planned], timeout=bound * 5 + 120)
        seconds = last - started
        arm_entries = world.arm_since(arm0)
        arm = summarize_arm(arm_entries)
        kube = summarize_kube(world.kube_since(kube0))
        stats = operator.stats()
        # Kept for whoever wants to see the order of requests (the docs' timeline comes from it).
        (state / "arm-log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in arm_entries))
        result: dict[str, Any] = {
            "n": n,
            "accounts": config.accounts,
            "lro_seconds": config.lro_seconds,
            "seconds": round(seconds, 3),
            "apply_seconds": round(applied, 3),
            "lower_bound_seconds": bound,
            "ratio": round(seconds / bound, 4),
            "failed_writes": arm["conflicts_409"],
            "puts": arm["by_kind"].get("PUT deployment 201", 0) + arm["by_kind"].get("PUT deployment 200", 0),
            "arm": arm,
            "kube": kube,
            "operator_cpu_seconds": round(stats.cpu_seconds - cpu0, 3),
            "operator_peak_rss_mib": round(stats.peak_rss_mib, 1),
            "ready_reasons_seen": {f"{k}/{r}": c for (k, r), c in world.readiness.reasons.items()},
            "throttling_visible": world.readiness.throttle_messages + world.warning_events,
            "kubernetes": dict(world.server),
        }
        side = asyncio.create_task(beside()) if beside is not None else None
        try:
            if with_steady:
                result["steady_state"] = await steady_state(world, operator, config)
            if side is not None:
                result["beside"] = await side
        finally:
            if side is not None and not side.done():
                side.cancel()
        if with_reaction:
            await world.wait_quiet(0.5)
            result["reaction"] = await reaction(world, reaction_planned)
        return result


async def steady_state(world: World, operator: OperatorProcess, config: Config) -> dict[str, Any]:
    """Requests and CPU over whole resync rounds once everything is Ready and quiet."""
    await world.wait_quiet(1.0)
    arm0, kube0 = world.azure.log.last_seq, world.kube_mark()
    cpu0 = operator.stats().cpu_seconds
    window = config.resync_seconds * config.steady_rounds
    await asyncio.sleep(window)
    cpu = operator.stats().cpu_seconds - cpu0
    arm = summarize_arm(world.arm_since(arm0))
    kube = summarize_kube(world.kube_since(kube0))
    rounds = config.steady_rounds
    return {
        "window_seconds": window,
        "rounds": rounds,
        "arm_reads": arm["reads"] / rounds,
        "arm_writes": arm["writes"] / rounds,
        "catalog_reads": arm["catalog_reads"] / rounds,
        "deployment_reads": arm["deployment_reads"] / rounds,
        "configmap_writes": kube["configmap_writes"] / rounds,
        "kube_writes": kube["writes"] / rounds,
        "kube_requests": kube["total"] / rounds,
        "cpu_s_per_resync": round(cpu / rounds, 4),
        "arm": arm,
        "kube": kube,
    }


async def reaction(world: World, planned: list[sc.Planned]) -> dict[str, Any]:
    """Apply a FoundryDeployment whose Azure deployment exists; time until its key is in llm-config."""
    samples = []
    await world.watch_config_map()  # before the clock: a watch already open, as a consumer's would be
    for item in planned:
        world.azure.state.drift_create(
            sc.RESOURCE_GROUP,
            sc.account_name(item.account_index),
            item.deployment_name,
            "OpenAI",
            item.model,
            item.version,
            "GlobalStandard",
            sc.CAPACITY,
        )
        key = f"FOUNDRY_DEPLOYMENT_{item.key}"
        started = time.monotonic()
        await world.apply([sc.deployment_manifest(item)])
        await world.wait_config_map_key(key, timeout=30)
        samples.append(time.monotonic() - started)
    ordered = sorted(samples)
    return {
        "samples": [round(s, 4) for s in samples],
        "p50_s": round(percentile(ordered, 50), 4),
        "p95_s": round(percentile(ordered, 95), 4),
    }


async def footprint(config: Config, n: int, with_restart: bool = True) -> dict[str, Any]:
    """N FoundryDeployments whose Azure deployments already exist (adoption, so no hour-long
    convergence), then whole resync rounds: peak RSS and CPU per resync of the operator process;
    then (`with_restart`) the cost of a restart of the operator at N objects."""
    planned = sc.plan(n, config.accounts)
    scenario = sc.build_scenario(
        config.accounts, config.lro_seconds, quota_per_model=n * sc.CAPACITY + 10, existing=planned
    )
    async with open_world(config.work_dir / f"footprint-{n}", scenario, sc.NAMESPACE) as world:
        operator = await _start(world, config, config.accounts)
        # Idle: after start-up (accounts reconciled, no FoundryDeployment yet), once it is quiet.
        await world.wait_quiet(2.0, timeout=30)
        idle = operator.stats()
        arm0, kube0 = world.azure.log.last_seq, world.kube_mark()
        started = time.monotonic()
        await world.apply(sc.deployment_manifest(item) for item in planned)
        last = await world.wait_ready([p.object_name for p in planned], timeout=600)
        adoption = {
            "seconds": round(last - started, 3),
            "arm": summarize_arm(world.arm_since(arm0)),
            "kube": summarize_kube(world.kube_since(kube0)),
        }
        steady = await steady_state(world, operator, config)
        stats = operator.stats()
        restarted = await restart(world, config, operator, n) if with_restart else None
        return {
            "deployments": n,
            "peak_rss_mib": round(stats.peak_rss_mib, 1),
            "rss_mib": round(stats.rss_mib, 1),
            "idle_rss_mib": round(idle.rss_mib, 1),
            "cpu_s_per_resync": steady["cpu_s_per_resync"],
            "adoption": adoption,
            "steady_state": steady,
            "throttling_visible": world.readiness.throttle_messages + world.warning_events,
            "restart": restarted,
        }


# The operator's own count of finished reconciliations of a FoundryDeployment after a change or a
# resume (kopf's resume handler runs the same "apply" reconciliation for every object it finds).
RECONCILED = 'foundry_reconcile_duration_seconds_count{kind="FoundryDeployment"'


def _reconciled_ready(metrics: dict[str, float]) -> int:
    return int(
        sum(
            value
            for name, value in metrics.items()
            if name.startswith(RECONCILED) and 'trigger="apply"' in name and 'outcome="ready"' in name
        )
    )


async def restart(world: World, config: Config, operator: OperatorProcess, n: int) -> dict[str, Any]:
    """SIGKILL the converged operator and start a new one: what it costs to find N objects again.

    Done when the new process has reconciled every FoundryDeployment to Ready once (its resume
    handler: the object read, its Azure deployment checked, its status and llm-config entry
    confirmed), by the process's own counter, read from its metrics endpoint. That criterion
    is the operator's record of having verified each object, not an inference from silence."""
    await world.wait_quiet(1.0)
    await operator.kill()
    arm0, kube0, lost0 = world.azure.log.last_seq, world.kube_mark(), world.readiness.lost
    started = time.monotonic()
    successor = await world.start_operator(config.operator_settings(), name="restarted")
    deadline = started + 600
    while (done := _reconciled_ready(await successor.metrics(world.session))) < n:
        if successor.process.returncode is not None:
            raise RuntimeError(
                f"restart: the new operator exited ({successor.process.returncode}), see {successor.log_path}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"restart: {done} of {n} objects verified after 600 s")
        await asyncio.sleep(0.2)
    seconds = time.monotonic() - started
    successor_stats = successor.stats()  # its peak covers start-up, the initial listing and N resumes
    arm = summarize_arm(world.arm_since(arm0))
    kube = summarize_kube(world.kube_since(kube0))
    return {
        "deployments": n,
        "seconds": round(seconds, 3),
        "criterion": "every FoundryDeployment reconciled to Ready once by the new process "
        "(foundry_reconcile_duration_seconds_count, trigger=apply, outcome=ready)",
        "arm_requests": arm["total"],
        "arm_writes": arm["writes"],
        "arm_throttled_429": arm["throttled_429"],
        "arm_requests_by_kind": arm["by_kind"],
        "configmap_writes": kube["configmap_writes"],
        "kube_writes": kube["writes"],
        "kube_requests_by_kind": kube["by_kind"],
        "objects_not_ready_meanwhile": world.readiness.lost - lost0,
        "peak_rss_mib": round(successor_stats.peak_rss_mib, 1),
    }


async def baselines(config: Config, n: int, run: int, mode: str) -> dict[str, Any]:
    planned = sc.plan(n, config.accounts)
    scenario = sc.build_scenario(config.accounts, config.lro_seconds, quota_per_model=n * sc.CAPACITY + 10)
    state = config.work_dir / f"baseline-{mode}-{n}-{run}"
    async with open_azure(state, scenario) as azure:
        result = await run_baseline(azure, state, planned, mode)
        result["arm"] = summarize_arm([e for e in azure.log.since(0) if e["service"] == "arm"])
        return result
