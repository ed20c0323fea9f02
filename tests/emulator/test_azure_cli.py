"""``python -m foundry_emulator.azure``: one JSON line when ready, then serves until SIGTERM."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from foundry_emulator.azure import default_scenario_path

# A client configured the way the operator is in a pod: only standard environment variables, the CA
# through SSL_CERT_FILE (read by aiohttp's default SSL context at import, hence a fresh process).
CLIENT = """
import asyncio, os
from azure.identity.aio import EnvironmentCredential
from azure.mgmt.cognitiveservices.aio import CognitiveServicesManagementClient

async def main():
    async with EnvironmentCredential() as cred, CognitiveServicesManagementClient(
        cred, os.environ["SUBSCRIPTION"], base_url=os.environ["AZURE_RESOURCE_MANAGER_ENDPOINT"],
        credential_scopes=["https://management.azure.com/.default"],
    ) as client:
        account = await client.accounts.get("aucert-foundation-rg", "aucert-ai")
        print(account.properties.endpoints["OpenAI Language Model Instance API"])

asyncio.run(main())
"""


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "the emulator printed nothing"
    return process.stdout.readline()


def test_cli_prints_connection_info_and_serves(tmp_path: Path) -> None:
    started = time.monotonic()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "foundry_emulator.azure",
            "--port",
            "0",
            "--scenario",
            str(default_scenario_path()),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info: dict[str, Any] = json.loads(read_line(process, timeout=20))
        ready_after = time.monotonic() - started
        assert set(info) == {"url", "ca_file", "tenant_id", "subscription_id", "client_id", "client_secret"}
        assert info["url"].startswith("https://127.0.0.1:")
        assert Path(info["ca_file"]) == tmp_path / "state" / "ca.pem"
        assert ready_after < 5, f"ready after {ready_after:.2f}s"  # about 1 s on a quiet machine
        env = {
            **os.environ,
            "AZURE_TENANT_ID": info["tenant_id"],
            "AZURE_CLIENT_ID": info["client_id"],
            "AZURE_CLIENT_SECRET": info["client_secret"],
            "AZURE_AUTHORITY_HOST": info["url"],
            "AZURE_RESOURCE_MANAGER_ENDPOINT": info["url"],
            "SSL_CERT_FILE": info["ca_file"],
            "SUBSCRIPTION": info["subscription_id"],
        }
        client = subprocess.run(
            [sys.executable, "-c", CLIENT], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert client.returncode == 0, client.stderr
        assert client.stdout.strip() == "https://aucert-ai.openai.azure.com/"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stdout is not None and process.stdout.read() == ""  # exactly one line


def test_cli_rejects_a_bad_scenario(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tenantId: t\n")
    result = subprocess.run(
        [sys.executable, "-m", "foundry_emulator.azure", "--scenario", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert f"{bad}:1: subscriptionId: Field required" in result.stderr
