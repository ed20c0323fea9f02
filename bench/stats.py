"""Medians and spreads of repeated figures, and the machine they ran on."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def summary(values: Sequence[float], digits: int = 4) -> dict[str, Any]:
    """Median, min, max and the relative spread ((max - min) / median) of repeated measurements."""
    clean = [float(v) for v in values if v is not None]
    if not clean:
        return {"median": None, "min": None, "max": None, "spread": None, "n": 0}
    median = statistics.median(clean)
    spread = (max(clean) - min(clean)) / median if median else 0.0
    return {
        "median": round(median, digits),
        "min": round(min(clean), digits),
        "max": round(max(clean), digits),
        "spread": round(spread, 4),
        "n": len(clean),
    }


def median(values: Sequence[float], digits: int = 4) -> float | None:
    result = summary(values, digits)["median"]
    return None if result is None else float(result)


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of sorted samples."""
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return float(ordered[rank - 1])


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict[str, Any]:
    """What the figures ran on: they mean little without it."""
    cpu_model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory_gib = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 2**20, 1)
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu_model": cpu_model or platform.processor(),
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "memory_gib": memory_gib,
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "hostname": platform.node(),
        "loadavg_at_start": loadavg(),
    }
