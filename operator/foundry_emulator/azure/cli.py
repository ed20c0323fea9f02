"""Command-line entry points: ``run_emulator`` (for the ``foundry-operator emulator`` command) and
``python -m foundry_emulator.azure``."""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .scenario import ScenarioError, default_scenario_path, load_scenario
from .server import AzureEmulator

# The emulator plays public Azure: its tokens are for management.azure.com, not for its own URL
# (which is what AZURE_RESOURCE_MANAGER_AUDIENCE defaults to when only the endpoint is set).
EMULATOR_AUDIENCE = "https://management.azure.com/"


def export_lines(info: Mapping[str, str]) -> list[str]:
    """Shell `export` lines that point the operator, `check` and `catalog` at a running emulator."""
    values = {
        "AZURE_TENANT_ID": info["tenant_id"],
        "AZURE_CLIENT_ID": info["client_id"],
        "AZURE_CLIENT_SECRET": info["client_secret"],
        "AZURE_SUBSCRIPTION_ID": info["subscription_id"],
        "AZURE_AUTHORITY_HOST": info["url"],
        "AZURE_RESOURCE_MANAGER_ENDPOINT": info["url"],
        "AZURE_RESOURCE_MANAGER_AUDIENCE": EMULATOR_AUDIENCE,
        # aiohttp (the operator's async clients) reads SSL_CERT_FILE, requests reads REQUESTS_CA_BUNDLE.
        "SSL_CERT_FILE": info["ca_file"],
        "REQUESTS_CA_BUNDLE": info["ca_file"],
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def run_emulator(
    host: str,
    port: int,
    scenario: Path | None,
    state_dir: Path | None,
    tls_hostnames: Sequence[str] = (),
    print_env: bool = False,
) -> None:
    """Serve until SIGINT or SIGTERM. When ready, print exactly one JSON line to stdout:
    url, ca_file, tenant_id, subscription_id, client_id, client_secret; or, with print_env, the
    shell `export` lines of `export_lines`. Port 0 picks a free port.
    Raises ScenarioError for an unusable scenario file, OSError when it cannot listen or write
    its state directory."""
    loaded = load_scenario(scenario or default_scenario_path())
    asyncio.run(_serve(AzureEmulator(loaded, state_dir, host, port, tls_hostnames), print_env))


async def _serve(emulator: AzureEmulator, print_env: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with emulator:
        info = emulator.connection_info()
        print("\n".join(export_lines(info)) if print_env else json.dumps(info), flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m foundry_emulator.azure", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--scenario", type=Path, default=None, help="scenario YAML (default: the example world)"
    )
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="where the CA and keys live (default: temp)"
    )
    parser.add_argument(
        "--tls-hostname",
        action="append",
        default=[],
        help="extra name for the server certificate (repeatable)",
    )
    parser.add_argument(
        "--print-env",
        action="store_true",
        help="print shell export lines (AZURE_*, SSL_CERT_FILE, ...) instead of the JSON line",
    )
    args = parser.parse_args(argv)
    try:
        run_emulator(args.host, args.port, args.scenario, args.state_dir, args.tls_hostname, args.print_env)
    except ScenarioError as err:
        sys.exit(f"foundry-emulator: invalid scenario:\n{err}")
    except OSError as err:
        sys.exit(f"foundry-emulator: {startup_problem(err, args.host, args.port, args.state_dir)}")


def startup_problem(err: OSError, host: str, port: int, state_dir: Path | None) -> str:
    """One line for an OSError at start: the address is taken, or the state directory is unusable."""
    if err.filename is not None:
        where = state_dir or "the temporary folder"
        return f"cannot write the state directory ({err.filename}: {err.strerror}); pass a writable --state-dir (now: {where})"
    return f"cannot listen on {host}:{port}: {err.strerror or err}; pick another --port (0 picks a free one)"
