"""Read FoundryAccount and FoundryDeployment manifests from files, folders or stdin, and validate them.

Every document is validated with the CRD's own schema and CEL rules (`validate_object`), so a bad
manifest is refused here with the message the API server would give, plus the file and document
it came from. Other kinds (a Kustomize build also emits Namespaces, ConfigMaps, ...) are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from foundry_operator.api import models
from foundry_operator.api.validation import validate_object

STDIN = "-"
YAML_SUFFIXES = (".yaml", ".yml")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Origin:
    """Where a document came from: a file (or <stdin>) and its 1-based document index."""

    file: str
    document: int
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}: document {self.document}"
        return f"{where} (line {self.line})" if self.line is not None else where


@dataclass(frozen=True)
class InputProblem:
    """One reason the input cannot be checked, named the way a person finds it in the file."""

    file: str
    message: str
    document: int | None = None
    line: int | None = None
    field: str | None = None
    object: str | None = None  # "FoundryDeployment default/reasoning-pro", when known

    def __str__(self) -> str:
        parts = [self.file]
        if self.document is not None:
            parts.append(f"document {self.document}" + (f" (line {self.line})" if self.line else ""))
        if self.object:
            parts.append(self.object)
        if self.field:
            parts.append(self.field)
        return ": ".join([*parts, self.message])


class InputError(Exception):
    """The manifests cannot be checked (exit code 2); every problem found is listed, not just the first."""

    def __init__(self, problems: Sequence[InputProblem]) -> None:
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class AccountManifest:
    name: str
    namespace: str
    spec: models.FoundryAccountSpec
    origin: Origin

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def azure_key(self) -> tuple[str, str, str]:
        """The Azure account it names; ARM compares these case-insensitively."""
        spec = self.spec
        return (spec.subscription_id.lower(), spec.resource_group.lower(), spec.account_name.lower())


@dataclass(frozen=True)
class DeploymentManifest:
    name: str
    namespace: str
    spec: models.FoundryDeploymentSpec
    origin: Origin

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def keys(self) -> list[str]:
        return models.effective_keys(self.spec, self.name)


@dataclass(frozen=True)
class ManifestSet:
    accounts: tuple[AccountManifest, ...]
    deployments: tuple[DeploymentManifest, ...]
    skipped: int = 0  # documents of other kinds

    def account(self, namespace: str, name: str) -> AccountManifest | None:
        return next((a for a in self.accounts if a.namespace == namespace and a.name == name), None)


class _Loader(yaml.SafeLoader):
    """YAML as kubectl reads it: an unquoted 2026-02-24 stays a string (it becomes JSON text there)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _files(paths: Sequence[str]) -> Iterator[tuple[str, Path | None]]:
    """(label, path) per file to read; None stands for stdin. Folders are read recursively, sorted."""
    for raw in paths:
        if raw == STDIN:
            yield "<stdin>", None
            continue
        path = Path(raw)
        if path.is_dir():
            for found in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES):
                yield str(found), found
        else:
            yield raw, path


def _documents(label: str, text: str, problems: list[InputProblem]) -> Iterator[tuple[Origin, Any]]:
    loader = _Loader(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            index += 1
            if node is None:
                continue
            yield Origin(label, index, node.start_mark.line + 1), loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(
            InputProblem(
                label,
                f"invalid YAML: {getattr(exc, 'problem', None) or exc}",
                document=index + 1,
                line=mark.line + 1 if mark is not None else None,
            )
        )
    finally:
        loader.dispose()


def _expand_lists(origin: Origin, document: Any) -> Iterator[tuple[Origin, Any]]:
    """`kubectl get -o yaml` wraps objects in a List; check each item under the document's origin."""
    if (
        isinstance(document, dict)
        and document.get("kind") == "List"
        and isinstance(document.get("items"), list)
    ):
        for item in document["items"]:
            yield origin, item
    elif document is not None:
        yield origin, document


def _describe(document: dict[str, Any], namespace: str) -> str:
    raw = document.get("metadata")
    metadata: dict[str, Any] = raw if isinstance(raw, dict) else {}
    name = metadata.get("name") or "<no name>"
    return f"{document.get('kind')} {metadata.get('namespace') or namespace}/{name}"


def _is_ours(document: Any) -> bool:
    """Anything in our API group is checked (a typo in kind or version must not be skipped)."""
    return isinstance(document, dict) and str(document.get("apiVersion", "")).startswith(models.GROUP + "/")


_OUR_KINDS = {"foundryaccount", "foundrydeployment"}


def _looks_like_ours(document: Any) -> bool:
    """One of our kinds in another group, or a group that is a near miss of ours (foundry.llmops.com):
    skipping it as 'another kind' would let a broken manifest pass."""
    if not isinstance(document, dict):
        return False
    group = str(document.get("apiVersion", "")).rpartition("/")[0].lower()
    kind = str(document.get("kind", "")).lower()
    return kind in _OUR_KINDS or (
        group != models.GROUP and group.startswith("foundry.") and "llmops" in group
    )


def _parse_spec(
    spec_type: type[M], spec: Any, origin: Origin, what: str, problems: list[InputProblem]
) -> M | None:
    """The schema already passed; a pydantic refusal here means the models and CRD disagree: still name it."""
    try:
        return spec_type.model_validate(spec)
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(["spec", *(str(part) for part in error["loc"])])
            problems.append(
                InputProblem(origin.file, error["msg"], origin.document, origin.line, field, what)
            )
        return None


def _read(label: str, path: Path | None, stdin: TextIO, problems: list[InputProblem]) -> str | None:
    if path is None:
        return stdin.read()
    if not path.exists():
        problems.append(InputProblem(label, "no such file or directory"))
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(InputProblem(label, f"cannot be read: {exc}"))
        return None


class _Collector:
    """Validates documents one by one and keeps the objects and every problem found."""

    def __init__(self, default_namespace: str) -> None:
        self.default_namespace = default_namespace
        self.problems: list[InputProblem] = []
        self.accounts: list[AccountManifest] = []
        self.deployments: list[DeploymentManifest] = []
        self.skipped = 0
        self._seen: dict[tuple[str, str, str], Origin] = {}

    def add(self, origin: Origin, document: Any) -> None:
        if not _is_ours(document) and _looks_like_ours(document):
            api_version = document.get("apiVersion")
            self._problem(
                origin,
                f"apiVersion {api_version!r} is not {models.API_VERSION} (kind {document.get('kind')}): "
                f"set apiVersion: {models.API_VERSION}, or the API server will refuse it or nothing will reconcile it",
                "apiVersion",
                _describe(document, self.default_namespace),
            )
            return
        if not _is_ours(document):
            if isinstance(document, dict):
                self.skipped += 1  # another kind: a Kustomize build emits many
            else:
                self._problem(origin, "not a Kubernetes object (a YAML mapping)")
            return
        what = _describe(document, self.default_namespace)
        defaulted, errors = validate_object(document)
        for error in errors:
            self._problem(origin, error.message, error.field, what)
        if errors:
            return
        metadata = defaulted["metadata"]
        namespace = metadata.get("namespace") or self.default_namespace
        identity = (defaulted["kind"], namespace, metadata["name"])
        if identity in self._seen:
            self._problem(origin, f"defined twice: also in {self._seen[identity]}", "metadata.name", what)
            return
        self._seen[identity] = origin
        if defaulted["kind"] == "FoundryAccount":
            account = _parse_spec(
                models.FoundryAccountSpec, defaulted.get("spec"), origin, what, self.problems
            )
            if account is not None:
                self.accounts.append(AccountManifest(metadata["name"], namespace, account, origin))
        else:
            spec = _parse_spec(
                models.FoundryDeploymentSpec, defaulted.get("spec"), origin, what, self.problems
            )
            if spec is not None:
                self.deployments.append(DeploymentManifest(metadata["name"], namespace, spec, origin))

    def _problem(
        self, origin: Origin, message: str, field: str | None = None, what: str | None = None
    ) -> None:
        self.problems.append(InputProblem(origin.file, message, origin.document, origin.line, field, what))


def load_manifests(paths: Iterable[str], stdin: TextIO, default_namespace: str = "default") -> ManifestSet:
    """Read, default and validate every foundry.llmops.io object. Raises InputError listing all problems."""
    paths = list(paths)
    collector = _Collector(default_namespace)
    for label, path in _files(paths):
        text = _read(label, path, stdin, collector.problems)
        if text is None:
            continue
        for doc_origin, document in _documents(label, text, collector.problems):
            for origin, item in _expand_lists(doc_origin, document):
                collector.add(origin, item)
    if collector.problems:
        raise InputError(collector.problems)
    if not collector.accounts and not collector.deployments:
        where = ", ".join("<stdin>" if p == STDIN else p for p in paths)
        raise InputError([InputProblem(where, "no FoundryAccount or FoundryDeployment found")])
    return ManifestSet(tuple(collector.accounts), tuple(collector.deployments), collector.skipped)
