"""Every user error of the CLI is one or two lines (the problem, then the fix), never a traceback.

Each subcommand gets the bad input a new user gives it. `catch_exceptions=False` makes an escaped
exception fail the test instead of being turned into an exit code.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from foundry_emulator.azure import default_scenario_path, load_scenario
from foundry_emulator.azure.cli import EMULATOR_AUDIENCE, export_lines
from foundry_emulator.sandbox import load_documents, sandbox
from foundry_operator.cli import main
from tests.preflight.support import EmulatorThread, azure_env, azure_env_names

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SNAPSHOT = REPO / "catalog-snapshot.yaml"
NO_AZURE: dict[str, str | None] = {name: None for name in azure_env_names()}


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env={**NO_AZURE, **(env or {})}, catch_exceptions=False)


def error_lines(result: Result) -> list[str]:
    """The lines a user reads; asserts the shape every error shares."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, lines
    return lines


# -- run ---------------------------------------------------------------------------------------


@pytest.fixture
def no_cluster(tmp_path: Path) -> dict[str, str | None]:
    """Not in a pod, no KUBECONFIG, an empty home: no Kubernetes configuration anywhere."""
    return {"KUBECONFIG": None, "HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": None}


def test_run_without_a_kubeconfig(no_cluster: dict[str, str | None]) -> None:
    lines = error_lines(invoke("run", "-A", "--metrics-port", "0", env=no_cluster))
    assert lines[0] == "Error: no Kubernetes configuration: not in a pod, KUBECONFIG unset, no ~/.kube/config"
    assert lines[1].startswith("fix: set KUBECONFIG to a working kubeconfig")


def test_run_with_a_kubeconfig_path_that_does_not_exist(
    no_cluster: dict[str, str | None], tmp_path: Path
) -> None:
    missing = tmp_path / "nope" / "config"
    lines = error_lines(invoke("run", "-A", env={**no_cluster, "KUBECONFIG": str(missing)}))
    assert lines[0] == f"Error: KUBECONFIG names {missing}, which does not exist"
    assert "fix: set KUBECONFIG" in lines[1]


@pytest.mark.parametrize(
    "content",
    ["apiVersion: v1\nkind: Config\nclusters: [\n", "apiVersion: v1\nkind: Config\n"],
    ids=["not-yaml", "no-current-context"],
)
def test_run_with_an_unusable_kubeconfig(
    no_cluster: dict[str, str | None], tmp_path: Path, content: str
) -> None:
    config = tmp_path / "config"
    config.write_text(content)
    lines = error_lines(invoke("run", "-A", env={**no_cluster, "KUBECONFIG": str(config)}))
    assert lines[0].startswith(f"Error: cannot use the Kubernetes configuration from KUBECONFIG={config}: ")
    assert lines[1].startswith("fix: ")


def test_run_with_a_bad_setting_names_the_variable(no_cluster: dict[str, str | None]) -> None:
    lines = error_lines(invoke("run", "-A", env={**no_cluster, "FOUNDRY_METRICS_PORT": "ninety"}))
    assert lines[0].startswith("Error: invalid setting: FOUNDRY_METRICS_PORT: ")
    assert lines[1].startswith("fix: correct or unset that environment variable")


def test_run_usage_errors_stay_usage_errors() -> None:
    result = invoke("run", "-A", "-n", "team-a")
    assert result.exit_code == 2 and "exclude each other" in result.stderr
    assert "Traceback" not in result.output


# -- emulator ----------------------------------------------------------------------------------


def test_emulator_with_a_bad_scenario_names_file_line_and_field(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("tenantId: not-a-uuid\nsubscriptionId: 3c2b1a09-8f7e-4d6c-9b5a-1e2d3c4b5a69\n")
    result = invoke("emulator", "--scenario", str(scenario), "--state-dir", str(tmp_path / "state"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "Error: invalid scenario (one line per problem, file:line: field: message):"
    assert f"{scenario}:1: regions: Field required" in lines[1:-1], lines
    assert lines[-1].startswith("fix: correct those fields")
    assert "pydantic" not in result.output


def test_emulator_with_a_missing_scenario(tmp_path: Path) -> None:
    result = invoke("emulator", "--scenario", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "'--scenario': File" in result.stderr and "does not exist" in result.stderr


def test_emulator_on_a_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        lines = error_lines(invoke("emulator", "--port", str(port), "--state-dir", str(tmp_path / "s")))
    assert lines[0].startswith(f"Error: cannot listen on 127.0.0.1:{port}: ")
    assert lines[0].endswith("; pick another --port (0 picks a free one)")


def test_python_m_emulator_reports_a_bad_scenario_the_same_way(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("principals: 3\n")
    result = subprocess.run(
        [sys.executable, "-m", "foundry_emulator.azure", "--scenario", str(scenario)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("foundry-emulator: invalid scenario:\n")


# -- check -------------------------------------------------------------------------------------


def test_check_with_a_missing_path(tmp_path: Path) -> None:
    lines = error_lines(invoke("check", "-f", str(tmp_path / "nope.yaml"), "--catalog", str(SNAPSHOT)))
    assert lines == [
        f"error: {tmp_path / 'nope.yaml'}: no such file or directory",
        "hint: -f takes an existing file, a folder of *.yaml/*.yml, or - for stdin",
    ]


def test_check_with_bad_yaml(tmp_path: Path) -> None:
    manifests = tmp_path / "m.yaml"
    manifests.write_text("kind: FoundryDeployment\nspec: [\n")
    lines = error_lines(invoke("check", "-f", str(manifests), "--catalog", str(SNAPSHOT)))
    assert lines[0].startswith(f"error: {manifests}: document 1") and "invalid YAML" in lines[0]
    assert lines[1].startswith("hint: correct the field named above")


@pytest.mark.parametrize("content", [None, "regions: [\n", "apiVersion: v1\nkind: ConfigMap\n"])
def test_check_with_an_unusable_catalog_file(tmp_path: Path, content: str | None) -> None:
    snapshot = tmp_path / "snapshot.yaml"
    if content is not None:
        snapshot.write_text(content)
    lines = error_lines(invoke("check", "-f", str(EXAMPLES), "--catalog", str(snapshot)))
    assert lines[0].startswith(f"error: {snapshot}: ")
    assert lines[1].startswith(
        "hint: --catalog takes a file written by `foundry-operator catalog --snapshot FILE`"
    )


# -- catalog -----------------------------------------------------------------------------------


def test_catalog_without_a_subscription() -> None:
    lines = error_lines(invoke("catalog"))
    assert lines == ["error: no subscription: pass --subscription or set AZURE_SUBSCRIPTION_ID"]


def test_catalog_without_credentials_is_two_lines(tmp_path: Path) -> None:
    # No AZURE_* variables: the default credential chain finds nothing (and its per-credential
    # warnings are not printed). IMDS is pointed at a closed local port so the chain fails fast.
    env = {"HOME": str(tmp_path), "AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:9"}
    lines = error_lines(invoke("catalog", "--subscription", "3c2b1a09-8f7e-4d6c-9b5a-1e2d3c4b5a69", env=env))
    assert lines[0].startswith("error: cannot authenticate to Azure while listing the accounts")
    assert lines[1] == "hint: set the AZURE_* variables for an identity with Reader on the subscription"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorThread]:
    runner = EmulatorThread(load_scenario(default_scenario_path()), tmp_path / "emulator")
    runner.start()
    yield runner
    runner.stop()


def test_a_token_for_the_wrong_audience_names_the_audience_setting(emulator: EmulatorThread) -> None:
    env = {**azure_env(emulator.emulator), "AZURE_RESOURCE_MANAGER_AUDIENCE": None}
    for command in (["catalog"], ["check", "-f", str(EXAMPLES)]):
        lines = error_lines(invoke(*command, env=env))
        assert "InvalidAuthenticationTokenAudience" in lines[0]
        assert lines[1].startswith(
            "hint: ARM wants tokens for another audience: set AZURE_RESOURCE_MANAGER_AUDIENCE"
        )


# -- crds --------------------------------------------------------------------------------------


def test_crds_into_a_folder_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a folder under a regular file fails even for root
    lines = error_lines(invoke("crds", "--out", str(blocker / "crds")))
    assert lines[0].startswith(f"Error: cannot write the CRDs to {blocker / 'crds'}: ")
    assert lines[1] == "fix: pass a writable folder with --out (and --chart-out)"


# -- emulator --print-env: the exports work as printed ----------------------------------------


def test_print_env_exports_point_check_and_catalog_at_the_emulator(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "foundry_operator", "emulator", "--print-env", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(9)]
        env = dict(line.removeprefix("export ").split("=", 1) for line in lines)
        assert set(env) == {
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_ID",
            "AZURE_CLIENT_SECRET",
            "AZURE_SUBSCRIPTION_ID",
            "AZURE_AUTHORITY_HOST",
            "AZURE_RESOURCE_MANAGER_ENDPOINT",
            "AZURE_RESOURCE_MANAGER_AUDIENCE",
            "SSL_CERT_FILE",
            "REQUESTS_CA_BUNDLE",
        }
        assert env["AZURE_RESOURCE_MANAGER_AUDIENCE"] == EMULATOR_AUDIENCE
        assert env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == str(tmp_path / "ca.pem")
        checked = invoke("check", "-f", str(EXAMPLES), env=dict(env))
        assert checked.exit_code == 0, checked.output
        assert "6 deployments: 6 OK" in checked.stdout
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_export_lines_quote_for_the_shell() -> None:
    info = {
        "url": "https://127.0.0.1:1",
        "ca_file": "/tmp/a folder/ca.pem",
        "tenant_id": "t",
        "subscription_id": "s",
        "client_id": "c",
        "client_secret": "it's",
    }
    lines = export_lines(info)
    assert "export SSL_CERT_FILE='/tmp/a folder/ca.pem'" in lines
    quoted = next(line for line in lines if line.startswith("export AZURE_CLIENT_SECRET="))
    output = subprocess.run(
        ["bash", "-c", f'{quoted}; printf %s "$AZURE_CLIENT_SECRET"'], capture_output=True, text=True
    )
    assert output.stdout == "it's"


# -- the operator's log on a normal start ------------------------------------------------------


async def test_waiting_for_an_account_is_info_not_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Accounts and deployments applied together: the deployments wait for their accounts, which is
    normal, so no ERROR line (kopf's "failed temporarily") and no Warning Event, only an info line."""
    from foundry_emulator.azure.faults import FaultSpec

    documents = load_documents([EXAMPLES])
    caplog.set_level(logging.DEBUG)
    async with sandbox(tmp_path) as box:
        # Reading the accounts is slow, so the deployments surely see them not Ready yet.
        box.azure.faults.add(
            FaultSpec(method="GET", path=r"/accounts/aucert-ai(-east)?$", delaySeconds=3.0, count=2)
        )
        await box.start_operator()
        await box.apply(documents, "default")
        names = [d["metadata"]["name"] for d in documents if d["kind"] == "FoundryDeployment"]
        await box.wait_condition(
            "FoundryDeployment", "default", names[0], status="False", reason="AccountNotReady"
        )
        for name in names:
            await box.wait_condition("FoundryDeployment", "default", name, timeout=90)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [m for m in errors if "failed temporarily" in m], errors
    waits = [r for r in caplog.records if "waiting for a FoundryAccount to be Ready" in r.getMessage()]
    assert waits and all(r.levelno == logging.INFO for r in waits)
