"""`make bench`: how well the operator does its job, and how the cost grows with the work.

Runs on a real Kubernetes API server (kube-apiserver + etcd, started for each figure), the Azure
emulator in this process and the operator as its own process; writes bench/results.json and
prints a short table. Method and results:
docs/benchmark.md.

    python -m bench                                  # the default: 60 deployments, 3 accounts, T=1 s
    python -m bench --sizes 60,300,1000              # convergence at more sizes (longer)
    python -m bench --throttling                     # 1,000 creations under ARM's real limits
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import math
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import figures
from bench.figures import Config
from bench.stats import loadavg, machine, median, percentile, summary

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results.json"


def _sizes(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers, e.g. 60,300,1000")
    return values


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[60],
        help="convergence sizes N; the first one is the headline figure (default: 60)",
    )
    parser.add_argument("--accounts", type=int, default=3, help="Azure accounts, one per region (default: 3)")
    parser.add_argument(
        "--lro-seconds", type=float, default=1.0, help="duration of each long-running operation (default: 1)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each figure at the first size (default: 3)"
    )
    parser.add_argument(
        "--large-repeats", type=int, default=1, help="runs of each figure at the other sizes (default: 1)"
    )
    parser.add_argument(
        "--baseline-max-n",
        type=int,
        default=300,
        help="run the baselines only up to this N (the serial one takes N x T; default: 300)",
    )
    parser.add_argument(
        "--footprint-sizes",
        type=_sizes,
        default=[60, 1000],
        help="N for the footprint figure (adopted deployments; default: 60,1000; add 300 for a third point)",
    )
    parser.add_argument(
        "--throttling",
        action="store_true",
        help="also converge 1,000 new deployments under ARM's real limits (about 6 minutes at T=1 s)",
    )
    parser.add_argument("--throttling-n", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-restart",
        action="store_true",
        help="skip the restart figure (SIGKILL the operator after each footprint run, time the new one)",
    )
    parser.add_argument(
        "--resync-seconds",
        type=float,
        default=10.0,
        help="operator resync period and catalog TTL during the bench (default: 10)",
    )
    parser.add_argument(
        "--reaction-samples", type=int, default=20, help="adoptions timed per run (default: 20)"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="results file (default: bench/results.json)"
    )
    parser.add_argument("--work-dir", type=Path, default=BENCH_DIR / ".work", help="emulator state and logs")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (operator logs, ARM logs)"
    )
    return parser.parse_args(argv)


# -- orchestration ---------------------------------------------------------------------------------


def operator_source() -> dict[str, str]:
    """Which operator sources the operator process runs (see bench.world.operator_source_root), and
    their git commit, with "+changes" when the working tree differs from it."""
    from bench.world import operator_source_root

    root = operator_source_root()
    found: dict[str, str] = {"path": root}
    try:
        commit = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return found
    found["commit"] = commit + ("+changes" if dirty else "")
    return found


def _log(message: str) -> None:
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


async def _baselines(config: Config, n: int, run: int) -> dict[str, dict[str, Any]]:
    """Every baseline at once, each against its own emulator: each is bound by its long-running
    operations, not by CPU, so running them side by side only saves wall time."""
    modes = ("parallel", "serial", "per_account_lock", "two_pipelines")
    results = await asyncio.gather(*(figures.baselines(config, n, run, mode) for mode in modes))
    return dict(zip(modes, results, strict=True))


def _convergence_summary(
    runs: list[dict[str, Any]], baselines: list[dict[str, dict[str, Any]]]
) -> dict[str, Any]:
    first = runs[0]
    result: dict[str, Any] = {
        "n": first["n"],
        "accounts": first["accounts"],
        "lro_seconds": first["lro_seconds"],
        "seconds": median([r["seconds"] for r in runs]),
        "lower_bound_seconds": first["lower_bound_seconds"],
        "ratio": median([r["ratio"] for r in runs]),
        "failed_writes": max(r["failed_writes"] for r in runs),
        "throttled_429": max(r["arm"]["throttled_429"] for r in runs),
        "writes": median([r["arm"]["writes"] for r in runs]),
        "spread": {
            "seconds": summary([r["seconds"] for r in runs]),
            "ratio": summary([r["ratio"] for r in runs]),
        },
        "runs": len(runs),
    }
    if baselines:
        # "Never slower": run by run, against the faster baseline of the same repeat.
        result["runs_slower_than_a_baseline"] = sum(
            1
            for run, pair in zip(runs, baselines, strict=True)
            if run["seconds"] > min(pair["parallel"]["seconds"], pair["serial"]["seconds"])
        )
        parallel = [b["parallel"] for b in baselines]
        serial = [b["serial"] for b in baselines]
        result["baseline_parallel"] = {
            "seconds": median([b["seconds"] for b in parallel]),
            "failed_writes": median([b["failed_writes"] for b in parallel]),
            "failed_writes_throttled": median([b.get("throttled_writes", 0) for b in parallel]),
            "throttled_429": median([b["arm"]["throttled_429"] for b in parallel]),
            "spread": {
                "seconds": summary([b["seconds"] for b in parallel]),
                "failed_writes": summary([b["failed_writes"] for b in parallel]),
            },
        }
        result["baseline_serial"] = {
            "seconds": median([b["seconds"] for b in serial]),
            "failed_writes": median([b["failed_writes"] for b in serial]),
            "spread": {"seconds": summary([b["seconds"] for b in serial])},
        }
        for mode in ("per_account_lock", "two_pipelines"):
            chosen = [b[mode] for b in baselines if mode in b]
            if chosen:
                result[f"baseline_{mode}"] = {
                    "seconds": median([b["seconds"] for b in chosen]),
                    "failed_writes": median([b["failed_writes"] for b in chosen]),
                    "spread": {
                        "seconds": summary([b["seconds"] for b in chosen]),
                        "failed_writes": summary([b["failed_writes"] for b in chosen]),
                    },
                }
    else:
        result["baseline_parallel"] = result["baseline_serial"] = {
            "skipped": f"N > --baseline-max-n; the serial baseline needs at least N x T = "
            f"{first['n'] * first['lro_seconds']:.0f} s"
        }
    return result


def _steady_summary(runs: list[dict[str, Any]], config: Config) -> dict[str, Any]:
    steady = [r["steady_state"] for r in runs]
    keys = ("arm_reads", "arm_writes", "catalog_reads", "deployment_reads", "configmap_writes", "kube_writes")
    result: dict[str, Any] = {key: median([s[key] for s in steady]) for key in keys}
    result.update(
        {
            "per": "resync round",
            "resync_seconds": config.resync_seconds,
            "catalog_ttl_seconds": config.resync_seconds,
            "regions": config.accounts,
            "accounts": config.accounts,
            "per_object_deployment_gets": median(
                [s["arm"]["by_kind"].get("GET deployment 200", 0) / s["rounds"] for s in steady]
            ),
            "cpu_s_per_resync": median([s["cpu_s_per_resync"] for s in steady]),
            "spread": {key: summary([s[key] for s in steady]) for key in (*keys, "cpu_s_per_resync")},
            "requests_by_kind": steady[len(steady) // 2]["arm"]["by_kind"],
            "kube_requests_by_kind": steady[len(steady) // 2]["kube"]["by_kind"],
        }
    )
    return result


def _reaction_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    samples = sorted(s for r in runs for s in r["reaction"]["samples"])
    return {
        "p50_s": round(percentile(samples, 50), 4),
        "p95_s": round(percentile(samples, 95), 4),
        "max_s": round(samples[-1], 4) if samples else None,
        "samples": len(samples),
        "spread": {
            "p50_s": summary([r["reaction"]["p50_s"] for r in runs]),
            "p95_s": summary([r["reaction"]["p95_s"] for r in runs]),
        },
    }


def _growth_exponent(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of log(cost) over log(N): 1 is linear, below 1 is better than linear."""
    usable = [(math.log(n), math.log(cost)) for n, cost in points if n > 0 and cost > 0]
    if len(usable) < 2:
        return None
    mean_x = sum(x for x, _ in usable) / len(usable)
    mean_y = sum(y for _, y in usable) / len(usable)
    var = sum((x - mean_x) ** 2 for x, _ in usable)
    if var == 0:
        return None
    return round(sum((x - mean_x) * (y - mean_y) for x, y in usable) / var, 3)


def _footprint_summary(by_size: list[dict[str, Any]]) -> dict[str, Any]:
    largest = max(by_size, key=lambda f: f["deployments"])
    return {
        "deployments": largest["deployments"],
        "peak_rss_mib": largest["peak_rss_mib"],
        "idle_rss_mib": largest["idle_rss_mib"],
        "cpu_s_per_resync": largest["cpu_s_per_resync"],
        "cpu_growth_exponent": _growth_exponent([(f["deployments"], f["cpu_s_per_resync"]) for f in by_size]),
        "rss_growth_mib_per_1000": _rss_slope(by_size),
        "by_size": [
            {
                "deployments": f["deployments"],
                "peak_rss_mib": f["peak_rss_mib"],
                "idle_rss_mib": f["idle_rss_mib"],
                "cpu_s_per_resync": f["cpu_s_per_resync"],
                "adoption_seconds": f["adoption"]["seconds"],
                "adoption_throttled_429": f["adoption"]["arm"]["throttled_429"],
                "steady_arm_reads": f["steady_state"]["arm_reads"],
                "steady_arm_writes": f["steady_state"]["arm_writes"],
                "steady_configmap_writes": f["steady_state"]["configmap_writes"],
                "throttling_visible": f["throttling_visible"],
            }
            for f in sorted(by_size, key=lambda f: f["deployments"])
        ],
    }


def _rss_slope(by_size: list[dict[str, Any]]) -> float | None:
    points = sorted((f["deployments"], f["peak_rss_mib"]) for f in by_size)
    if len(points) < 2 or points[-1][0] == points[0][0]:
        return None
    (n0, r0), (n1, r1) = points[0], points[-1]
    return round((r1 - r0) / (n1 - n0) * 1000, 1)


def _throttling(n: int, run: dict[str, Any]) -> dict[str, Any]:
    """Did a 429 reach anything a user sees: a condition of a FoundryDeployment, or an Event?"""
    return {
        "deployments": n,
        "converged": True,
        "seconds": run["seconds"],
        "lower_bound_seconds": run["lower_bound_seconds"],
        "ratio": run["ratio"],
        "failed_writes": run["failed_writes"],
        "throttled_429_seen_by_operator": run["arm"]["throttled_429"],
        "arm_requests": run["arm"]["total"],
        "requests_by_kind": run["arm"]["by_kind"],
        "visible": run["throttling_visible"],
        "not_ready_reasons_seen": run["ready_reasons_seen"],
    }


def _targets(results: dict[str, Any]) -> dict[str, Any]:
    conv = results["convergence"]
    checks: dict[str, Any] = {}
    # Issue 15's target: at most 1.03x the busiest account's serial sum.
    checks["convergence_ratio_le_1.03"] = conv["ratio"] is not None and conv["ratio"] <= 1.03
    checks["zero_failed_writes"] = conv["failed_writes"] == 0
    parallel, serial = conv["baseline_parallel"], conv["baseline_serial"]
    if "seconds" in parallel and "seconds" in serial:
        checks["never_slower_than_a_baseline"] = conv["runs_slower_than_a_baseline"] == 0
    steady = results["steady_state"]
    checks["steady_zero_arm_writes"] = steady["arm_writes"] == 0
    checks["steady_zero_configmap_writes"] = steady["configmap_writes"] == 0
    checks["steady_catalog_reads_le_regions_per_ttl"] = steady["catalog_reads"] <= steady["regions"]
    checks["steady_no_per_object_reads"] = steady["per_object_deployment_gets"] == 0
    checks["reaction_p95_le_1s"] = results["reaction"]["p95_s"] <= 1.0
    footprint = results.get("footprint") or {}
    if footprint.get("deployments", 0) >= 1000:
        # Issue 15's memory targets.
        checks["footprint_peak_rss_le_128mib_at_1000"] = footprint["peak_rss_mib"] <= 128
    if "idle_rss_mib" in footprint:
        checks["footprint_idle_rss_le_90mib"] = footprint["idle_rss_mib"] <= 90
    exponent = footprint.get("cpu_growth_exponent")
    if exponent is not None:
        # A little slack for noise: 1.1 is still "linear" on a measurement of a few seconds.
        checks["cpu_per_resync_linear_or_better"] = exponent <= 1.1
    throttling = results.get("throttling") or {}
    if "converged" in throttling:
        checks["throttling_no_visible_429_at_1000"] = throttling["converged"] and not throttling["visible"]
    return checks


async def run(args: argparse.Namespace) -> dict[str, Any]:
    # SIGTERM (a timeout, CI) cancels the run like Ctrl-C does, so that every world's operator
    # process and control plane is stopped on the way out instead of left running.
    main_task = asyncio.current_task()
    if main_task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    config = Config(
        accounts=args.accounts,
        lro_seconds=args.lro_seconds,
        resync_seconds=args.resync_seconds,
        reaction_samples=args.reaction_samples,
        work_dir=args.work_dir,
    )
    started = time.monotonic()
    results: dict[str, Any] = {
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {
            "sizes": args.sizes,
            "accounts": args.accounts,
            "lro_seconds": args.lro_seconds,
            "repeats": args.repeats,
            "large_repeats": args.large_repeats,
            "resync_seconds": args.resync_seconds,
            "reaction_samples": args.reaction_samples,
            "baseline_max_n": args.baseline_max_n,
            "footprint_sizes": args.footprint_sizes,
            "throttling": args.throttling,
            "operator": "foundry-operator run --all-namespaces --standalone (its own process)",
            "operator_source": operator_source(),
            "emulator_poll_seconds": 0.2,
            "arm_throttling": "enabled, ARM's published limits (the emulator's defaults)",
        },
    }
    by_size: list[dict[str, Any]] = []
    headline_runs: list[dict[str, Any]] = []
    for index, n in enumerate(args.sizes):
        headline = index == 0
        repeats = args.repeats if headline else args.large_repeats
        runs, baseline_runs = [], []
        for run_index in range(repeats):
            _log(f"convergence N={n} run {run_index + 1}/{repeats}")
            with_baselines = n <= args.baseline_max_n

            async def baselines(n: int = n, run_index: int = run_index) -> dict[str, dict[str, Any]]:
                return await _baselines(config, n, run_index)

            result = await figures.convergence(
                config,
                n,
                run_index,
                with_steady=headline,
                with_reaction=headline,
                beside=baselines if with_baselines else None,
            )
            # Which API server the figures were measured on: the same build for every world.
            results.setdefault("kubernetes", result.pop("kubernetes"))
            _log(
                f"  operator {result['seconds']:.2f}s (lower bound {result['lower_bound_seconds']:.0f}s, "
                f"ratio {result['ratio']:.3f}), failed writes {result['failed_writes']}"
            )
            runs.append(result)
            if with_baselines:
                pair = result.pop("beside")
                _log(
                    f"  baselines: parallel {pair['parallel']['seconds']:.2f}s "
                    f"({pair['parallel']['failed_writes']} failed writes), serial {pair['serial']['seconds']:.2f}s"
                )
                baseline_runs.append(pair)
        summary_n = _convergence_summary(runs, baseline_runs)
        summary_n["throttling_source"] = runs[-1]
        summary_n["initial_requests_by_kind"] = runs[len(runs) // 2]["arm"]["by_kind"]
        summary_n["initial_kube_requests_by_kind"] = runs[len(runs) // 2]["kube"]["by_kind"]
        by_size.append(summary_n)
        if headline:
            headline_runs = runs
    results["convergence"] = by_size[0]
    results["convergence_by_size"] = by_size
    results["azure_calls"] = {
        "initial_convergence": by_size[0]["initial_requests_by_kind"],
        "steady_state_per_resync": None,  # filled below
    }
    results["steady_state"] = _steady_summary(headline_runs, config)
    results["azure_calls"]["steady_state_per_resync"] = {
        kind: count / 2 for kind, count in results["steady_state"]["requests_by_kind"].items()
    }
    results["reaction"] = _reaction_summary(headline_runs)

    footprints = []
    for n in args.footprint_sizes:
        _log(f"footprint N={n} (adopted deployments, then {config.steady_rounds} resync rounds)")
        footprint = await figures.footprint(config, n, with_restart=not args.no_restart)
        _log(
            f"  peak RSS {footprint['peak_rss_mib']:.1f} MiB (idle {footprint['idle_rss_mib']:.1f} MiB), "
            f"CPU {footprint['cpu_s_per_resync']:.3f} s/resync"
        )
        if footprint["restart"]:
            restart = footprint["restart"]
            _log(
                f"  restart: {restart['deployments']} objects verified in {restart['seconds']:.2f}s, "
                f"{restart['arm_requests']} ARM requests ({restart['arm_writes']} writes), "
                f"{restart['configmap_writes']} ConfigMap writes, {restart['kube_writes']} Kubernetes writes, "
                f"peak RSS {restart['peak_rss_mib']} MiB"
            )
        footprints.append(footprint)
    results["footprint"] = (
        _footprint_summary(footprints) if footprints else {"skipped": "--footprint-sizes empty"}
    )
    restarts = [f["restart"] for f in footprints if f["restart"]]
    results["restart"] = (
        {**max(restarts, key=lambda r: r["deployments"]), "by_size": restarts}
        if restarts
        else {"skipped": "--no-restart or no footprint size"}
    )

    if args.throttling:
        n = args.throttling_n
        reuse = next((s for s in by_size if s["n"] == n), None)
        if reuse is None:
            _log(f"throttling: N={n} new deployments under ARM's limits")
            try:
                result = await figures.convergence(config, n, 0, with_steady=False, with_reaction=False)
            except TimeoutError as exc:
                results["throttling"] = {"deployments": n, "converged": False, "visible": [str(exc)]}
            else:
                results["throttling"] = _throttling(n, result)
        else:
            results["throttling"] = _throttling(n, reuse["throttling_source"])
    else:
        results["throttling"] = {"skipped": "run `python -m bench --throttling` (about 6 minutes at T=1 s)"}

    for entry in by_size:
        entry.pop("throttling_source", None)  # a whole run: only the throttling figure needed it
    results["targets"] = _targets(results)
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    results["machine"]["loadavg_at_end"] = loadavg()
    return results


# -- output ------------------------------------------------------------------------------------------


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer() and not unit:
        return f"{int(value)}"  # counts: 9 reads, not 9.000
    if isinstance(value, float):
        return f"{value:.3f}{unit}" if abs(value) < 10 else f"{value:.1f}{unit}"
    return f"{value}{unit}"


def _range(spread: dict[str, Any] | None, unit: str = "") -> str:
    if not spread or spread.get("min") is None:
        return ""
    return f"  [{_fmt(spread['min'], unit)} .. {_fmt(spread['max'], unit)}, n={spread['n']}]"


def table(results: dict[str, Any]) -> str:
    conv, steady, reaction = results["convergence"], results["steady_state"], results["reaction"]
    footprint, throttling, targets = results["footprint"], results["throttling"], results["targets"]
    rows: list[tuple[str, str, str]] = []
    rows.append(
        (
            f"convergence N={conv['n']} M={conv['accounts']} T={conv['lro_seconds']:g}s",
            f"{_fmt(conv['seconds'], 's')}{_range(conv['spread']['seconds'], 's')}",
            f"ratio {_fmt(conv['ratio'])} to lower bound {conv['lower_bound_seconds']:g}s; "
            f"{conv['failed_writes']} failed writes",
        )
    )
    parallel, serial = conv["baseline_parallel"], conv["baseline_serial"]
    if "seconds" in parallel:
        rows.append(
            (
                "  baseline: parallel + retry on 409",
                f"{_fmt(parallel['seconds'], 's')}{_range(parallel['spread']['seconds'], 's')}",
                f"{_fmt(parallel['failed_writes'])} failed writes",
            )
        )
        rows.append(
            (
                "  baseline: strictly serial",
                f"{_fmt(serial['seconds'], 's')}{_range(serial['spread']['seconds'], 's')}",
                "",
            )
        )
        for mode, label in (
            ("per_account_lock", "  baseline: a lock per account (terraform-provider-azurerm)"),
            ("two_pipelines", "  baseline: two pipelines, a lock per account each"),
        ):
            other = conv.get(f"baseline_{mode}")
            if other:
                rows.append(
                    (
                        label,
                        f"{_fmt(other['seconds'], 's')}{_range(other['spread']['seconds'], 's')}",
                        f"{_fmt(other['failed_writes'])} failed writes",
                    )
                )
    for other in results["convergence_by_size"][1:]:
        rows.append(
            (
                f"convergence N={other['n']}",
                _fmt(other["seconds"], "s"),
                f"ratio {_fmt(other['ratio'])}; {other['failed_writes']} failed writes; "
                f"parallel {_fmt(other['baseline_parallel'].get('seconds'), 's')}, "
                f"serial {_fmt(other['baseline_serial'].get('seconds'), 's')}",
            )
        )
    rows.append(
        (
            "steady state, per resync",
            f"{_fmt(steady['arm_reads'])} ARM reads",
            f"{_fmt(steady['arm_writes'])} writes, {_fmt(steady['catalog_reads'])} catalog reads "
            f"({steady['regions']} regions), {_fmt(steady['deployment_reads'])} deployment reads "
            f"({steady['accounts']} accounts), {_fmt(steady['configmap_writes'])} ConfigMap writes",
        )
    )
    rows.append(
        (
            "reaction (adoption -> llm-config)",
            f"p50 {_fmt(reaction['p50_s'], 's')}",
            f"p95 {_fmt(reaction['p95_s'], 's')}, max {_fmt(reaction['max_s'], 's')}, {reaction['samples']} samples",
        )
    )
    if "peak_rss_mib" in footprint:
        sizes = ", ".join(
            f"{f['deployments']}: {f['peak_rss_mib']:.0f} MiB / {f['cpu_s_per_resync']:.2f} s"
            for f in footprint["by_size"]
        )
        rows.append(
            (
                f"footprint N={footprint['deployments']}",
                f"peak RSS {_fmt(footprint['peak_rss_mib'], ' MiB')}",
                f"CPU {_fmt(footprint['cpu_s_per_resync'], ' s')}/resync; growth exponent "
                f"{_fmt(footprint['cpu_growth_exponent'])} ({sizes})",
            )
        )
    restart = results.get("restart") or {}
    if "seconds" in restart:
        sizes = ", ".join(f"{r['deployments']}: {r['seconds']:.1f} s" for r in restart["by_size"])
        rows.append(
            (
                f"restart after SIGKILL, N={restart['deployments']}",
                f"{_fmt(restart['seconds'], 's')}",
                f"{restart['arm_requests']} ARM requests, {restart['arm_writes']} ARM writes, "
                f"{restart['configmap_writes']} ConfigMap writes ({sizes})",
            )
        )
    if "deployments" in throttling:
        rows.append(
            (
                f"ARM throttling N={throttling['deployments']}",
                f"{len(throttling['visible'])} visible 429s",
                f"converged in {_fmt(throttling['seconds'], 's')} (ratio {_fmt(throttling['ratio'])}); "
                f"{throttling['throttled_429_seen_by_operator']} 429s absorbed by pacing/retry",
            )
        )
    else:
        rows.append(("ARM throttling N=1000", "skipped", throttling.get("skipped", "")))
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"{a:<{width[0]}}  {b:<{width[1]}}  {c}".rstrip() for a, b, c in rows]
    met = [name for name, ok in targets.items() if ok]
    missed = [name for name, ok in targets.items() if not ok]
    lines.append("")
    lines.append(
        f"targets met: {len(met)}/{len(targets)}" + (f"; not met: {', '.join(missed)}" if missed else "")
    )
    m = results["machine"]
    lines.append(
        f"machine: {m['cpu_model']}, {m['cpus_usable']} CPUs, {m['memory_gib']} GiB, {m['os']}, Python "
        f"{m['python']}; load {m['loadavg_at_start']} -> {m.get('loadavg_at_end')}; wall {results['wall_seconds']:.0f}s"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # The emulators log every request at INFO; the bench reads their request logs instead.
    logging.basicConfig(level=logging.WARNING)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    try:
        results = asyncio.run(run(args))
    finally:
        if not args.keep:
            shutil.rmtree(args.work_dir, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    print(table(results))
    print(f"\nresults: {args.out}")
