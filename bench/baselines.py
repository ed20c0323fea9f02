"""The two strategies users have today, with the real azure-mgmt-cognitiveservices aio client.

* parallel: every PUT at once (Terraform's default parallelism, a Bicep file without
  `@batchSize`); a 409 RequestConflict is a failed write, retried after an exponential backoff
  with jitter (1 s doubling to 30 s, the shape of the Azure SDKs' own retry policies). 429s are
  retried by the SDK's retry policy, honouring Retry-After, as every Azure client does; a 429
  that outlasts those retries is a failed write too, retried the same way.
* serial: one PUT after another, each waiting for its long-running operation (`-parallelism=1`,
  `@batchSize(1)`, `dependsOn` chains: the documented workaround).
* per_account_lock: what terraform-provider-azurerm does today (PR #22711): every deployment
  planned at once, but a lock per Cognitive Services account held around each write and its
  long-running operation, so one apply serializes per account; conflicts retried as in parallel.
* two_pipelines: the same per-account-lock tool run as two independent processes (two pipelines,
  two Terraform workspaces) each owning half of the deployments on the same accounts: each
  serializes its own writes, neither knows the other's, so their writes collide (409s, retried).

Each run is its own process (`python -m bench.baselines JOB.json`), as Terraform or the Azure CLI
would be, so the client does not share a CPU with the emulators; it prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.scenario import Planned
    from foundry_emulator.azure import AzureEmulator

SCOPE = "https://management.azure.com/.default"
BACKOFF_FIRST, BACKOFF_CAP = 1.0, 30.0


async def run_baseline(
    azure: AzureEmulator, state_dir: Path, planned: list[Planned], mode: str
) -> dict[str, Any]:
    """Run one baseline against this Azure emulator, in a child process (no Kubernetes involved)."""
    from bench.scenario import RESOURCE_GROUP, account_name

    job = {
        "mode": mode,
        "url": azure.url,
        "ca_file": str(azure.ca_file),
        "tenant_id": azure.tenant_id,
        "client_id": azure.client_id,
        "client_secret": azure.client_secret,
        "subscription_id": azure.subscription_id,
        "resource_group": RESOURCE_GROUP,
        "deployments": [
            {
                "account": account_name(item.account_index),
                "name": item.deployment_name,
                "model": item.model,
                "version": item.version,
            }
            for item in planned
        ],
    }
    if mode == "two_pipelines":
        # Two processes, each the per-account-lock tool with half of the deployments, started together.
        halves = [job["deployments"][0::2], job["deployments"][1::2]]
        started = time.monotonic()
        results = await asyncio.gather(
            *(
                _run_job({**job, "mode": "per_account_lock", "deployments": half}, state_dir, f"{mode}-{i}")
                for i, half in enumerate(halves)
            )
        )
        return {
            "mode": mode,
            # Until both pipelines are done: from the later one's own clock (after its login).
            "seconds": max(r["seconds"] for r in results),
            "wall_seconds": round(time.monotonic() - started, 3),
            "failed_writes": sum(r["failed_writes"] for r in results),
            "throttled_writes": sum(r["throttled_writes"] for r in results),
        }
    return await _run_job(job, state_dir, mode)


async def _run_job(job: dict[str, Any], state_dir: Path, name: str) -> dict[str, Any]:
    path = state_dir / f"baseline-{name}.json"
    path.write_text(json.dumps(job))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.baselines",
        str(path),
        cwd=str(Path(__file__).resolve().parents[1]),  # the repository root: `bench` is importable
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"baseline {name} failed ({process.returncode}): {err.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def _main(job: dict[str, Any]) -> dict[str, Any]:
    from azure.core.exceptions import HttpResponseError
    from azure.identity.aio import ClientSecretCredential
    from azure.mgmt.cognitiveservices import models as sdk
    from azure.mgmt.cognitiveservices.aio import CognitiveServicesManagementClient

    from foundry_operator.azure.arm import arm_transport

    credential = ClientSecretCredential(
        job["tenant_id"],
        job["client_id"],
        job["client_secret"],
        authority=job["url"],
        disable_instance_discovery=True,
        connection_verify=job["ca_file"],
    )
    # One TLS context for every connection, as the operator has: with `connection_verify=<file>`
    # azure-core would open a new connection per request (see foundry_operator.azure.arm), a cost
    # of the emulator's private CA that Terraform's or Bicep's clients do not pay against Azure.
    client = CognitiveServicesManagementClient(
        credential,
        job["subscription_id"],
        base_url=job["url"],
        credential_scopes=[SCOPE],
        transport=arm_transport(job["ca_file"]),
    )
    group = job["resource_group"]
    failed_writes = 0  # writes refused with 409 RequestConflict, or 429 after the SDK's retries
    throttled_writes = 0  # of which: 429
    rng = random.Random(1)

    def body(item: dict[str, str]) -> sdk.Deployment:
        return sdk.Deployment(
            sku=sdk.Sku(name="GlobalStandard", capacity=1),
            properties=sdk.DeploymentProperties(
                model=sdk.DeploymentModel(format="OpenAI", name=item["model"], version=item["version"])
            ),
        )

    async def put(item: dict[str, str]) -> None:
        poller = await client.deployments.begin_create_or_update(
            group, item["account"], item["name"], body(item)
        )
        await poller.result()

    async def put_with_conflict_retry(item: dict[str, str]) -> None:
        nonlocal failed_writes, throttled_writes
        delay = BACKOFF_FIRST
        while True:
            try:
                await put(item)
                return
            except HttpResponseError as exc:
                code = exc.error.code if exc.error is not None else None
                if exc.status_code == 429:
                    # The SDK's own retries on 429 ran out (the retry storm drains ARM's write
                    # bucket): the user sees a failed write; the tool tries again, as on a 409.
                    throttled_writes += 1
                elif exc.status_code != 409 or code != "RequestConflict":
                    raise
                failed_writes += 1
                await asyncio.sleep(delay / 2 + rng.uniform(0, delay / 2))
                delay = min(delay * 2, BACKOFF_CAP)

    async with client, credential:
        await credential.get_token(SCOPE)  # log in first: tools authenticate before they plan
        started = time.monotonic()
        if job["mode"] == "parallel":
            await asyncio.gather(*(put_with_conflict_retry(item) for item in job["deployments"]))
        elif job["mode"] == "serial":
            for item in job["deployments"]:
                await put(item)
        elif job["mode"] == "per_account_lock":
            locks: dict[str, asyncio.Lock] = {}

            async def locked(item: dict[str, str]) -> None:
                async with locks.setdefault(item["account"], asyncio.Lock()):
                    await put_with_conflict_retry(item)

            await asyncio.gather(*(locked(item) for item in job["deployments"]))
        else:
            raise ValueError(f"unknown mode {job['mode']!r}")
        seconds = time.monotonic() - started
    return {
        "mode": job["mode"],
        "seconds": round(seconds, 3),
        "failed_writes": failed_writes,
        "throttled_writes": throttled_writes,
    }


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    print(json.dumps(asyncio.run(_main(job))), flush=True)


if __name__ == "__main__":
    main()
