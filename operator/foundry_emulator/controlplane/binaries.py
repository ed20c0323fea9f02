"""Where kube-apiserver, etcd and kubectl come from.

envtest's convention first: `KUBEBUILDER_ASSETS` names a directory holding the binaries (what
setup-envtest downloads on a machine with internet). Otherwise, in a checkout of this repository,
`controlplane/build.sh` builds them from Go modules (once; cached by content) and prints their
directory.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "controlplane" / "build.sh"
REQUIRED = ("kube-apiserver", "etcd")


class ControlPlaneUnavailable(RuntimeError):
    """The binaries cannot be found or built: the message says how to get them."""


def binaries_dir() -> Path:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        directory = Path(assets)
        missing = [name for name in REQUIRED if not (directory / name).is_file()]
        if missing:
            raise ControlPlaneUnavailable(
                f"KUBEBUILDER_ASSETS={assets} has no {', '.join(missing)}: point it at setup-envtest's "
                "directory, or unset it to build the binaries with `make control-plane`"
            )
        return directory
    if not BUILD_SCRIPT.is_file():
        raise ControlPlaneUnavailable(
            "no Kubernetes control plane binaries: set KUBEBUILDER_ASSETS to a directory with "
            "kube-apiserver and etcd (e.g. `setup-envtest use -p path`), or run from a checkout "
            "of the repository where `make control-plane` builds them"
        )
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ControlPlaneUnavailable(f"`make control-plane` failed:\n{result.stderr.strip()[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])
