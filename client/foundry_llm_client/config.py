"""llm-config as a pod sees it: environment variables (``envFrom``) or a mounted folder (a ConfigMap
volume, one file per key), and the resolution of one key to an endpoint and a deployment."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENDPOINT = "FOUNDRY_ENDPOINT"
DIR_VARIABLE = "FOUNDRY_LLM_CONFIG_DIR"  # where the ConfigMap is mounted, if it is
MODELS_JSON = "models.json"


class LlmConfigError(Exception):
    """llm-config lacks what a key needs; the message names the key and what to check."""


@dataclass(frozen=True)
class Target:
    """Where one key's model is served."""

    key: str
    endpoint: str  # the account endpoint as published (https://<name>.openai.azure.com/)
    deployment: str  # what to pass as ``model``
    model: str | None  # the underlying model (gpt-5.4), for routing and logs
    version: str | None
    api_flavor: str  # "openai" (OpenAI-compatible endpoint) or "model-inference" (<endpoint>/models)


def normalize_key(key: str) -> str:
    """``reasoning-pro`` and ``REASONING_PRO`` name the same key (the operator writes UPPER_SNAKE)."""
    normalized = re.sub(r"[^A-Za-z0-9]+", "_", key.strip()).strip("_").upper()
    if not normalized:
        raise LlmConfigError(f"{key!r} is not a key: use the FoundryDeployment's key, e.g. REASONING_PRO")
    return normalized


class LlmConfig:
    """The key/value data of llm-config, from one source.

    ``LlmConfig.from_environment()`` reads the folder named by ``FOUNDRY_LLM_CONFIG_DIR`` when set,
    else the process environment. A folder is re-read when its files change (the kubelet updates a
    mounted ConfigMap in place, so a pod sees new endpoints without a restart); environment variables
    are fixed for a process's life, so a pod that uses ``envFrom`` needs a rollout (see Reloader in
    docs/consumers.md)."""

    def __init__(self, values: Mapping[str, str] | None = None, folder: Path | None = None) -> None:
        self._folder = folder
        self._values: dict[str, str] = dict(values or {})
        self._signature: tuple[tuple[str, int, int], ...] | None = None
        if folder is not None:
            self.refresh()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> LlmConfig:
        env = os.environ if environ is None else environ
        folder = env.get(DIR_VARIABLE)
        if folder:
            return cls.from_folder(folder)
        return cls({k: v for k, v in env.items() if k.startswith(ENDPOINT) or k.startswith("FOUNDRY_")})

    @classmethod
    def from_folder(cls, folder: str | Path) -> LlmConfig:
        path = Path(folder)
        if not path.is_dir():
            raise LlmConfigError(
                f"{path} is not a folder: mount the llm-config ConfigMap there (a configMap volume) or unset "
                f"{DIR_VARIABLE} to read the environment"
            )
        return cls(folder=path)

    @property
    def folder(self) -> Path | None:
        return self._folder

    def refresh(self) -> bool:
        """Re-read the folder if any file changed since the last read; True when it did."""
        if self._folder is None:
            return False
        signature = self._folder_signature()
        if signature == self._signature:
            return False
        # Dot-files are the kubelet's own (..data, ..2026_...): the keys are the visible names.
        self._values = {
            entry.name: entry.read_text(encoding="utf-8")
            for entry in sorted(self._folder.iterdir())
            if not entry.name.startswith(".") and entry.is_file()
        }
        self._signature = signature
        return True

    def _folder_signature(self) -> tuple[tuple[str, int, int], ...]:
        assert self._folder is not None
        out = []
        for entry in sorted(self._folder.iterdir()):
            if entry.name.startswith(".") or not entry.is_file():
                continue
            stat = entry.stat()  # follows the kubelet's symlinks to the current version
            out.append((entry.name, stat.st_mtime_ns, stat.st_ino))
        return tuple(out)

    def values(self) -> dict[str, str]:
        self.refresh()
        return dict(self._values)

    def keys(self) -> list[str]:
        """The keys with a deployment (``FOUNDRY_DEPLOYMENT_<KEY>``)."""
        return sorted(
            k.removeprefix("FOUNDRY_DEPLOYMENT_")
            for k in self.values()
            if k.startswith("FOUNDRY_DEPLOYMENT_")
        )

    def resolve(self, key: str) -> Target:
        """The key's endpoint (``FOUNDRY_ENDPOINT_<KEY>``, else ``FOUNDRY_ENDPOINT``) and deployment."""
        name = normalize_key(key)
        values = self.values()
        source = f"the folder {self._folder}" if self._folder else "the environment"
        deployment = values.get(f"FOUNDRY_DEPLOYMENT_{name}", "").strip()
        if not deployment:
            known = ", ".join(self.keys()) or "none"
            raise LlmConfigError(
                f"llm-config has no FOUNDRY_DEPLOYMENT_{name} in {source} (keys present: {known}). Check that a "
                f"FoundryDeployment publishes key {name} (spec.keys) and is Ready, and that llm-config reaches "
                f"this pod (envFrom, or a volume at {DIR_VARIABLE})"
            )
        endpoint = (values.get(f"{ENDPOINT}_{name}") or values.get(ENDPOINT) or "").strip()
        if not endpoint:
            raise LlmConfigError(
                f"llm-config has neither {ENDPOINT}_{name} nor {ENDPOINT} in {source}: the namespace needs a "
                "primary FoundryAccount (spec.primary: true)"
            )
        flavour = "openai"
        described = _models(values).get(name)
        if isinstance(described, dict) and isinstance(described.get("apiFlavor"), str):
            flavour = str(described["apiFlavor"])
        return Target(
            key=name,
            endpoint=endpoint if endpoint.endswith("/") else endpoint + "/",
            deployment=deployment,
            model=values.get(f"FOUNDRY_MODEL_{name}") or None,
            version=values.get(f"FOUNDRY_MODEL_VERSION_{name}") or None,
            api_flavor=flavour,
        )


def _models(values: Mapping[str, str]) -> dict[str, object]:
    raw = values.get(MODELS_JSON)
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as err:
        raise LlmConfigError(
            f"llm-config's {MODELS_JSON} is not JSON ({err}): it is written by the operator"
        ) from err
    return parsed if isinstance(parsed, dict) else {}
