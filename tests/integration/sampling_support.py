"""Continuous samplers for make-before-break tests: llm-config (and the FoundryDeployment's status)
read every ~20 ms, each sample checked against what the Azure emulator holds at that moment.

A key is resolved the way clients resolve it (FOUNDRY_ENDPOINT_<KEY> first, then FOUNDRY_ENDPOINT),
the endpoint's host names the account (its custom subdomain), and FOUNDRY_DEPLOYMENT_<KEY> the
deployment on it: that deployment must exist, have no operation in flight and be Succeeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from foundry_emulator.sandbox import Sandbox

RESOURCE_GROUP = "aucert-foundation-rg"


def account_of(box: Sandbox, endpoint: str | None) -> str | None:
    """The emulated Azure account an endpoint belongs to (by custom subdomain), if any."""
    host = urlparse(endpoint or "").hostname or ""
    subdomain = host.split(".", 1)[0].lower()
    for account in box.azure.state.list_accounts(RESOURCE_GROUP):
        if (account.subdomain or account.name).lower() == subdomain:
            return account.name
    return None


def deployment_state(box: Sandbox, account: str, name: str) -> str:
    """'Succeeded', 'Failed', 'gone', or the operation in flight ('create', 'update', 'delete')."""
    record = box.azure.state.get_account(RESOURCE_GROUP, account).deployments.get(name.lower())
    if record is None:
        return "gone"
    if record.operation is not None:
        return record.operation.action
    return record.settled_state


@dataclass
class KeySampler:
    """Samples one key of llm-config. `seen`: the (account, deployment) pairs it pointed at, in
    order, without repeats; `violations`: every sample where a client would have failed."""

    box: Sandbox
    namespace: str
    key: str
    config_map: str = "llm-config"
    interval: float = 0.02
    seen: list[tuple[str, str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    samples: int = 0

    def check(self, data: dict[str, str]) -> None:
        self.samples += 1
        name = data.get(f"FOUNDRY_DEPLOYMENT_{self.key}")
        endpoint = data.get(f"FOUNDRY_ENDPOINT_{self.key}") or data.get("FOUNDRY_ENDPOINT")
        if name is None:
            self.violations.append(f"sample {self.samples}: FOUNDRY_DEPLOYMENT_{self.key} missing")
            return
        account = account_of(self.box, endpoint)
        if account is None:
            self.violations.append(f"sample {self.samples}: endpoint {endpoint!r} names no account")
            return
        state = deployment_state(self.box, account, name)
        if state != "Succeeded":
            self.violations.append(f"sample {self.samples}: {account}/{name} published while {state}")
        # models.json must agree with the keys, its "account" (the Azure account's name) included.
        described = json.loads(data.get("models.json") or "{}").get(self.key) or {}
        said = (described.get("account"), described.get("deployment"), described.get("endpoint"))
        if said != (account, name, endpoint):
            self.violations.append(
                f"sample {self.samples}: models.json says {said}, the keys say {(account, name, endpoint)}"
            )
        if not self.seen or self.seen[-1] != (account, name):
            self.seen.append((account, name))

    async def run(self) -> None:
        while True:
            self.check(await self.box.config_map(self.namespace, self.config_map) or {})
            await asyncio.sleep(self.interval)


@contextlib.asynccontextmanager
async def sampling(sampler: Any) -> AsyncIterator[Any]:
    """Run `sampler.run()` for the duration of the block; a sampler that crashed fails the test."""
    task = asyncio.create_task(sampler.run())
    try:
        yield sampler
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
