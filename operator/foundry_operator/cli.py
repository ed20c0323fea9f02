"""The `foundry-operator` command: run the operator, preflight manifests, browse the catalog, emulate Azure."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import click

from foundry_operator import __version__

OUTPUT_FORMATS = click.Choice(["table", "json", "yaml"])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="foundry-operator")
def main() -> None:
    """Azure AI Foundry model deployments as Kubernetes resources.

    Places each FoundryDeployment on the first account whose region really offers the model,
    creates it in Azure, and publishes endpoints to the llm-config ConfigMap.
    """


@main.command()
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Watch this namespace (repeatable).")
@click.option("-A", "--all-namespaces", is_flag=True, help="Watch all namespaces (cluster-wide).")
@click.option("--standalone", is_flag=True, help="Run without kopf peering (a single replica).")
@click.option(
    "--peering", "peering_name", default=None, help="kopf peering name for HA (one active replica)."
)
@click.option(
    "--priority",
    default="0",
    show_default=True,
    help="kopf peering priority: a number, or 'random' so HA replicas never tie.",
)
@click.option(
    "--liveness", "liveness_endpoint", default=None, help="Health endpoint, e.g. http://0.0.0.0:8080/healthz."
)
@click.option(
    "--metrics-port", type=int, default=None, help="Prometheus metrics port (0 disables). Default 9090."
)
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None, help="Log format.")
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default=None, help="Log level."
)
def run(
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    standalone: bool,
    peering_name: str | None,
    priority: str,
    liveness_endpoint: str | None,
    metrics_port: int | None,
    log_format: str | None,
    log_level: str | None,
) -> None:
    """Run the operator against the current Kubernetes context and Azure (settings from the environment)."""
    if not namespaces and not all_namespaces:
        raise click.UsageError(
            "say which namespaces to watch: -n NAMESPACE (repeatable) or -A/--all-namespaces"
        )
    if namespaces and all_namespaces:
        raise click.UsageError("-n/--namespace and -A/--all-namespaces exclude each other")
    if priority == "random":
        priority_value = secrets.randbelow(1_000_000) + 1  # distinct priorities: exactly one active replica
    elif priority.lstrip("-").isdigit():
        priority_value = int(priority)
    else:
        raise click.BadParameter("a whole number or 'random'", param_hint="--priority")
    from foundry_operator.runner import RunOptions, StartupError, run_operator

    options = RunOptions(
        namespaces=list(namespaces),
        standalone=standalone or peering_name is None,
        peering_name=peering_name,
        priority=priority_value,
        liveness_endpoint=liveness_endpoint,
        metrics_port=metrics_port,
        log_format=log_format,
        log_level=log_level,
    )
    try:
        run_operator(options)
    except StartupError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.option(
    "-f", "--filename", "paths", multiple=True, required=True, help="File or folder of YAML, or - for stdin."
)
@click.option(
    "--catalog",
    "catalog_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Check offline against a catalog snapshot (from `catalog --snapshot`).",
)
@click.option(
    "--retirement-window-days",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="Warn about retirements this close.",
)
@click.option(
    "-n",
    "--namespace",
    default="default",
    show_default=True,
    help="Namespace of manifests that do not set metadata.namespace (as kubectl apply -n).",
)
@click.option("-o", "--output", type=OUTPUT_FORMATS, default="table", show_default=True)
def check(
    paths: tuple[str, ...],
    catalog_file: Path | None,
    retirement_window_days: int,
    namespace: str,
    output: str,
) -> None:
    """Preflight FoundryAccount/FoundryDeployment manifests: would each deployment be placed?

    Reads live Azure (the AZURE_* variables) or, with --catalog, a snapshot from `catalog --snapshot`.
    Exit code 0: every deployment can be placed (warnings allowed); 1: some cannot; 2: bad input.
    """
    from foundry_operator.preflight.command import run_check

    sys.exit(run_check(list(paths), catalog_file, retirement_window_days, output, namespace))


@main.command()
@click.option(
    "--region",
    "regions",
    multiple=True,
    help="Region to list (repeatable). Default: the regions of the subscription's accounts.",
)
@click.option("--model", "model_name", default=None, help="Only this model.")
@click.option(
    "--subscription",
    "subscription_id",
    default=None,
    envvar="AZURE_SUBSCRIPTION_ID",
    help="Subscription to query.",
)
@click.option("-o", "--output", type=OUTPUT_FORMATS, default="table", show_default=True)
@click.option(
    "--snapshot",
    "snapshot_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a catalog snapshot for `check --catalog`.",
)
def catalog(
    regions: tuple[str, ...],
    model_name: str | None,
    subscription_id: str | None,
    output: str,
    snapshot_file: Path | None,
) -> None:
    """What is offered where: versions, SKUs, capacity ranges, lifecycle, quota headroom.

    Needs live Azure (the AZURE_* variables). --snapshot FILE (.json or .yaml) also writes what
    `check --catalog FILE` reads offline: catalogs, quota, the accounts and where models are offered.
    """
    from foundry_operator.preflight.command import run_catalog

    sys.exit(run_catalog(list(regions), model_name, subscription_id, output, snapshot_file))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=0, show_default=True, help="Port (0 picks a free one).")
@click.option(
    "--scenario",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Scenario YAML (default: the example world of examples/, two accounts).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the CA and state go (default: a temporary folder).",
)
@click.option(
    "--print-env",
    "--exports",
    "print_env",
    is_flag=True,
    help="When ready, print shell `export` lines (AZURE_*, SSL_CERT_FILE, REQUESTS_CA_BUNDLE) that point "
    "the operator, `check` and `catalog` at the emulator, instead of the JSON line.",
)
def emulator(host: str, port: int, scenario: Path | None, state_dir: Path | None, print_env: bool) -> None:
    """Run the local Azure emulator (Entra ID + Microsoft.CognitiveServices) and print one JSON line when ready.

    Serves until Ctrl-C. With --print-env, the `export` lines instead: save them to a file and
    source it in another shell (docs/emulator.md).
    """
    _require_emulator("emulator")
    from foundry_emulator.azure.cli import run_emulator, startup_problem
    from foundry_emulator.azure.scenario import ScenarioError

    try:
        run_emulator(host, port, scenario, state_dir, print_env=print_env)
    except ScenarioError as exc:
        raise click.ClickException(
            f"invalid scenario (one line per problem, file:line: field: message):\n{exc}\n"
            "fix: correct those fields (format: docs/emulator.md, Scenario files), or omit --scenario"
        ) from exc
    except OSError as exc:
        raise click.ClickException(startup_problem(exc, host, port, state_dir)) from exc


@main.command()
@click.option(
    "--examples",
    "examples_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Manifests to apply (default: the repository's examples/).",
)
@click.option(
    "--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait for convergence."
)
@click.option("--keep", is_flag=True, help="Stay up for kubectl (prints export KUBECONFIG=...) until Ctrl-C.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the control plane, the emulator and the kubeconfig live (default: a temporary folder).",
)
def demo(examples_dir: Path | None, timeout: float, keep: bool, state_dir: Path | None) -> None:
    """Run the whole job locally: Azure emulator + a real Kubernetes API server + the operator + examples/."""
    _require_emulator("demo")
    from foundry_emulator.controlplane import ControlPlaneError, ControlPlaneUnavailable
    from foundry_emulator.demo import run_demo

    try:
        sys.exit(run_demo(examples_dir, timeout, keep=keep, state_dir=state_dir))
    except (ControlPlaneUnavailable, ControlPlaneError) as exc:
        raise click.ClickException(f"the local Kubernetes API server could not start: {exc}") from exc


def _require_emulator(command: str) -> None:
    """The emulator, the control plane launcher and the demo are their own distribution."""
    try:
        import foundry_emulator  # noqa: F401
    except ImportError as exc:
        raise click.ClickException(
            f"`foundry-operator {command}` needs the emulator distribution, which the operator's image "
            "and wheel leave out: pip install 'foundry-operator[emulator]' (from a checkout: pip install ./operator)"
        ) from exc


@main.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("crds"),
    show_default=True,
)
@click.option(
    "--chart-out",
    "chart_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write the CRDs into the Helm chart's crds/ folder.",
)
def crds(out_dir: Path, chart_dir: Path | None) -> None:
    """Regenerate the CRDs from the API models."""
    from foundry_operator.api.crdgen import write_crds

    folders = [out_dir] + ([chart_dir] if chart_dir else [])
    try:
        written = write_crds(*folders)
    except OSError as exc:
        where = exc.filename or ", ".join(str(f) for f in folders)
        raise click.ClickException(
            f"cannot write the CRDs to {where}: {exc.strerror or exc}\n"
            "fix: pass a writable folder with --out (and --chart-out)"
        ) from exc
    for path in written:
        click.echo(f"wrote {path}")
