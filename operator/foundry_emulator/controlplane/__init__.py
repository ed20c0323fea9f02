"""A real Kubernetes API server (kube-apiserver + etcd) for the tests, the demo and kubectl."""

from foundry_emulator.controlplane.audit import AuditEntry, AuditLog
from foundry_emulator.controlplane.binaries import ControlPlaneUnavailable, binaries_dir
from foundry_emulator.controlplane.server import ADMIN_USER, ControlPlane, ControlPlaneError

__all__ = [
    "ADMIN_USER",
    "AuditEntry",
    "AuditLog",
    "ControlPlane",
    "ControlPlaneError",
    "ControlPlaneUnavailable",
    "binaries_dir",
]
