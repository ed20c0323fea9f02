"""`foundry-operator demo`: the operator's main job on the embedded default world.

Starts the Azure emulator (the ADR's scenario) and an in-process Kubernetes API, runs the
operator, applies examples/, waits for convergence, and prints llm-config and the statuses.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from foundry_operator.azure.arm import classify_operation

NAMESPACE = "aucert"
DEFAULT_EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _ready(obj: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c.get("type") == "Ready"), None)


def _settled(objects: list[dict[str, Any]]) -> bool:
    """Every object is Ready, or stalled with a reason (which the table will show)."""
    for obj in objects:
        ready = _ready(obj)
        stalled = any(
            c.get("type") == "Stalled" and c.get("status") == "True"
            for c in obj.get("status", {}).get("conditions", [])
        )
        if not (ready and ready.get("status") == "True") and not stalled:
            return False
    return bool(objects)


async def _demo(examples: Path, timeout: float, console: Console) -> int:
    from foundry_emulator.sandbox import load_documents, sandbox

    documents = load_documents([examples])
    with tempfile.TemporaryDirectory(prefix="foundry-demo-") as state:
        async with sandbox(Path(state)) as box:
            console.print(f"[bold]Azure emulator[/] {box.azure.url}   [bold]Kubernetes API[/] {box.kube.url}")
            await box.start_operator()
            started = time.monotonic()
            await box.apply(documents, NAMESPACE)
            kinds = Counter(doc["kind"] for doc in documents)
            console.print(f"applied {dict(kinds)} from {examples} into namespace {NAMESPACE}")

            async def converged() -> list[dict[str, Any]] | None:
                objects = await box.list("FoundryDeployment", NAMESPACE)
                return objects if _settled(objects) else None

            try:
                deployments = await box.wait_for(converged, timeout, interval=0.25, what="convergence")
            except TimeoutError:
                deployments = await box.list("FoundryDeployment", NAMESPACE)
                console.print(f"[red]not converged after {timeout:.0f}s[/]")
            elapsed = time.monotonic() - started
            config = await box.config_map(NAMESPACE) or {}
            accounts = await box.list("FoundryAccount", NAMESPACE)
            log = box.azure.log.since(0)
            _print(console, config, accounts, deployments, elapsed, log)
            all_ready = all((_ready(obj) or {}).get("status") == "True" for obj in deployments)
            return 0 if all_ready and deployments else 1


def _print(
    console: Console,
    config: dict[str, str],
    accounts: list[dict[str, Any]],
    deployments: list[dict[str, Any]],
    elapsed: float,
    log: list[Any],
) -> None:
    console.rule(f"ConfigMap {NAMESPACE}/llm-config")
    for key in sorted(k for k in config if k != "models.json"):
        console.print(f"{key}={config[key]}", highlight=False)
    if "models.json" in config:
        console.print(f"models.json: {len(config['models.json'])} bytes", highlight=False)

    table = Table(title="FoundryAccounts", title_justify="left")
    for column in ("NAME", "READY", "ACCOUNT", "REGION", "KIND"):
        table.add_column(column)
    for obj in accounts:
        ready = _ready(obj) or {}
        status = obj.get("status", {})
        table.add_row(
            obj["metadata"]["name"],
            ready.get("status", "-"),
            obj["spec"]["accountName"],
            status.get("location", "-"),
            status.get("kind", "-"),
        )
    console.print(table)

    table = Table(title=f"FoundryDeployments (converged in {elapsed:.1f}s)", title_justify="left")
    for column in ("NAME", "READY", "ACCOUNT", "REGION", "MODEL", "VERSION", "KEYS", "TRUE CONDITIONS"):
        table.add_column(column, overflow="fold")
    for obj in sorted(deployments, key=lambda o: o["metadata"]["name"]):
        status = obj.get("status", {})
        ready = _ready(obj) or {}
        conditions = " ".join(c["type"] for c in status.get("conditions", []) if c["status"] == "True")
        table.add_row(
            obj["metadata"]["name"],
            ready.get("status", "-"),
            status.get("account", "-"),
            status.get("region", "-"),
            obj["spec"]["model"]["name"],
            status.get("modelVersion", "-"),
            ",".join(status.get("publishedKeys", [])),
            conditions,
        )
    console.print(table)
    for obj in deployments:
        ready = _ready(obj) or {}
        if ready.get("status") != "True":
            console.print(
                f"[yellow]{obj['metadata']['name']}[/]: {ready.get('reason')}: {ready.get('message')}"
            )
    arm = [entry for entry in log if entry["service"] == "arm"]
    if arm:
        counts = Counter(
            f"{entry['method']:6} {classify_operation(entry['path']):26} {entry['status']}" for entry in arm
        )
        console.rule(f"{len(arm)} ARM requests made by the operator (method, operation, status)")
        for kind, count in sorted(counts.items()):
            console.print(f"{count:4d}  {kind}", highlight=False)
    tokens = [entry for entry in log if entry["service"] == "entra"]
    console.print(f"{len(tokens)} Entra ID token requests", highlight=False)


def run_demo(examples: Path | None, timeout: float) -> int:
    logging.basicConfig(level=logging.WARNING)
    # Waiting for accounts is reported by kopf as a temporary handler failure; the table tells the story.
    logging.getLogger("kopf").setLevel(logging.CRITICAL)
    console = Console(width=None if sys.stdout.isatty() else 150)
    return asyncio.run(_demo(examples or DEFAULT_EXAMPLES, timeout, console))
