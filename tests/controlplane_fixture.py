"""The Kubernetes API server every Kubernetes-facing test runs against: a real kube-apiserver and
etcd (foundry_emulator.controlplane), one per test run, with the CRDs installed. Each sandbox
empties it when it ends (foundry_emulator.sandbox.empty_cluster)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from foundry_emulator.controlplane import ControlPlane
from foundry_emulator.sandbox import crd_documents


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    # Started from pytest's main thread (the processes die with the thread that started them).
    plane = ControlPlane(Path(tmp_path_factory.mktemp("controlplane"))).start()
    try:
        plane.install_crds(crd_documents())
        yield plane
    finally:
        plane.stop()
