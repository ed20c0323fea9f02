"""Helpers of the preflight tests: the Azure emulator in a background thread, the CLI, manifests.

`check` and `catalog` run `asyncio.run` themselves (they are CLI commands), so the tests are
synchronous and the emulator serves from its own thread and event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner, Result

from foundry_emulator.azure import AzureEmulator, Scenario
from foundry_operator.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
RG = "aucert-foundation-rg"
API_VERSION = "foundry.llmops.io/v1alpha1"


class EmulatorThread:
    """An AzureEmulator served from its own thread and event loop."""

    def __init__(self, scenario: Scenario, state_dir: Path) -> None:
        self.emulator = AzureEmulator(scenario, state_dir=state_dir)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="azure-emulator", daemon=True)

    def start(self) -> AzureEmulator:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.emulator.start(), self._loop).result(timeout=10)
        return self.emulator

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.emulator.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def azure_env(emu: AzureEmulator) -> dict[str, str | None]:
    """The standard AZURE_* variables pointing at the emulator, as a user would set them."""
    return {
        "AZURE_TENANT_ID": emu.tenant_id,
        "AZURE_CLIENT_ID": emu.client_id,
        "AZURE_CLIENT_SECRET": emu.client_secret,
        "AZURE_AUTHORITY_HOST": emu.url,
        "AZURE_RESOURCE_MANAGER_ENDPOINT": emu.url,
        # The emulator plays public Azure: its tokens are for management.azure.com.
        "AZURE_RESOURCE_MANAGER_AUDIENCE": "https://management.azure.com/",
        "AZURE_SUBSCRIPTION_ID": emu.subscription_id,
        "AZURE_FEDERATED_TOKEN_FILE": None,
        "REQUESTS_CA_BUNDLE": str(emu.ca_file),
        "SSL_CERT_FILE": None,
    }


@dataclass(frozen=True)
class Cli:
    env: dict[str, str | None]

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(main, list(args), input=input, env=self.env, catch_exceptions=False)


# -- manifests ----------------------------------------------------------------------------------


def account(name: str, subscription: str, **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if "namespace" in spec:
        metadata["namespace"] = spec.pop("namespace")
    return {
        "apiVersion": API_VERSION,
        "kind": "FoundryAccount",
        "metadata": metadata,
        "spec": {"subscriptionId": subscription, "resourceGroup": RG, "accountName": name, **spec},
    }


def deployment(name: str, model: str, accounts: Sequence[str], **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if "namespace" in spec:
        metadata["namespace"] = spec.pop("namespace")
    model_spec: dict[str, Any] = {"name": model}
    for field in ("version", "format"):
        if field in spec:
            model_spec[field] = spec.pop(field)
    return {
        "apiVersion": API_VERSION,
        "kind": "FoundryDeployment",
        "metadata": metadata,
        "spec": {"model": model_spec, "accounts": list(accounts), **spec},
    }


def adr_accounts(subscription: str) -> list[dict[str, Any]]:
    return [account("aucert-ai", subscription, primary=True), account("aucert-ai-east", subscription)]


def write_manifests(path: Path, documents: Sequence[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


def azure_env_names() -> list[str]:
    return [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_AUTHORITY_HOST",
        "AZURE_RESOURCE_MANAGER_ENDPOINT",
        "AZURE_RESOURCE_MANAGER_AUDIENCE",
        "AZURE_SUBSCRIPTION_ID",
        "AZURE_FEDERATED_TOKEN_FILE",
        "REQUESTS_CA_BUNDLE",
        "SSL_CERT_FILE",
    ]
