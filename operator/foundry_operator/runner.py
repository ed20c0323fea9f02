"""Start the operator: settings, clients, the kopf registry, and kopf itself.

`serve()` is what `foundry-operator run`, the demo, the tests and the benchmark all call; only
the Kubernetes and Azure endpoints they point it at differ.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field

import kopf
import yaml
from kubernetes import client as k8s
from kubernetes.config import ConfigException
from prometheus_client import start_http_server
from pydantic import ValidationError

from foundry_operator.azure.arm import AzureGateway
from foundry_operator.deployments import DeploymentReconciler
from foundry_operator.handlers import OperatorContext, build_registry
from foundry_operator.kube import ConfigMapPublisher, KubeCore, build_api_client
from foundry_operator.metrics import Metrics
from foundry_operator.settings import AzureSettings, EnvironmentSettings, OperatorSettings

STORAGE_PREFIX = "foundry.llmops.io"


class StartupError(Exception):
    """The operator cannot start; the message names the problem and the fix (the CLI prints it
    without a traceback)."""


@dataclass
class RunOptions:
    namespaces: list[str] = field(default_factory=list)  # empty: cluster-wide
    standalone: bool = True
    peering_name: str | None = None
    priority: int = 0
    liveness_endpoint: str | None = None
    metrics_port: int | None = None
    log_format: str | None = None
    log_level: str | None = None


def kopf_settings(operator: OperatorSettings | None = None) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    if operator is not None:
        # Peering: how long a silent active replica is trusted before a standby resumes. (With
        # --peering, kopf makes peering mandatory: a missing peering object stops the operator
        # rather than letting it run as a second active replica.)
        settings.peering.lifetime = max(1, round(operator.peering_lifetime_seconds))
    # Handler progress in annotations: the status schema is structural and would prune kopf's own keys.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=STORAGE_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=STORAGE_PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{STORAGE_PREFIX}/finalizer"
    # Decisions are posted as explicit Events; kopf's own log lines become Events only from warnings up.
    settings.posting.level = logging.WARNING
    if operator is not None and operator.worker_limit:
        settings.queueing.worker_limit = operator.worker_limit
        # A finished worker waits idle_timeout (default 5 s) for more events and holds its slot
        # meanwhile: with a limit, that wait, not the work, set the pace (1,000 adoptions: 39 s -> 114 s).
        settings.queueing.idle_timeout = 0.5
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    return settings


def build_context(
    settings: OperatorSettings, azure: AzureSettings, api_client: k8s.ApiClient, metrics: Metrics
) -> OperatorContext:
    core = KubeCore(api_client)
    gateway = AzureGateway(azure, settings, metrics)
    # An unchanged entry re-verifies the ConfigMap at most twice per resync period.
    publisher = ConfigMapPublisher(
        core,
        metrics,
        settings.configmap_debounce_seconds,
        verify_seconds=settings.resync_interval_seconds / 2,
    )
    reconciler = DeploymentReconciler(gateway, core, publisher, settings)
    return OperatorContext(settings, gateway, core, publisher, reconciler, metrics)


async def serve(
    options: RunOptions,
    *,
    settings: OperatorSettings | None = None,
    azure: AzureSettings | None = None,
    api_client: k8s.ApiClient | None = None,
    metrics: Metrics | None = None,
    stop_flag: asyncio.Future[None] | asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
) -> None:
    settings = settings or OperatorSettings()
    azure = azure or AzureSettings()
    metrics = metrics or Metrics()
    api_client = api_client or build_api_client()
    context = build_context(settings, azure, api_client, metrics)
    try:
        await kopf.operator(
            registry=build_registry(context),
            settings=kopf_settings(settings),
            clusterwide=not options.namespaces,
            namespaces=options.namespaces,
            standalone=options.standalone,
            peering_name=options.peering_name,
            priority=options.priority,
            liveness_endpoint=options.liveness_endpoint,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
            memo=kopf.Memo(context=context),
        )
    finally:
        await context.azure.close()


def configure_logging(log_format: str, log_level: str) -> None:
    kopf.configure(
        verbose=log_level == "debug",
        log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL,
        log_prefix=log_format != "json",
    )
    logging.getLogger().setLevel(log_level.upper())
    # The Azure SDK logs request headers at INFO; keep it to warnings (no tokens in logs).
    logging.getLogger("azure").setLevel(logging.WARNING)


def _settings_problem(exc: ValidationError, model: type[EnvironmentSettings]) -> str:
    """`FOUNDRY_METRICS_PORT: Input should be ...`: pydantic's field names as the variables a user sets."""
    problems = []
    for error in exc.errors():
        field_name = str(error["loc"][0]) if error["loc"] else ""
        problems.append(f"{model.variable(field_name)}: {error['msg']}")
    return "; ".join(problems)


def load_settings() -> tuple[OperatorSettings, AzureSettings]:
    try:
        settings = OperatorSettings()
    except ValidationError as exc:
        raise StartupError(
            f"invalid setting: {_settings_problem(exc, OperatorSettings)}\n"
            "fix: correct or unset that environment variable (docs: README.md, Configuration)"
        ) from exc
    try:
        azure = AzureSettings()
    except ValidationError as exc:
        raise StartupError(
            f"invalid Azure setting: {_settings_problem(exc, AzureSettings)}\n"
            "fix: correct or unset that environment variable"
        ) from exc
    return settings, azure


def connect_kubernetes() -> k8s.ApiClient:
    """The Kubernetes client, or a StartupError that says which configuration was tried and how to fix it."""
    kubeconfig = os.environ.get("KUBECONFIG")
    source = f"KUBECONFIG={kubeconfig}" if kubeconfig else "~/.kube/config"
    missing = [p for p in (kubeconfig or "").split(os.pathsep) if p and not os.path.exists(p)]
    try:
        return build_api_client()
    except (ConfigException, yaml.YAMLError, OSError, ValueError, TypeError) as exc:
        if missing:
            problem = f"KUBECONFIG names {', '.join(missing)}, which does not exist"
        elif not kubeconfig and not os.path.exists(os.path.expanduser("~/.kube/config")):
            problem = "no Kubernetes configuration: not in a pod, KUBECONFIG unset, no ~/.kube/config"
        else:
            detail = " ".join(str(exc).split())[:300] or type(exc).__name__
            problem = f"cannot use the Kubernetes configuration from {source}: {detail}"
        raise StartupError(
            f"{problem}\nfix: set KUBECONFIG to a working kubeconfig (`kubectl config current-context` "
            "must answer), or run in a pod with a service account"
        ) from exc


def run_operator(options: RunOptions) -> None:
    """Start the operator. Everything a user can get wrong (settings, kubeconfig, metrics port) is
    checked before kopf starts and raised as a StartupError."""
    settings, azure = load_settings()
    api_client = connect_kubernetes()
    configure_logging(options.log_format or settings.log_format, options.log_level or settings.log_level)
    metrics = Metrics()
    port = options.metrics_port if options.metrics_port is not None else settings.metrics_port
    if port:
        try:
            start_http_server(port, registry=metrics.registry)
        except OSError as exc:
            raise StartupError(
                f"cannot serve metrics on port {port}: {exc.strerror or exc}\n"
                "fix: pass another --metrics-port (0 disables metrics)"
            ) from exc
    asyncio.run(serve(options, settings=settings, azure=azure, api_client=api_client, metrics=metrics))
