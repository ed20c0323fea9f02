"""The `foundry-operator ...` commands of the README and the docs run as written on a fresh clone.

Every such command in a code block must parse (a real subcommand, real options); the offline ones
(`check` against the committed catalog snapshot, `crds`) are run from the repository root and must
succeed. The committed snapshot is kept equal to what `catalog --snapshot` writes for the
emulator's default scenario.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml
from chart_support import REPO_ROOT
from click.testing import CliRunner

from foundry_operator.cli import main

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
SNAPSHOT = REPO_ROOT / "catalog-snapshot.yaml"
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, argv after `foundry-operator`) for every command line in a code block."""
    found = []
    for path in DOCS:
        for block in FENCE.findall(path.read_text()):
            text = re.sub(r"\\\n\s*", " ", block)  # join continued lines
            for line in text.splitlines():
                line = line.strip().removeprefix("$ ")
                if "foundry-operator " not in line or line.startswith(("#", "-", "|")):
                    continue
                # The command itself: after a pipe, before a comment or a redirection.
                command = line[line.index("foundry-operator ") :]
                if line[: line.index("foundry-operator ")].strip() not in ("", "|") and not re.search(
                    r"(\||&&|;|run:|script:|inlineScript:)\s*$", line[: line.index("foundry-operator ")]
                ):
                    continue  # prose or another tool's argument (an image name, a pip spec)
                command = re.split(r"\s(?:#|>|2>|&$|&&|;)", command)[0]
                argv = shlex.split(command)[1:]
                if argv:
                    found.append((f"{path.relative_to(REPO_ROOT)}: {command}", argv))
    return found


COMMANDS = documented_commands()


def test_the_docs_show_the_offline_check_on_the_examples() -> None:
    offline = [argv for _, argv in COMMANDS if argv[:1] == ["check"] and "catalog-snapshot.yaml" in argv]
    assert ["check", "-f", "examples/", "--catalog", "catalog-snapshot.yaml"] in offline
    assert any(argv[:1] == ["emulator"] and "--print-env" in argv for _, argv in COMMANDS)


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_documented_command_parses(where: str, argv: list[str]) -> None:
    """A real subcommand with real options (the parse click does before running anything)."""
    name, *rest = argv
    command = main.get_command(click.Context(main), name)
    assert command is not None, f"{where}: no subcommand {name}"
    with click.Context(main, info_name="foundry-operator") as parent:
        try:
            command.make_context(name, list(rest), parent=parent)
        except click.UsageError as exc:  # includes BadParameter (e.g. a --catalog file that does not exist)
            if "does not exist" not in str(exc):
                raise AssertionError(f"{where}: {exc.format_message()}") from exc


def _runnable_offline(argv: list[str]) -> bool:
    if argv[:1] != ["check"] or "--catalog" not in argv:
        return False
    files = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg in ("-f", "--filename", "--catalog")]
    return all((REPO_ROOT / f).exists() for f in files)


OFFLINE = [(where, argv) for where, argv in COMMANDS if _runnable_offline(argv)]


@pytest.mark.parametrize(("where", "argv"), OFFLINE, ids=[where for where, _ in OFFLINE])
def test_documented_offline_check_runs_from_the_repository_root(
    where: str, argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    env = {name: None for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")}
    result = CliRunner().invoke(main, argv, env=env, catch_exceptions=False)
    assert result.exit_code == 0, f"{where}\n{result.output}"
    assert "6 deployments: 6 OK, 0 WARN, 0 FAIL" in result.stdout


def test_crds_as_documented_writes_what_is_committed(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["crds", "--out", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for written in tmp_path.iterdir():
        assert written.read_text() == (REPO_ROOT / "crds" / written.name).read_text()


def test_the_committed_snapshot_is_the_default_scenarios(tmp_path: Path) -> None:
    """Regenerate it against the emulator's default scenario; only the time it was taken may differ."""
    emulator = subprocess.Popen(
        [sys.executable, "-m", "foundry_operator", "emulator", "--print-env", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert emulator.stdout is not None
        exports = [emulator.stdout.readline().strip() for _ in range(9)]
        env: dict[str, str | None] = dict(line.removeprefix("export ").split("=", 1) for line in exports)
        fresh = tmp_path / "catalog.yaml"
        result = CliRunner().invoke(
            main, ["catalog", "--snapshot", str(fresh)], env=env, catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    committed = yaml.safe_load(SNAPSHOT.read_text())
    regenerated = yaml.safe_load(fresh.read_text())
    committed.pop("takenAt")
    regenerated.pop("takenAt")
    assert committed == regenerated, (
        "catalog-snapshot.yaml is out of date: regenerate it with `foundry-operator catalog --snapshot` "
        "against `foundry-operator emulator` (docs/preflight.md) and keep its header comment"
    )
    assert SNAPSHOT.read_text().startswith("# EXAMPLE DATA, not real Azure")
