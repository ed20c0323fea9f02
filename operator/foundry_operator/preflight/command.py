"""The `check` and `catalog` commands: wire the steps together and decide the exit code.

Exit codes of `check`: 0 every deployment can be placed (warnings allowed), 1 something cannot,
2 the check could not be run (bad input, unreadable snapshot, Azure unreachable or refusing us).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.text import Text

from foundry_operator.azure.arm import AzureGateway
from foundry_operator.metrics import Metrics
from foundry_operator.preflight import render
from foundry_operator.preflight.check import check, offered_queries
from foundry_operator.preflight.gather import gather_offered, gather_world
from foundry_operator.preflight.inventory import take_snapshot
from foundry_operator.preflight.manifests import InputError, ManifestSet, load_manifests
from foundry_operator.preflight.progress import Steps
from foundry_operator.preflight.report import Report
from foundry_operator.preflight.snapshot import CatalogSnapshot, SnapshotError, read_snapshot, write_snapshot
from foundry_operator.preflight.sources import CatalogSource, LiveSource, SnapshotSource, SourceError
from foundry_operator.settings import AzureSettings, OperatorSettings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2
OFFLINE_HINT = "set the AZURE_* variables, or check offline with --catalog FILE (from `foundry-operator catalog --snapshot FILE`)"
READER_HINT = "set the AZURE_* variables for an identity with Reader on the subscription"
AUDIENCE_HINT = (
    "ARM wants tokens for another audience: set AZURE_RESOURCE_MANAGER_AUDIENCE (https://management.azure.com/ "
    "for public Azure and the emulator, whose `--print-env` prints it); it defaults to AZURE_RESOURCE_MANAGER_ENDPOINT"
)
SNAPSHOT_HINT = (
    "--catalog takes a file written by `foundry-operator catalog --snapshot FILE` "
    "(catalog-snapshot.yaml in the repository is one, of the example world)"
)
PATH_HINT = "-f takes an existing file, a folder of *.yaml/*.yml, or - for stdin"
MANIFEST_HINT = "correct the field named above (the CRDs in crds/ are the field reference)"


def _error(err: Console, message: str, hint: str | None = None) -> int:
    # One line each, whatever the source wrote (YAML errors and Azure messages span several).
    err.print(Text.assemble(("error: ", "bold red"), " ".join(message.split())))
    if hint:
        err.print(Text.assemble(("hint: ", "cyan"), hint))
    return EXIT_ERROR


def _azure_hint(message: str, default: str) -> str:
    """The fix for an Azure refusal: the audience setting when that is what ARM complained about."""
    return AUDIENCE_HINT if "InvalidAuthenticationTokenAudience" in message else default


def _quiet_azure_logs() -> None:
    # azure-identity logs every credential of the default chain it tried (a dozen lines) as warnings;
    # the error line below already says authentication failed, and the hint says what to set.
    logging.getLogger("azure").setLevel(logging.ERROR)


async def check_manifests(
    manifests: ManifestSet, source: CatalogSource, steps: Steps, now: datetime, window: timedelta
) -> Report:
    """Gather what the manifests need from the source, then decide (twice when something fails)."""
    world = await gather_world(manifests, source, steps)
    report = check(manifests, world, now, window, source.describe())
    queries = offered_queries(manifests, world, report)
    if queries:  # where else the failing models are offered, for the fix lines; then decide again
        await gather_offered(queries, source, world, steps)
        report = check(manifests, world, now, window, source.describe())
    return report


def _gateway() -> AzureGateway:
    return AzureGateway(AzureSettings(), OperatorSettings(), Metrics())


async def _check_live(manifests: ManifestSet, now: datetime, window: timedelta) -> Report:
    gateway = _gateway()
    try:
        with Steps(enabled=True, console=render.console(stderr=True)) as steps:
            return await check_manifests(manifests, LiveSource(gateway), steps, now, window)
    finally:
        await gateway.close()


def run_check(
    paths: Sequence[str],
    catalog_file: Path | None,
    retirement_window_days: int,
    output: str,
    namespace: str = "default",
) -> int:
    out, err = render.console(), render.console(stderr=True)
    if retirement_window_days < 0:
        return _error(err, "--retirement-window-days must be 0 or more")
    try:
        manifests = load_manifests(paths, sys.stdin, namespace)
    except InputError as exc:
        for problem in exc.problems:
            err.print(Text.assemble(("error: ", "bold red"), str(problem)))
        missing = any(problem.message == "no such file or directory" for problem in exc.problems)
        err.print(Text.assemble(("hint: ", "cyan"), PATH_HINT if missing else MANIFEST_HINT))
        if output != "table":
            render.dump(render.input_errors_dict(exc.problems), output, out)
        return EXIT_ERROR
    now = datetime.now(UTC)
    window = timedelta(days=retirement_window_days)
    try:
        if catalog_file is not None:
            source = SnapshotSource(read_snapshot(catalog_file), catalog_file)
            report = asyncio.run(check_manifests(manifests, source, Steps(enabled=False), now, window))
        else:
            _quiet_azure_logs()
            report = asyncio.run(_check_live(manifests, now, window))
    except SnapshotError as exc:
        return _error(err, str(exc), SNAPSHOT_HINT)
    except SourceError as exc:
        return _error(err, str(exc), _azure_hint(str(exc), OFFLINE_HINT) if catalog_file is None else None)
    render.render_check(report, output, out)
    return report.exit_code


async def _snapshot_live(
    regions: Sequence[str], model_name: str | None, subscription_id: str, now: datetime, with_offered: bool
) -> CatalogSnapshot:
    gateway = _gateway()
    try:
        with Steps(enabled=True, console=render.console(stderr=True)) as steps:
            return await take_snapshot(
                LiveSource(gateway),
                subscription_id,
                regions,
                model_name,
                steps,
                now,
                with_offered=with_offered,
            )
    finally:
        await gateway.close()


def run_catalog(
    regions: Sequence[str],
    model_name: str | None,
    subscription_id: str | None,
    output: str,
    snapshot_file: Path | None,
) -> int:
    out, err = render.console(), render.console(stderr=True)
    if not subscription_id:
        return _error(err, "no subscription: pass --subscription or set AZURE_SUBSCRIPTION_ID")
    now = datetime.now(UTC)
    _quiet_azure_logs()
    try:
        snapshot = asyncio.run(
            _snapshot_live(regions, model_name, subscription_id, now, with_offered=snapshot_file is not None)
        )
    except SourceError as exc:
        return _error(err, str(exc), _azure_hint(str(exc), READER_HINT))
    if snapshot_file is not None:
        try:
            write_snapshot(snapshot_file, snapshot)
        except OSError as exc:
            return _error(
                err,
                f"cannot write {snapshot_file}: {exc.strerror or exc}",
                "pass --snapshot a path in a writable folder",
            )
        offers = sum(len(region.models) for region in snapshot.regions.values())
        err.print(
            f"wrote {snapshot_file}: {len(snapshot.regions)} regions ({', '.join(snapshot.regions)}), "
            f"{offers} model offers, {len(snapshot.accounts)} accounts",
            markup=False,
        )
    render.render_catalog(snapshot, output, out)
    return EXIT_OK
