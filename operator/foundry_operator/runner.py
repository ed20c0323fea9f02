"""Start the operator: settings, clients, the kopf registry, and kopf itself.

`serve()` is what `foundry-operator run`, the demo, the tests and the benchmark all call; only
the Kubernetes and Azure endpoints they point it at differ.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import kopf
from kubernetes import client as k8s
from prometheus_client import start_http_server

from foundry_operator.azure.arm import AzureGateway
from foundry_operator.deployments import DeploymentReconciler
from foundry_operator.handlers import OperatorContext, build_registry
from foundry_operator.kube import ConfigMapPublisher, build_api_client
from foundry_operator.metrics import Metrics
from foundry_operator.settings import AzureSettings, OperatorSettings

STORAGE_PREFIX = "foundry.llmops.io"


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


def kopf_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    # Handler progress in annotations: the status schema is structural and would prune kopf's own keys.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=STORAGE_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=STORAGE_PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{STORAGE_PREFIX}/finalizer"
    # Decisions are posted as explicit Events; kopf's own log lines become Events only from warnings up.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    return settings


def build_context(
    settings: OperatorSettings, azure: AzureSettings, api_client: k8s.ApiClient, metrics: Metrics
) -> OperatorContext:
    core = k8s.CoreV1Api(api_client)
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
            settings=kopf_settings(),
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


def run_operator(options: RunOptions) -> None:
    settings = OperatorSettings()
    configure_logging(options.log_format or settings.log_format, options.log_level or settings.log_level)
    metrics = Metrics()
    port = options.metrics_port if options.metrics_port is not None else settings.metrics_port
    if port:
        start_http_server(port, registry=metrics.registry)
    asyncio.run(serve(options, settings=settings, metrics=metrics))
