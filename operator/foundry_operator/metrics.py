"""Prometheus metrics. One registry per operator instance, so tests and benchmarks can read their own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.reconcile_seconds = Histogram(
            "foundry_reconcile_duration_seconds",
            "Duration of one reconciliation, by what triggered it (apply, resync, repair) and its outcome.",
            ["kind", "trigger", "outcome"],
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.arm_requests = Counter(
            "foundry_arm_requests_total",
            "Azure Resource Manager requests by operation and HTTP status (retries included).",
            ["operation", "method", "status"],
            registry=self.registry,
        )
        self.catalog_lookups = Counter(
            "foundry_cache_lookups_total",
            "Lookups of the shared Azure caches (catalog, usages, deployments, accounts) by result.",
            ["cache", "result"],
            registry=self.registry,
        )
        self.deployments_by_condition = Gauge(
            "foundry_deployments",
            "FoundryDeployments by Ready condition status and reason.",
            ["status", "reason"],
            registry=self.registry,
        )
        self.quota_headroom = Gauge(
            "foundry_quota_headroom",
            "Free quota (capacity units) per subscription, region and usage name, as last read.",
            ["subscription", "region", "usage"],
            registry=self.registry,
        )
        self.write_queue_depth = Gauge(
            "foundry_account_write_queue_depth",
            "Writes waiting for or holding an account's write slot.",
            ["account"],
            registry=self.registry,
        )
        self.configmap_writes = Counter(
            "foundry_configmap_writes_total",
            "ConfigMap writes by result (created, updated, unchanged, conflict).",
            ["result"],
            registry=self.registry,
        )
