"""An Azure emulator for the client tests, served from its own thread (see tests/emulator)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from foundry_emulator.azure import AzureEmulator
from tests.emulator.conftest import EmulatorThread, fast_scenario

RG = "aucert-foundation-rg"
CONSUMER_ID = "5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"  # inference-pods in the default scenario
CONSUMER_SECRET = "emulator-inference-secret-not-a-real-secret"


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[AzureEmulator]:
    runner = EmulatorThread(fast_scenario(), tmp_path / "state")
    yield runner.start()
    runner.stop()


@pytest.fixture
def routed(emu: AzureEmulator, monkeypatch: pytest.MonkeyPatch) -> AzureEmulator:
    """What a developer exports to reach the emulated accounts at their public names: the proxy,
    the emulator's CA, and the inference identity (Entra ID at login.microsoftonline.com, tunnelled)."""
    for name, value in {
        "HTTPS_PROXY": emu.proxy_url,
        "NO_PROXY": "127.0.0.1,localhost",
        "SSL_CERT_FILE": str(emu.ca_file),
        "REQUESTS_CA_BUNDLE": str(emu.ca_file),
        "AZURE_TENANT_ID": emu.tenant_id,
        "AZURE_CLIENT_ID": CONSUMER_ID,
        "AZURE_CLIENT_SECRET": CONSUMER_SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    for name in (
        "AZURE_AUTHORITY_HOST",
        "FOUNDRY_LLM_CONFIG_DIR",
        "FOUNDRY_API_KEY",
        "http_proxy",
        "https_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    return emu
