"""Fixtures for the emulator tests.

The Azure emulator runs in a background thread with its own event loop, so that the synchronous
Azure SDK (which blocks) and the asyncio one can both talk to it from a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.identity import ClientSecretCredential
from azure.identity.aio import ClientSecretCredential as AioClientSecretCredential
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
from azure.mgmt.cognitiveservices.aio import CognitiveServicesManagementClient as AioManagementClient

from foundry_emulator.azure import AzureEmulator, Scenario, default_scenario_path, load_scenario

ARM_SCOPE = "https://management.azure.com/.default"


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


def fast_scenario() -> Scenario:
    """The default scenario with short operations, for tests."""
    scenario = load_scenario(default_scenario_path())
    scenario.timing.lroSeconds = 0.2
    scenario.timing.pollSeconds = 0.05
    return scenario


@pytest.fixture
def start_emulator(tmp_path: Path) -> Iterator[Callable[[Scenario], AzureEmulator]]:
    """Start an emulator for a given scenario (stopped at teardown)."""
    started: list[EmulatorThread] = []

    def start(scenario: Scenario) -> AzureEmulator:
        runner = EmulatorThread(scenario, tmp_path / f"state-{len(started)}")
        started.append(runner)
        return runner.start()

    yield start
    for runner in started:
        runner.stop()


@pytest.fixture
def scenario() -> Scenario:
    """A fresh copy of the fast default scenario, for a test to change before start_emulator."""
    return fast_scenario()


@pytest.fixture
def emu(start_emulator: Callable[[Scenario], AzureEmulator], scenario: Scenario) -> AzureEmulator:
    """The default (ADR) world with 0.2 s operations."""
    return start_emulator(scenario)


@dataclass(frozen=True)
class Raw:
    status: int
    headers: dict[str, str]  # names in lower case
    body: Any


def _lower(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers}


def _json_or_none(data: bytes) -> Any:
    return json.loads(data) if data.strip() else None


class Sdk:
    """The real Azure SDK clients (sync and asyncio), pointed at one emulator over HTTPS."""

    def __init__(self, emu: AzureEmulator) -> None:
        self.emu = emu

    def credential(self, **kwargs: Any) -> ClientSecretCredential:
        return ClientSecretCredential(
            self.emu.tenant_id,
            kwargs.pop("client_id", self.emu.client_id),
            kwargs.pop("client_secret", self.emu.client_secret),
            authority=self.emu.url,
            disable_instance_discovery=True,
            connection_verify=str(self.emu.ca_file),
            **kwargs,
        )

    def client(self, **kwargs: Any) -> CognitiveServicesManagementClient:
        """kwargs go to the client (retry_total=0, ...), except client_id/client_secret."""
        cred_kwargs = {k: kwargs.pop(k) for k in ("client_id", "client_secret") if k in kwargs}
        return CognitiveServicesManagementClient(
            self.credential(**cred_kwargs),
            self.emu.subscription_id,
            base_url=self.emu.url,
            credential_scopes=[ARM_SCOPE],
            connection_verify=str(self.emu.ca_file),
            **kwargs,
        )

    @contextlib.asynccontextmanager
    async def aio_client(self, **kwargs: Any) -> AsyncIterator[AioManagementClient]:
        """The asyncio management client with the asyncio credential."""
        emu = self.emu
        async with (
            AioClientSecretCredential(
                emu.tenant_id,
                emu.client_id,
                emu.client_secret,
                authority=emu.url,
                disable_instance_discovery=True,
                connection_verify=str(emu.ca_file),
            ) as cred,
            AioManagementClient(
                cred,
                emu.subscription_id,
                base_url=emu.url,
                credential_scopes=[ARM_SCOPE],
                connection_verify=str(emu.ca_file),
                **kwargs,
            ) as client,
        ):
            yield client

    def http(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = "auto",
        headers: dict[str, str] | None = None,
    ) -> Raw:
        """A raw HTTPS request; ``token="auto"`` sends a bearer token of the operator identity."""
        all_headers = dict(headers or {})
        if token == "auto":
            token = self.credential().get_token(ARM_SCOPE).token
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(self.emu.url + path, data=data, method=method, headers=all_headers)
        context = ssl.create_default_context(cafile=str(self.emu.ca_file))
        try:
            with urllib.request.urlopen(request, context=context) as response:
                return Raw(response.status, _lower(response.headers.items()), _json_or_none(response.read()))
        except urllib.error.HTTPError as err:
            return Raw(err.code, _lower(err.headers.items()), _json_or_none(err.read()))

    def admin(self, method: str, path: str, body: Any = None) -> Raw:
        return self.http(method, "/_emulator" + path, body, token=None)

    @staticmethod
    def unknown_fields(value: Any) -> list[str]:
        """Wire fields the SDK model did not map: anything Azure's API does not define."""
        return _unknown_fields(value)

    @staticmethod
    def deployment(model: str, version: str | None = None, capacity: int | None = None, **extra: Any) -> Any:
        """A Deployment body for begin_create_or_update."""
        return _deployment_body(model, version, capacity, **extra)


@pytest.fixture
def sdk(emu: AzureEmulator) -> Sdk:
    return Sdk(emu)


@pytest.fixture
def make_sdk() -> type[Sdk]:
    """For tests that start their own emulator."""
    return Sdk


def _unknown_fields(value: Any, path: str = "$") -> list[str]:
    """Wire fields the SDK model did not map (it keeps them in ``additional_properties``): a
    non-empty answer means the emulator sent something Azure's API does not define."""
    from azure.mgmt.cognitiveservices._utils.serialization import Model

    if isinstance(value, Model):
        found = [f"{path}.{key}" for key in value.additional_properties or {}]
        for attr in value._attribute_map:
            if attr != "additional_properties":
                found += _unknown_fields(getattr(value, attr), f"{path}.{attr}")
        return found
    if isinstance(value, list):
        return [f for i, item in enumerate(value) for f in _unknown_fields(item, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [f for k, item in value.items() for f in _unknown_fields(item, f"{path}.{k}")]
    return []


def _deployment_body(
    model: str, version: str | None = None, capacity: int | None = None, **extra: Any
) -> Any:
    """A Deployment body for begin_create_or_update (dicts are accepted by the SDK)."""
    from azure.mgmt.cognitiveservices.models import Deployment, DeploymentModel, DeploymentProperties, Sku

    return Deployment(
        sku=Sku(name=extra.pop("sku", "GlobalStandard"), capacity=capacity),
        properties=DeploymentProperties(
            model=DeploymentModel(format=extra.pop("format", "OpenAI"), name=model, version=version), **extra
        ),
    )
