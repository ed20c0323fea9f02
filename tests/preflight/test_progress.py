"""The progress indicator: on a terminal only, and only when there is more than one step to wait for."""

from __future__ import annotations

import io

from rich.console import Console

from foundry_operator.preflight.progress import Steps


def _run(console: Console, *, enabled: bool = True, steps: int = 3) -> str:
    with Steps(enabled=enabled, console=console) as progress:
        progress.expect(steps, "reading catalogs and quota")
        for region in ("westus", "eastus2", "southcentralus")[:steps]:
            progress.done(f"read {region}")
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def test_shown_on_a_terminal() -> None:
    output = _run(Console(file=io.StringIO(), force_terminal=True, width=100))
    assert "reading catalogs and quota" in output or "read " in output


def test_never_in_a_pipe_or_ci_log() -> None:
    assert _run(Console(file=io.StringIO(), force_terminal=False)) == ""


def test_not_for_a_single_step_or_when_disabled() -> None:
    assert _run(Console(file=io.StringIO(), force_terminal=True), steps=1) == ""
    assert _run(Console(file=io.StringIO(), force_terminal=True), enabled=False) == ""
