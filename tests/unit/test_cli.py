"""The CLI exposes every subcommand with help and a version."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from foundry_operator import __version__
from foundry_operator.cli import main


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize("command", ["run", "check", "catalog", "emulator", "demo", "crds"])
def test_every_subcommand_has_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: main " in result.output or "Usage: foundry-operator" in result.output
    assert "--help" in result.output


def test_run_requires_a_namespace_choice() -> None:
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code == 2
    assert "--all-namespaces" in result.output
