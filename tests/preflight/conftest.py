"""Fixtures of the preflight tests: emulators, the CLI with and without credentials, a snapshot."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from foundry_emulator.azure import AzureEmulator, Scenario, default_scenario_path, load_scenario
from tests.preflight.support import Cli, EmulatorThread, azure_env, azure_env_names


@pytest.fixture
def start_emulator(tmp_path: Path) -> Iterator[Callable[[Scenario], AzureEmulator]]:
    started: list[EmulatorThread] = []

    def start(scenario: Scenario) -> AzureEmulator:
        runner = EmulatorThread(scenario, tmp_path / f"state-{len(started)}")
        started.append(runner)
        return runner.start()

    yield start
    for runner in started:
        runner.stop()


@pytest.fixture
def emu(start_emulator: Callable[[Scenario], AzureEmulator]) -> AzureEmulator:
    """The ADR world (default scenario)."""
    return start_emulator(load_scenario(default_scenario_path()))


@pytest.fixture
def live(emu: AzureEmulator) -> Cli:
    """The CLI with credentials for the emulator."""
    return Cli(azure_env(emu))


@pytest.fixture
def offline() -> Cli:
    """The CLI without any Azure credentials, as a CI job on a pull request from a fork runs it."""
    return Cli({name: None for name in azure_env_names()})


@pytest.fixture(scope="session")
def emulator_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`catalog --snapshot` of the default emulator, written once: what a CI job commits."""
    folder = tmp_path_factory.mktemp("snapshot")
    runner = EmulatorThread(load_scenario(default_scenario_path()), folder / "state")
    emulator = runner.start()
    try:
        path = folder / "catalog.yaml"
        result = Cli(azure_env(emulator))("catalog", "--snapshot", str(path), "-o", "json")
        assert result.exit_code == 0, result.output
        return path
    finally:
        runner.stop()


@pytest.fixture(scope="session")
def subscription(emulator_snapshot: Path) -> str:
    """The emulator's subscription (the examples use the same one)."""
    return str(yaml.safe_load(emulator_snapshot.read_text())["subscriptionId"])
