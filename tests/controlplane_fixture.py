"""The Kubernetes API server every Kubernetes-facing test runs against: a real kube-apiserver and
etcd (foundry_emulator.controlplane), one per test run, with the CRDs installed. Each sandbox
empties it when it ends (foundry_emulator.sandbox.empty_cluster)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from foundry_emulator.controlplane import ControlPlane
from foundry_emulator.sandbox import crd_documents

ROOT = Path(__file__).resolve().parents[1]


def peering_crds() -> list[dict[str, Any]]:
    text = (
        ROOT / "charts" / "foundry-operator" / "charts" / "kopf-peering" / "crds" / "kopf-peering.yaml"
    ).read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    # Started from pytest's main thread (the processes die with the thread that started them).
    plane = ControlPlane(Path(tmp_path_factory.mktemp("controlplane"))).start()
    try:
        # Ours, and kopf's peering CRDs (the chart ships them) for the HA tests.
        plane.install_crds([*crd_documents(), *peering_crds()])
        yield plane
    finally:
        plane.stop()
