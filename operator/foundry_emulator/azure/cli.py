"""Command-line entry points: ``run_emulator`` (for the ``foundry-operator emulator`` command) and
``python -m foundry_emulator.azure``."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .scenario import ScenarioError, default_scenario_path, load_scenario
from .server import AzureEmulator


def run_emulator(
    host: str,
    port: int,
    scenario: Path | None,
    state_dir: Path | None,
    tls_hostnames: Sequence[str] = (),
) -> None:
    """Serve until SIGINT or SIGTERM. When ready, print exactly one JSON line to stdout:
    url, ca_file, tenant_id, subscription_id, client_id, client_secret. Port 0 picks a free port.
    Raises ScenarioError for an unusable scenario file."""
    loaded = load_scenario(scenario or default_scenario_path())
    asyncio.run(_serve(AzureEmulator(loaded, state_dir, host, port, tls_hostnames)))


async def _serve(emulator: AzureEmulator) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with emulator:
        print(json.dumps(emulator.connection_info()), flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m foundry_emulator.azure", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--scenario", type=Path, default=None, help="scenario YAML (default: the ADR world)")
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="where the CA and keys live (default: temp)"
    )
    parser.add_argument(
        "--tls-hostname",
        action="append",
        default=[],
        help="extra name for the server certificate (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        run_emulator(args.host, args.port, args.scenario, args.state_dir, args.tls_hostname)
    except ScenarioError as err:
        sys.exit(f"foundry-emulator: invalid scenario:\n{err}")
